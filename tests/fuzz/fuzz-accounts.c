/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-accounts.c - libFuzzer target for the POSIX mapping
 * (tu_accounts_compute in libcore/accounts.c).  The input is a small
 * cluster in a line format (one resource per line, fields split by '|'):
 *
 *   r|NAME|ALLOW_LOGINS|NODE_LABELS|MODE|HOST_GROUPS|DENY_LOGINS
 *   u|NAME|ROLES|TRAITS
 *   g|NAME|GID                 (a local /etc/group entry)
 *   o|UID_MIN|UID_MAX|SOURCE   (options)
 *
 * lists are "a,b", label maps and traits "k=v1,v2;k2=v3" (the test fixture
 * syntax, tests/unit/rbac-fixture.h).  Properties: the mapping never fails
 * except for -EINVAL (bad options) or -ENOMEM; its result is accepted by the
 * snapshot builder (unique names, uids and gids; valid fields); and the
 * same users listed in reverse order give the same accounts (order
 * independence, SPEC §4).  Seeds: tests/fuzz/corpus/accounts/.
 *
 * Build by hand, from the source dir with a configured build dir B:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include B/config.h -Ilibcore \
 *     -Ilibcore/base -Itests/unit tests/fuzz/fuzz-accounts.c B/.libs/libteleport-unix.so \
 *     -o fuzz-accounts
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "conf.h"
#include "err.h"
#include "log.h"
#include "rbac-fixture.h"
#include "snapshot.h"

#define FUZZ_MAX_INPUT (64u * 1024u)
#define MAX_ITEMS      64
#define MAX_FIELDS     8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Splits s (modified) at sep into at most max fields; returns the count. */
static size_t split(char *s, char sep, char **f, size_t max)
{
	size_t n = 0;
	f[n++] = s;
	for (char *p = s; *p && n < max; p++) {
		if (*p == sep) {
			*p = '\0';
			f[n++] = p + 1;
		}
	}
	return n;
}

static uint32_t num(const char *s)
{
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (uint64_t) (*s - '0');
		if (v > UINT32_MAX)
			v = UINT32_MAX;
	}
	return (uint32_t) v;
}

static bool have_user(const struct tu_dataset *d, const char *name)
{
	for (size_t i = 0; i < d->n_users; i++)
		if (strcmp(d->users[i].name, name) == 0)
			return true;
	return false;
}

static void check_snapshot(const struct tu_accounts *a)
{
	struct tu_pw_rec *pw = calloc(a->n_accounts + 1, sizeof(*pw));
	struct tu_gr_rec *gr = calloc(a->n_groups + 1, sizeof(*gr));
	void *out = NULL;
	size_t out_size = 0;

	if (!pw || !gr)
		abort();
	for (size_t i = 0; i < a->n_accounts; i++) {
		const struct tu_account *x = &a->accounts[i];
		pw[i] = (struct tu_pw_rec){.name = x->login,
					   .gecos = x->gecos,
					   .dir = x->home,
					   .shell = x->shell,
					   .uid = x->uid,
					   .gid = x->gid,
					   .gids = x->gids,
					   .n_gids = x->n_gids};
	}
	for (size_t i = 0; i < a->n_groups; i++)
		gr[i] = (struct tu_gr_rec){.name = a->groups[i].name,
					   .gid = a->groups[i].gid,
					   .members = (const char *const *) a->groups[i].members.v,
					   .n_members = a->groups[i].members.n};
	int r = tu_snapshot_build_accounts(pw, a->n_accounts, gr, a->n_groups, 1, 0, &out,
					   &out_size, NULL);
	if (r < 0 && r != -ENOMEM)
		abort();
	free(out);
	free(pw);
	free(gr);
}

