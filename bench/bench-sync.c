/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-sync.c - what a `teleport-unix sync` costs after the fetch, for a big
 * cluster: N users (default 100000) and M roles (default 1000) generated in
 * process, then the POSIX mapping (tu_accounts_compute) and the full cache
 * write (tu_cache_save_full: mapping + encoding + both snapshots, fsync'ed)
 * into a temporary cache.dir; then one user deleted, saved as the watcher does
 * (tu_cache_save_incremental: accounts.delta) and in full (tu_cache_save).
 * Prints wall time per phase and the peak RSS.
 *
 * Usage: bench-sync [USERS [ROLES]]      (run by bench/bench-sync.sh)
 *
 * Dataset shape: each role allows "{{internal.logins}}" plus one shared login
 * "svc-<role>", matches env=prod (a tenth of them with a glob), enables
 * host-user creation (keep) and grants two host groups; each user has 3
 * roles, a `logins` trait with its own login and, for one user in ten, a
 * host_user_uid trait.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "cache.h"
#include "conf.h"
#include "err.h"
#include "model.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* CPU seconds of this process so far (user + system): stable when the machine is busy. */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long peak_rss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static char *xstrdup(const char *s)
{
	char *r = strdup(s);
	if (!r) {
		perror("strdup");
		exit(2);
	}
	return r;
}

static void strv1(struct tu_strv *v, const char *a)
{
	if (tu_strv_push(v, a) < 0) {
		perror("tu_strv_push");
		exit(2);
	}
}

static void kv1(struct tu_labels *l, const char *k, const char *v)
{
	l->e = realloc(l->e, (l->n + 1) * sizeof(*l->e));
	memset(&l->e[l->n], 0, sizeof(l->e[l->n]));
	l->e[l->n].key = xstrdup(k);
	strv1(&l->e[l->n].values, v);
	l->n++;
}

static void generate(struct tu_dataset *d, size_t n_users, size_t n_roles)
{
	char buf[128];

	d->roles = calloc(n_roles, sizeof(*d->roles));
	d->users = calloc(n_users, sizeof(*d->users));
	if (!d->roles || !d->users) {
		perror("calloc");
		exit(2);
	}
	for (size_t i = 0; i < n_roles; i++) {
		struct tu_role *r = &d->roles[d->n_roles++];
		snprintf(buf, sizeof(buf), "role-%04zu", i);
		r->name = xstrdup(buf);
		r->version = xstrdup("v7");
		strv1(&r->allow.logins, "{{internal.logins}}");
		snprintf(buf, sizeof(buf), "svc-%04zu", i);
		strv1(&r->allow.logins, buf);
		kv1(&r->allow.node_labels, "env", i % 10 == 0 ? "pro*" : "prod");
		snprintf(buf, sizeof(buf), "grp-%04zu", i);
		strv1(&r->allow.host_groups, buf);
		strv1(&r->allow.host_groups, i % 2 ? "docker" : "devs");
		r->create_host_user_mode = TU_HOST_USER_MODE_KEEP;
		r->create_host_user = TU_BOOL_UNSET;
	}
	uint64_t x = 88172645463325252ULL;
	for (size_t i = 0; i < n_users; i++) {
		struct tu_user *u = &d->users[d->n_users++];
		snprintf(buf, sizeof(buf), "user%06zu@example.com", i);
		u->name = xstrdup(buf);
		for (int k = 0; k < 3; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			snprintf(buf, sizeof(buf), "role-%04zu", (size_t) (x % n_roles));
			strv1(&u->roles, buf);
		}
		snprintf(buf, sizeof(buf), "u%06zu", i);
		kv1(&u->traits, "logins", buf);
		if (i % 10 == 0) {
			snprintf(buf, sizeof(buf), "%zu", 300000 + i);
			kv1(&u->traits, "host_user_uid", buf);
		}
	}
}

int main(int argc, char **argv)
{
	size_t n_users = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	size_t n_roles = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
	char dir[] = "/tmp/tu-bench-sync-XXXXXX";
	char yaml[1024], cmd[128];
	struct tu_dataset d = {0};
	struct tu_conf *conf = NULL;
	struct tu_err e;
	struct tu_labels labels = {0};
	int64_t now = (int64_t) time(NULL) * 1000000;

	if (n_users == 0 || n_roles == 0) {
		fprintf(stderr, "usage: bench-sync [USERS [ROLES]]\n");
		return 2;
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(
	    yaml, sizeof(yaml),
	    "auth:\n  addresses: [\"127.0.0.1\"]\n  credentials:\n    identity_file: /nonexistent\n"
	    "accounts:\n  uid_range: [200000, 899999999]\ncache:\n  dir: %s/cache\n",
	    dir);
	tu_err_clear(&e);
	if (tu_conf_parse(yaml, strlen(yaml), "bench.yaml", &conf, &e) < 0) {
		fprintf(stderr, "bench-sync: config: %s\n", e.msg);
		return 2;
	}
	kv1(&labels, "env", "prod");
	struct tu_host host = {
	    .name = "bench-1", .id = "bench-uuid", .cluster = "example.com", .labels = &labels};

	double t0 = now_s();
	generate(&d, n_users, n_roles);
	double t1 = now_s(), c1 = cpu_s();
	long rss_gen = peak_rss_kib();

	struct tu_accounts_opts o;
	struct tu_accounts acc = {0};
	tu_accounts_opts_from_conf(conf, &o);
	if (tu_accounts_compute(&d, &host, &o, now, &acc, &e) < 0) {
		fprintf(stderr, "bench-sync: accounts: %s\n", e.msg);
		return 2;
	}
	double t2 = now_s(), c2 = cpu_s();
	size_t n_acc = acc.n_accounts, n_grp = acc.n_groups;
	tu_accounts_done(&acc);

	struct tu_cache_counts c;
	if (tu_cache_save_full(conf, "/dev/null", &d, &host, now, &c, &e) < 0) {
		fprintf(stderr, "bench-sync: cache: %s\n", e.msg);
		return 2;
	}
	double t3 = now_s(), c3 = cpu_s();

	printf("bench-sync: %zu users, %zu roles -> %zu accounts, %zu groups\n", n_users, n_roles,
	       n_acc, n_grp);
	printf("bench-sync: generate %.2f s (rss %ld MiB)\n", t1 - t0, rss_gen / 1024);
	printf("bench-sync: map (tu_accounts_compute) %.2f s wall, %.2f s CPU\n", t2 - t1, c2 - c1);
	printf("bench-sync: save (map + encode + both snapshots, fsync) %.2f s wall, %.2f s CPU\n",
	       t3 - t2, c3 - c2);
	printf("bench-sync: peak RSS %ld MiB (includes the generated dataset)\n",
	       peak_rss_kib() / 1024);

	/* One user leaves, as `teleport-unix watch` would write it: incremental (accounts.delta)
	 * against the files just written, then the same change written in full. */
	struct tu_cache_write_stats ws = {0};
	tu_user_done(&d.users[d.n_users - 1]);
	d.n_users--;
	double t4 = now_s(), c4 = cpu_s();
	if (tu_cache_save_incremental(conf, &d, &host, now, NULL, &ws, &e) < 0) {
		fprintf(stderr, "bench-sync: incremental: %s\n", e.msg);
		return 2;
	}
	double t5 = now_s(), c5 = cpu_s();
	if (tu_cache_save(conf, &d, &host, now, NULL, &e) < 0) {
		fprintf(stderr, "bench-sync: cache: %s\n", e.msg);
		return 2;
	}
	double t6 = now_s(), c6 = cpu_s();
	printf("bench-sync: one user deleted, tu_cache_save_incremental %.2f s wall, %.2f s CPU: "
	       "accounts %s %zu B (%zu changes), state %s %zu B (%zu changes)\n",
	       t5 - t4, c5 - c4, ws.accounts_delta ? "delta" : "in full", ws.accounts_bytes,
	       ws.accounts_changes, ws.state_delta ? "delta" : "in full", ws.state_bytes,
	       ws.state_changes);
	printf("bench-sync: the same change with tu_cache_save (both files in full) %.2f s wall, "
	       "%.2f s CPU\n",
	       t6 - t5, c6 - c5);

	tu_dataset_done(&d);
	tu_labels_done(&labels);
	tu_conf_free(conf);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 2;
}
