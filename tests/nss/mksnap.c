/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mksnap.c - test and benchmark helper: writes a public accounts snapshot.
 *
 *   mksnap gen N OUT.db [PASSWD_OUT GROUP_OUT]
 *       N accounts u0..u{N-1} (uid = gid = 200000 + i, user-private group),
 *       plus groups g0..g9 (gid 100000 + k) with every account i where
 *       i % 10 == k as member (and as a supplementary gid); optionally the
 *       same accounts in /etc/passwd and /etc/group format.  The snapshot's
 *       creation time is the epoch (old); MKSNAP_NEGATIVE_TTL_SEC=S records
 *       cache.negative_ttl = S seconds (default: none recorded);
 *       MKSNAP_DELTA=1 then writes u{N/2}'s shell change as the delta next to OUT.db.
 *   mksnap files PASSWD GROUP OUT.db
 *       the entries of passwd/group-format files (initgroups from members).
 *   mksnap delta PASSWD GROUP BASE.db
 *       the same entries written as the delta next to BASE.db (accounts.delta),
 *       which is left as it is.
 *
 * Not installed; only tests and `make bench` use it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "snapshot.h"

static int die(const char *what)
{
	fprintf(stderr, "mksnap: %s\n", what);
	return 2;
}

static int gen(size_t n, const char *out, const char *pw_out, const char *gr_out)
{
	struct tu_pw_rec *pw = calloc(n ? n : 1, sizeof(*pw));
	struct tu_gr_rec *gr = calloc(n + 10, sizeof(*gr));
	char(*names)[24] = calloc(n ? n : 1, 24), (*homes)[40] = calloc(n ? n : 1, 40),
	(*gecos)[40] = calloc(n ? n : 1, 40);
	uint32_t *gids = calloc(n ? n : 1, sizeof(uint32_t));
	const char **members = calloc(n ? n : 1, sizeof(char *));
	static char gnames[10][8];
	size_t nm = 0;
	struct tu_err e = {};

	if (!pw || !gr || !names || !homes || !gecos || !gids || !members)
		return die("out of memory");
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 24, "u%zu", i);
		snprintf(homes[i], 40, "/home/u%zu", i);
		snprintf(gecos[i], 40, "user%zu@example.com", i);
		gids[i] = (uint32_t) (100000 + i % 10);
		pw[i] = (struct tu_pw_rec){names[i],
					   gecos[i],
					   homes[i],
					   "/bin/bash",
					   (uid_t) (200000 + i),
					   (gid_t) (200000 + i),
					   &gids[i],
					   1};
		gr[i] = (struct tu_gr_rec){names[i], (gid_t) (200000 + i), NULL, 0};
	}
	/* members of gk: accounts with i % 10 == k, laid out group by group */
	for (size_t k = 0; k < 10; k++) {
		size_t first = nm;

		for (size_t i = k; i < n; i += 10)
			members[nm++] = names[i];
		snprintf(gnames[k], sizeof(gnames[k]), "g%zu", k);
		gr[n + k] = (struct tu_gr_rec){gnames[k], (gid_t) (100000 + k), members + first,
					       nm - first};
	}
	const char *ttl = getenv("MKSNAP_NEGATIVE_TTL_SEC");
	const struct tu_snapshot_meta meta = { .negative_ttl_usec = ttl ? strtoull(ttl, NULL, 10) * 1000000u : 0 };
	if (tu_snapshot_write_accounts_meta(out, pw, n, gr, n + 10, &meta, 1, 0, &e) < 0) {
		fprintf(stderr, "mksnap: %s\n", e.msg);
		return 2;
	}
	/* MKSNAP_DELTA=1: then u{n/2}'s shell changes, written as the delta next to OUT. */
	if (n && getenv("MKSNAP_DELTA") && strcmp(getenv("MKSNAP_DELTA"), "1") == 0) {
		pw[n / 2].shell = "/bin/sh";
		if (tu_snapshot_write_accounts_delta(out, pw, n, gr, n + 10, &meta, 0, 0, NULL, &e) < 0) {
			fprintf(stderr, "mksnap: delta: %s\n", e.msg);
			return 2;
		}
		pw[n / 2].shell = "/bin/bash";
	}
	if (pw_out && gr_out) {
		FILE *p = fopen(pw_out, "we"), *g = fopen(gr_out, "we");

		if (!p || !g)
			return die("cannot write passwd/group output");
		fprintf(p, "root:x:0:0:root:/root:/bin/bash\n");
		fprintf(g, "root:x:0:\n");
		for (size_t i = 0; i < n; i++) {
			fprintf(p, "%s:x:%u:%u:%s:%s:%s\n", pw[i].name, (unsigned) pw[i].uid,
				(unsigned) pw[i].gid, pw[i].gecos, pw[i].dir, pw[i].shell);
			fprintf(g, "%s:x:%u:\n", names[i], (unsigned) (200000 + i));
		}
		for (size_t k = 0; k < 10; k++) {
			fprintf(g, "g%zu:x:%u:", k, (unsigned) (100000 + k));
			for (size_t m = 0; m < gr[n + k].n_members; m++)
				fprintf(g, "%s%s", m ? "," : "", gr[n + k].members[m]);
			fputc('\n', g);
		}
		if (fclose(p) != 0 || fclose(g) != 0)
			return die("write error");
	}
	free(pw), free(gr), free(names), free(homes), free(gecos), free(gids), free(members);
	return 0;
}