static bool same(const struct tu_accounts *a, const struct tu_accounts *b)
{
	if (a->n_accounts != b->n_accounts || a->n_groups != b->n_groups)
		return false;
	for (size_t i = 0; i < a->n_accounts; i++) {
		const struct tu_account *x = &a->accounts[i], *y = &b->accounts[i];
		if (strcmp(x->login, y->login) || x->uid != y->uid || x->gid != y->gid ||
		    strcmp(x->owner, y->owner) || x->n_gids != y->n_gids ||
		    (x->n_gids && memcmp(x->gids, y->gids, x->n_gids * sizeof(*x->gids))))
			return false;
	}
	for (size_t i = 0; i < a->n_groups; i++)
		if (strcmp(a->groups[i].name, b->groups[i].name) ||
		    a->groups[i].gid != b->groups[i].gid)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_dataset d = {0}, rev = {0};
	struct tu_local_group local[MAX_ITEMS];
	struct tu_accounts_opts o = {.source = 0, .uid_min = 300000, .uid_max = 300099};
	struct tu_labels labels = fx_labels("env=prod;team=infra");
	struct tu_host host = {.name = "h", .id = "id", .labels = &labels};
	size_t n_local = 0;
	char *text;

	if (size > FUZZ_MAX_INPUT)
		goto done_labels;
	tu_log_set_sink(NULL, NULL, false);
	text = malloc(size + 1);
	d.users = calloc(MAX_ITEMS, sizeof(*d.users));
	d.roles = calloc(MAX_ITEMS, sizeof(*d.roles));
	if (!text || !d.users || !d.roles)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';

	char *lines[MAX_ITEMS * 3];
	size_t n_lines = split(text, '\n', lines, MAX_ITEMS * 3);
	for (size_t l = 0; l < n_lines; l++) {
		char *f[MAX_FIELDS] = {0};
		size_t nf = split(lines[l], '|', f, MAX_FIELDS);
		if (nf < 2 || !f[1][0] || strlen(f[0]) != 1)
			continue;
		switch (f[0][0]) {
		case 'r':
			if (d.n_roles < MAX_ITEMS) {
				struct fx_role fr = {.name = f[1],
						     .allow_logins = nf > 2 ? f[2] : NULL,
						     .allow_labels = nf > 3 ? f[3] : "*=*",
						     .mode = nf > 4 ? (int32_t) (num(f[4]) % 6) : 3,
						     .allow_groups = nf > 5 ? f[5] : NULL,
						     .deny_logins = nf > 6 ? f[6] : NULL};
				fx_role_build(&fr, &d.roles[d.n_roles++]);
			}
			break;
		case 'u':
			/* Teleport user names are unique (order independence assumes it). */
			if (d.n_users < MAX_ITEMS && !have_user(&d, f[1])) {
				struct fx_user fu = {.name = f[1],
						     .roles = nf > 2 ? f[2] : NULL,
						     .traits = nf > 3 ? f[3] : NULL};
				fx_user_build(&fu, &d.users[d.n_users++]);
			}
			break;
		case 'g':
			if (n_local < MAX_ITEMS)
				local[n_local++] = (struct tu_local_group){
				    .name = f[1], .gid = nf > 2 ? num(f[2]) : 0};
			break;
		case 'o':
			o.uid_min = num(f[1]);
			o.uid_max = nf > 2 ? num(f[2]) : o.uid_min;
			o.source = nf > 3 && f[3][0] == 'a' ? 1 : 0;
			break;
		}
	}
	o.local_groups = local;
	o.n_local_groups = n_local;

	struct tu_accounts a = {0}, b = {0};
	struct tu_err e;
	tu_err_clear(&e);
	int r = tu_accounts_compute(&d, &host, &o, 0, &a, &e);
	if (r < 0) {
		if (r != -EINVAL && r != -ENOMEM)
			abort();
		if (r == -EINVAL && e.msg[0] == '\0')
			abort();
		goto out;
	}
	check_snapshot(&a);

	/* The same users in reverse order (borrowed structs, not freed through rev). */
	rev = d;
	rev.users = calloc(d.n_users + 1, sizeof(*rev.users));
	if (!rev.users)
		abort();
	for (size_t i = 0; i < d.n_users; i++)
		rev.users[i] = d.users[d.n_users - 1 - i];
	r = tu_accounts_compute(&rev, &host, &o, 0, &b, NULL);
	if (r == 0 && !same(&a, &b))
		abort();
	tu_accounts_done(&b);
	free(rev.users);
out:
	tu_accounts_done(&a);
	tu_dataset_done(&d);
	free(text);
done_labels:
	fx_labels_free(&labels);
	return 0;
}
