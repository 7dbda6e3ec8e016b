/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-delta.c - `make bench`: what one accounts change costs to write,
 * as a delta (tu_snapshot_write_accounts_delta: build the new set, merge-join
 * it with the mapped accounts.db, write accounts.delta with fsync) and as a
 * full rewrite (tu_snapshot_write_accounts_meta with fsync), on N generated
 * accounts shaped like tests/nss/mksnap's (user-private groups, ten shared
 * groups of N/10 members each, in name order as the cache writer gets them).
 * Prints numbers only.
 *
 *   bench-delta DIR [N...]     (default N: 1000 100000)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "snapshot.h"

struct set {
	struct tu_pw_rec *pw;
	struct tu_gr_rec *gr;
	char (*names)[24], (*homes)[40], (*gecos)[40];
	uint32_t *gids;
	const char **members;
	char gnames[10][8];
	size_t n, n_pw, n_gr;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp_pw(const void *a, const void *b)
{
	return strcmp(((const struct tu_pw_rec *) a)->name, ((const struct tu_pw_rec *) b)->name);
}

static int cmp_gr(const void *a, const void *b)
{
	return strcmp(((const struct tu_gr_rec *) a)->name, ((const struct tu_gr_rec *) b)->name);
}

/* n accounts (plus `extra` more, u{n}...), as mksnap gen lays them out. */
static int make_set(struct set *s, size_t n, size_t extra)
{
	size_t total = n + extra, nm = 0;

	memset(s, 0, sizeof(*s));
	s->pw = calloc(total, sizeof(*s->pw));
	s->gr = calloc(total + 10, sizeof(*s->gr));
	s->names = calloc(total, 24);
	s->homes = calloc(total, 40);
	s->gecos = calloc(total, 40);
	s->gids = calloc(total, sizeof(uint32_t));
	s->members = calloc(total, sizeof(char *));
	if (!s->pw || !s->gr || !s->names || !s->homes || !s->gecos || !s->gids || !s->members)
		return -ENOMEM;
	for (size_t i = 0; i < total; i++) {
		snprintf(s->names[i], 24, "u%zu", i);
		snprintf(s->homes[i], 40, "/home/u%zu", i);
		snprintf(s->gecos[i], 40, "user%zu@example.com", i);
		s->gids[i] = (uint32_t) (100000 + i % 10);
		s->pw[i] = (struct tu_pw_rec){s->names[i], s->gecos[i], s->homes[i], "/bin/bash",
					      (uid_t) (200000 + i), (gid_t) (200000 + i), &s->gids[i], 1};
		s->gr[i] = (struct tu_gr_rec){s->names[i], (gid_t) (200000 + i), NULL, 0};
	}
	for (size_t k = 0; k < 10; k++) {
		size_t first = nm;

		for (size_t i = k; i < total; i += 10)
			s->members[nm++] = s->names[i];
		snprintf(s->gnames[k], sizeof(s->gnames[k]), "g%zu", k);
		s->gr[total + k] = (struct tu_gr_rec){s->gnames[k], (gid_t) (100000 + k),
						      s->members + first, nm - first};
	}
	s->n = total;
	s->n_pw = total;
	s->n_gr = total + 10;
	/* In login order, as tu_accounts_compute hands them to the cache writer. */
	qsort(s->pw, s->n_pw, sizeof(*s->pw), cmp_pw);
	qsort(s->gr, s->n_gr, sizeof(*s->gr), cmp_gr);
	return 0;
}

static void free_set(struct set *s)
{
	free(s->pw), free(s->gr), free(s->names), free(s->homes), free(s->gecos), free(s->gids),
	    free(s->members);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

#define ROUNDS 5

static int run(const char *dir, size_t n)
{
	static const struct tu_snapshot_meta meta = {.negative_ttl_usec = 60000000};
	char base[512], delta[512];
	struct set s, grown;
	struct tu_err e = {};
	double full[ROUNDS], one[ROUNDS], add[ROUNDS];
	size_t full_bytes = 0, one_bytes = 0, add_bytes = 0;
	struct stat st;

	snprintf(base, sizeof(base), "%s/accounts.db", dir);
	snprintf(delta, sizeof(delta), "%s/accounts.delta", dir);
	if (make_set(&s, n, 0) < 0 || make_set(&grown, n, 1) < 0)
		return -ENOMEM;
	for (int r = 0; r < ROUNDS; r++) {
		struct tu_snapshot_delta_stats ds;
		double t0 = now_ms();

		/* the full rewrite (what every change cost before) */
		if (tu_snapshot_write_accounts_meta(base, s.pw, s.n_pw, s.gr, s.n_gr, &meta,
						    tu_snapshot_next_generation(base), 1, &e) < 0)
			goto fail;
		full[r] = now_ms() - t0;
		if (stat(base, &st) == 0)
			full_bytes = (size_t) st.st_size;

		/* one user's shell changed: one passwd record */
		s.pw[n / 2].shell = r % 2 ? "/bin/sh" : "/bin/zsh";
		t0 = now_ms();
		if (tu_snapshot_write_accounts_delta(base, s.pw, s.n_pw, s.gr, s.n_gr, &meta, 2, 0,
						     &ds, &e) < 0)
			goto fail;
		one[r] = now_ms() - t0;
		one_bytes = ds.bytes;
		s.pw[n / 2].shell = "/bin/bash";

		/* one user added: its passwd record, its group, and a shared group of n/10 members */
		t0 = now_ms();
		if (tu_snapshot_write_accounts_delta(base, grown.pw, grown.n_pw, grown.gr,
						     grown.n_gr, &meta, 3, 0, &ds, &e) < 0)
			goto fail;
		add[r] = now_ms() - t0;
		add_bytes = ds.bytes;
	}
	qsort(full, ROUNDS, sizeof(double), cmp_double);
	qsort(one, ROUNDS, sizeof(double), cmp_double);
	qsort(add, ROUNDS, sizeof(double), cmp_double);
	printf("%9zu | full rewrite %10zu B %8.1f ms | delta, one user changed %8zu B %7.1f ms | "
	       "delta, one user added %8zu B %7.1f ms\n",
	       n, full_bytes, full[ROUNDS / 2], one_bytes, one[ROUNDS / 2], add_bytes,
	       add[ROUNDS / 2]);
	unlink(base);
	unlink(delta);
	free_set(&s);
	free_set(&grown);
	return 0;
fail:
	fprintf(stderr, "bench-delta: %s\n", e.msg);
	free_set(&s);
	free_set(&grown);
	return -EIO;
}

int main(int argc, char **argv)
{
	static const size_t def[] = {1000, 100000};

	if (argc < 2) {
		fprintf(stderr, "usage: bench-delta DIR [N...]\n");
		return 2;
	}
	printf("accounts.db writes (median of %d, fsync'ed, in %s)\n", ROUNDS, argv[1]);
	if (argc == 2) {
		for (size_t i = 0; i < sizeof(def) / sizeof(def[0]); i++)
			if (run(argv[1], def[i]) < 0)
				return 1;
		return 0;
	}
	for (int i = 2; i < argc; i++)
		if (run(argv[1], strtoul(argv[i], NULL, 10)) < 0)
			return 1;
	return 0;
}