/* Plain decimal, anything else is 0 (test input is ours). */
static uint32_t num(const char *s)
{
	uint64_t v = 0;

	for (; *s >= '0' && *s <= '9' && v <= UINT32_MAX; s++)
		v = v * 10 + (uint64_t) (*s - '0');
	return *s || v > UINT32_MAX ? 0 : (uint32_t) v;
}

/* Splits a line into at most max ':'-fields in place. */
static size_t split(char *line, char **f, size_t max)
{
	size_t n = 0;

	line[strcspn(line, "\n")] = 0;
	for (char *p = line; n < max;) {
		f[n++] = p;
		p = strchr(p, ':');
		if (!p)
			break;
		*p++ = 0;
	}
	return n;
}

static int from_files(const char *pw_path, const char *gr_path, const char *out, bool delta)
{
	FILE *p = fopen(pw_path, "re"), *g = fopen(gr_path, "re");
	struct tu_pw_rec pw[256];
	struct tu_gr_rec gr[256];
	char *mem[256][64];
	uint32_t gids[256][64];
	size_t npw = 0, ngr = 0;
	char line[4096];
	struct tu_err e = {};

	if (!p || !g)
		return die("cannot open input");
	while (npw < 256 && fgets(line, sizeof(line), p)) {
		char *f[7];

		if (split(line, f, 7) != 7)
			continue;
		pw[npw] = (struct tu_pw_rec){
		    strdup(f[0]),      strdup(f[4]),      strdup(f[5]), strdup(f[6]),
		    (uid_t) num(f[2]), (gid_t) num(f[3]), gids[npw],    0};
		npw++;
	}
	while (ngr < 256 && fgets(line, sizeof(line), g)) {
		char *f[4], *m, *next;
		size_t nm = 0;

		if (split(line, f, 4) != 4)
			continue;
		for (m = f[3]; *m && nm < 64; m = next) {
			next = m + strcspn(m, ",");
			if (*next)
				*next++ = 0;
			mem[ngr][nm++] = strdup(m);
			for (size_t i = 0; i < npw; i++)
				if (strcmp(pw[i].name, m) == 0 && pw[i].n_gids < 64)
					gids[i][pw[i].n_gids++] = num(f[2]);
		}
		gr[ngr] = (struct tu_gr_rec){strdup(f[0]), (gid_t) num(f[2]),
					     (const char *const *) mem[ngr], nm};
		ngr++;
	}
	fclose(p);
	fclose(g);
	if ((delta ? tu_snapshot_write_accounts_delta(out, pw, npw, gr, ngr, NULL, 0, 0, NULL, &e)
		   : tu_snapshot_write_accounts(out, pw, npw, gr, ngr, 1, 0, &e)) < 0) {
		fprintf(stderr, "mksnap: %s\n", e.msg);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "gen") == 0)
		return gen(num(argv[2]), argv[3], argc >= 6 ? argv[4] : NULL,
			   argc >= 6 ? argv[5] : NULL);
	if (argc == 5 && strcmp(argv[1], "files") == 0)
		return from_files(argv[2], argv[3], argv[4], false);
	if (argc == 5 && strcmp(argv[1], "delta") == 0)
		return from_files(argv[2], argv[3], argv[4], true);
	fprintf(stderr,
		"usage: mksnap gen N OUT.db [PASSWD GROUP] | mksnap files|delta PASSWD GROUP OUT.db\n");
	return 2;
}
