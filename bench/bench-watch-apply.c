/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-watch-apply.c - what one user or role event costs `teleport-unix
 * watch` after it is applied (issue 13 item 4), in process, without the
 * network: N users (default 100000) and 100 roles shaped like the stand-in
 * Auth's generated data (bench-watch.py), then K events (default 10) each
 * replacing one user, and K/2 role events.  For every event it times, in
 * CPU and wall milliseconds:
 *
 *   before  what the watcher did until now: tu_accounts_compute (every user)
 *           and tu_cache_save_prepared with nothing encoded (every record);
 *   after   what it does now: tu_accounts_compute_memo (the changed user, or
 *           the role's holders, mapped again; the global step in full) and
 *           the save with every other record already encoded;
 *
 * split into mapping, encoding, and building + writing both files (fsync'ed,
 * into a temporary cache.dir), and checks that both give the same accounts.
 *
 * Usage: bench-watch-apply [USERS [EVENTS]]    (run by `make bench`)
 * Printed, never asserted (exit 2 only when something fails or differs).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "cache.h"
#include "conf.h"
#include "err.h"
#include "model.h"
#include "watch.h"

static double clk(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static void die(const char *what, const struct tu_err *e)
{
	fprintf(stderr, "bench-watch-apply: %s: %s\n", what, e ? e->msg : strerror(errno));
	exit(2);
}

static char *xstrdup(const char *s)
{
	char *r = strdup(s);
	if (!r)
		die("strdup", NULL);
	return r;
}

static void push(struct tu_strv *v, const char *s)
{
	if (tu_strv_push(v, s) < 0)
		die("tu_strv_push", NULL);
}

static void kv(struct tu_labels *l, const char *k, const char *v)
{
	struct tu_kv *n = realloc(l->e, (l->n + 1) * sizeof(*l->e));
	if (!n)
		die("realloc", NULL);
	l->e = n;
	memset(&l->e[l->n], 0, sizeof(l->e[l->n]));
	l->e[l->n].key = xstrdup(k);
	push(&l->e[l->n].values, v);
	l->n++;
}

/* Like tests/fake_auth/backend.py generate(): role-NNNN allowing {{internal.logins}} (a third
 * also svcNNNN), env dev/prod, host groups grpNN and "developers", keep mode for 3 in 4. */
static void make_role(struct tu_role *r, size_t i, const char *extra_login)
{
	char buf[64];
	memset(r, 0, sizeof(*r));
	snprintf(buf, sizeof(buf), "role-%04zu", i);
	r->name = xstrdup(buf);
	r->version = xstrdup("v7");
	push(&r->allow.logins, "{{internal.logins}}");
	if (i % 3 == 0) {
		snprintf(buf, sizeof(buf), "svc%04zu", i);
		push(&r->allow.logins, buf);
	}
	if (extra_login)
		push(&r->allow.logins, extra_login);
	kv(&r->allow.node_labels, "env", i % 2 == 0 ? "dev" : "prod");
	snprintf(buf, sizeof(buf), "grp%02zu", i % 50);
	push(&r->allow.host_groups, buf);
	push(&r->allow.host_groups, "developers");
	r->create_host_user_mode = i % 4 != 3 ? TU_HOST_USER_MODE_KEEP : TU_HOST_USER_MODE_INSECURE_DROP;
	r->create_host_user = TU_BOOL_UNSET;
}

static uint64_t rnd = 88172645463325252ULL;

static size_t next_rnd(size_t n)
{
	rnd ^= rnd << 13;
	rnd ^= rnd >> 7;
	rnd ^= rnd << 17;
	return (size_t) (rnd % n);
}

static void make_user(struct tu_user *u, size_t i, size_t n_roles, const char *login)
{
	char buf[64];
	memset(u, 0, sizeof(*u));
	snprintf(buf, sizeof(buf), "user%05zu@example.com", i);
	u->name = xstrdup(buf);
	if (login)
		push(&u->roles, "role-0001"); /* matches env=prod: the new login is served here */
	for (size_t k = 0; k < 1 + i % 3; k++) {
		snprintf(buf, sizeof(buf), "role-%04zu", next_rnd(n_roles));
		push(&u->roles, buf);
	}
	if (login)
		snprintf(buf, sizeof(buf), "%s", login);
	else
		snprintf(buf, sizeof(buf), "u%05zu", i);
	kv(&u->traits, "logins", buf);
}

/* Where event ev's figures go: user events first, role events after n_events. */
static size_t slot_of(size_t ev, size_t n_user_ev, size_t n_events)
{
	return ev >= n_user_ev ? n_events + (ev - n_user_ev) : ev;
}

struct split {
	double map_cpu, map_wall, enc_cpu, write_cpu, total_cpu, total_wall;
};

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n ? v[n / 2] : 0;
}

static void same_or_die(const struct tu_accounts *a, const struct tu_accounts *b)
{
	if (a->n_accounts != b->n_accounts || a->n_groups != b->n_groups)
		die("the memoized accounts differ from a fresh computation (counts)", NULL);
	for (size_t i = 0; i < a->n_accounts; i++)
		if (strcmp(a->accounts[i].login, b->accounts[i].login) != 0 ||
		    a->accounts[i].uid != b->accounts[i].uid || a->accounts[i].gid != b->accounts[i].gid ||
		    a->accounts[i].n_gids != b->accounts[i].n_gids)
			die("the memoized accounts differ from a fresh computation", NULL);
}

/* One save after an event: "before" (memo NULL, nothing encoded) or "after". */
static void one(const struct tu_conf *conf, struct tu_dataset *d, const struct tu_host *h,
		const struct tu_cache_accounts_opts *co, struct tu_accounts_memo *memo,
		struct tu_cache_blob *enc_users, struct tu_cache_blob *enc_roles, int64_t now, bool delta,
		struct split *ret, struct tu_accounts *ret_acc)
{
	struct tu_cache_write_stats ws;
	struct tu_err e;
	double c0 = clk(CLOCK_PROCESS_CPUTIME_ID), w0 = clk(CLOCK_MONOTONIC);

	tu_err_clear(&e);
	if (tu_accounts_compute_memo(memo, d, h, &co->opts, now, ret_acc, &e) < 0)
		die("accounts", &e);
	double c1 = clk(CLOCK_PROCESS_CPUTIME_ID), w1 = clk(CLOCK_MONOTONIC);
	if (enc_users) {
		for (size_t i = 0; i < d->n_users; i++)
			if (!enc_users[i].data && tu_cache_encode_user(&d->users[i], &enc_users[i]) < 0)
				die("encode", NULL);
		for (size_t i = 0; i < d->n_roles; i++)
			if (!enc_roles[i].data && tu_cache_encode_role(&d->roles[i], &enc_roles[i]) < 0)
				die("encode", NULL);
	}
	double c2 = clk(CLOCK_PROCESS_CPUTIME_ID);
	struct tu_cache_encoded pre = {.users = enc_users, .roles = enc_roles};
	if (tu_cache_save_prepared(conf, d, ret_acc, enc_users ? &pre : NULL, now, delta, &ws, &e) < 0)
		die("save", &e);
	double c3 = clk(CLOCK_PROCESS_CPUTIME_ID), w3 = clk(CLOCK_MONOTONIC);
	/* The save's own encoding (everything "before", nothing "after") counts as encoding. */
	double save_enc = (double) ws.encode_usec / 1000.0;
	*ret = (struct split){.map_cpu = c1 - c0,
			      .map_wall = w1 - w0,
			      .enc_cpu = c2 - c1 + save_enc,
			      .write_cpu = c3 - c2 - save_enc,
			      .total_cpu = c3 - c0,
			      .total_wall = w3 - w0};
}

int main(int argc, char **argv)
{
	size_t n_users = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	size_t n_events = argc > 2 ? strtoul(argv[2], NULL, 10) : 10;
	const size_t n_roles = 100;
	char dir[] = "/tmp/tu-bench-watch-apply-XXXXXX", yaml[1024], cmd[128];
	struct tu_dataset d = {0};
	struct tu_conf *conf = NULL;
	struct tu_labels labels = {0};
	struct tu_cache_accounts_opts co;
	struct tu_accounts_memo *memo = NULL;
	struct tu_err e;
	int64_t now = (int64_t) time(NULL) * 1000000;

	if (n_users < 10 || n_events == 0) {
		fprintf(stderr, "usage: bench-watch-apply [USERS>=10 [EVENTS]]\n");
		return 2;
	}
	if (!mkdtemp(dir))
		die("mkdtemp", NULL);
	snprintf(yaml, sizeof(yaml),
		 "auth:\n  addresses: [\"127.0.0.1\"]\n  credentials:\n    identity_file: /nonexistent\n"
		 "cache:\n  dir: %s/cache\n",
		 dir);
	tu_err_clear(&e);
	if (tu_conf_parse(yaml, strlen(yaml), "bench.yaml", &conf, &e) < 0)
		die("config", &e);
	kv(&labels, "env", "prod");
	struct tu_host host = {.name = "bench-1", .id = "bench-uuid", .cluster = "example.com", .labels = &labels};

	d.roles = calloc(n_roles, sizeof(*d.roles));
	d.users = calloc(n_users, sizeof(*d.users));
	if (!d.roles || !d.users)
		die("calloc", NULL);
	for (size_t i = 0; i < n_roles; i++)
		make_role(&d.roles[d.n_roles++], i, NULL);
	for (size_t i = 0; i < n_users; i++)
		make_user(&d.users[d.n_users++], i, n_roles, NULL);
	d.user_ca.known = true; /* as after a listing: no previous state file to read it from */
	if (tu_cache_accounts_opts_load(conf, "/dev/null", &co, &e) < 0)
		die("opts", &e);
	co.opts.local_uids = NULL;
	co.opts.n_local_uids = 0;
	if (tu_accounts_memo_new(&memo) < 0)
		die("memo", NULL);
	struct tu_cache_blob *enc_users = calloc(n_users, sizeof(*enc_users));
	struct tu_cache_blob *enc_roles = calloc(n_roles, sizeof(*enc_roles));
	if (!enc_users || !enc_roles)
		die("calloc", NULL);

	/* The state after INIT: everything mapped and encoded once. */
	struct split first;
	struct tu_accounts acc = {0}, ref = {0};
	one(conf, &d, &host, &co, memo, enc_users, enc_roles, now, false, &first, &acc);
	tu_accounts_done(&acc);

	double *v[2][6], *full_write = calloc(n_events * 2, sizeof(double)),
			 *delta_bytes = calloc(n_events * 2, sizeof(double));
	if (!full_write || !delta_bytes)
		die("calloc", NULL);
	for (int k = 0; k < 2; k++)
		for (int f = 0; f < 6; f++)
			v[k][f] = calloc(n_events * 2, sizeof(double));
	size_t n_user_ev = n_events, n_role_ev = (n_events + 1) / 2, recomputed_role = 0;
	for (size_t ev = 0; ev < n_user_ev + n_role_ev; ev++) {
		bool role = ev >= n_user_ev;
		char login[32];
		size_t which;
		if (!role) {
			/* A user PUT: user `which` gets a new login (as bench-watch.py's events do). */
			which = next_rnd(n_users);
			snprintf(login, sizeof(login), "zw%03zu", ev);
			tu_user_done(&d.users[which]);
			make_user(&d.users[which], which, n_roles, login);
			tu_accounts_memo_forget_user(memo, d.users[which].name);
			free(enc_users[which].data);
			enc_users[which] = (struct tu_cache_blob){0};
		} else {
			/* A role PUT: role `which` grants one more login to its holders. */
			which = 2 * next_rnd(n_roles / 2) + 1; /* an env=prod role: it matters here */
			snprintf(login, sizeof(login), "zr%03zu", ev);
			tu_role_done(&d.roles[which]);
			make_role(&d.roles[which], which, login);
			tu_accounts_memo_forget_role(memo, &d, d.roles[which].name);
			free(enc_roles[which].data);
			enc_roles[which] = (struct tu_cache_blob){0};
		}
		struct split b, a;
		/* BENCH_AFTER_ONLY=1: the new path alone (for a profiler); "before" is then a copy. */
		if (getenv("BENCH_AFTER_ONLY"))
			memset(&b, 0, sizeof(b));
		else
			one(conf, &d, &host, &co, NULL, NULL, NULL, now, false, &b, &ref);
		one(conf, &d, &host, &co, memo, enc_users, enc_roles, now, true, &a, &acc);
		/* The same accounts written in full (no delta): what the memo alone gives. */
		{
			struct tu_cache_encoded pre = {.users = enc_users, .roles = enc_roles};
			struct tu_cache_write_stats ws;
			double c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
			if (tu_cache_save_prepared(conf, &d, &acc, &pre, now, false, &ws, &e) < 0)
				die("save", &e);
			full_write[slot_of(ev, n_user_ev, n_events)] = clk(CLOCK_PROCESS_CPUTIME_ID) - c0;
			/* and the delta again, so the next event starts from a delta as the watcher */
			if (tu_cache_save_prepared(conf, &d, &acc, &pre, now, true, &ws, &e) < 0)
				die("save", &e);
			delta_bytes[slot_of(ev, n_user_ev, n_events)] = (double) ws.accounts_bytes;
		}
		if (role)
			recomputed_role += tu_accounts_memo_last_computed(memo);
		if (!getenv("BENCH_AFTER_ONLY"))
			same_or_die(&acc, &ref);
		if (!tu_accounts_find_login(&acc, login))
			die("the event's login is missing", NULL);
		tu_accounts_done(&acc);
		tu_accounts_done(&ref);
		size_t slot = slot_of(ev, n_user_ev, n_events);
		const struct split *s2[2] = {&b, &a};
		for (int k = 0; k < 2; k++) {
			v[k][0][slot] = s2[k]->map_cpu;
			v[k][1][slot] = s2[k]->enc_cpu;
			v[k][2][slot] = s2[k]->write_cpu;
			v[k][3][slot] = s2[k]->total_cpu;
			v[k][4][slot] = s2[k]->total_wall;
			v[k][5][slot] = s2[k]->map_wall;
		}
	}
	printf("bench-watch-apply: %zu users, %zu roles; first write after INIT: %.0f ms CPU\n", n_users,
	       n_roles, first.total_cpu);
	const char *what[2] = {"user event", "role event"};
	for (int kind = 0; kind < 2; kind++) {
		size_t off = kind ? n_events : 0, n = kind ? n_role_ev : n_user_ev;
		printf("bench-watch-apply: %s (median of %zu, ms CPU: mapping / encoding / build+write "
		       "both files = total; total wall)%s\n",
		       what[kind], n, kind ? "" : "");
		for (int k = 0; k < 2; k++)
			printf("  %-7s %7.1f / %6.1f / %6.1f = %7.1f   (wall %.1f)\n", k ? "after" : "before",
			       median(v[k][0] + off, n), median(v[k][1] + off, n), median(v[k][2] + off, n),
			       median(v[k][3] + off, n), median(v[k][4] + off, n));
		printf("  (after, with accounts.db written in full instead of a %.0f-byte accounts.delta: "
		       "build+write %.1f ms CPU)\n",
		       median(delta_bytes + off, n), median(full_write + off, n));
		if (kind)
			printf("  (a role event mapped %zu holders again on average)\n", recomputed_role / n);
	}

	for (size_t i = 0; i < n_users; i++)
		free(enc_users[i].data);
	for (size_t i = 0; i < n_roles; i++)
		free(enc_roles[i].data);
	free(enc_users);
	free(enc_roles);
	free(full_write);
	free(delta_bytes);
	for (int k = 0; k < 2; k++)
		for (int f = 0; f < 6; f++)
			free(v[k][f]);
	tu_accounts_memo_free(memo);
	tu_cache_accounts_opts_done(&co);
	tu_dataset_done(&d);
	tu_labels_done(&labels);
	tu_conf_free(conf);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 2;
}
