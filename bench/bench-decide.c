/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-decide.c - cost of one PAM decision (tu_decide_pure) for a user with
 * 50 roles and 100 logins (issue goal: <= 50 us), plus tu_rbac_user_logins
 * for the same user.  The roles mix trait templates, literal logins, label
 * globs and regexes, and a few deny rules, like a real cluster.  Printed,
 * never asserted.  Usage: bench-decide [ITERATIONS]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decide.h"
#include "err.h"
#include "model.h"
#include "rbac.h"

#define N_ROLES  50
#define N_LOGINS 100

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

static void push(struct tu_strv *v, const char *s)
{
	if (tu_strv_push(v, s) < 0)
		abort();
}

static void label(struct tu_labels *l, const char *key, const char *v1, const char *v2)
{
	l->e = realloc(l->e, (l->n + 1) * sizeof(*l->e));
	if (!l->e)
		abort();
	memset(&l->e[l->n], 0, sizeof(l->e[l->n]));
	l->e[l->n].key = xstrdup(key);
	push(&l->e[l->n].values, v1);
	if (v2)
		push(&l->e[l->n].values, v2);
	l->n++;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
	struct tu_dataset d = { 0 };
	struct tu_labels host_labels = { 0 };
	char buf[64];

	if (iters < 10)
		iters = 10;
	d.users = calloc(1, sizeof(*d.users));
	d.roles = calloc(N_ROLES, sizeof(*d.roles));
	if (!d.users || !d.roles)
		return 2;
	d.n_users = 1;
	d.n_roles = N_ROLES;
	struct tu_user *u = &d.users[0];
	u->name = xstrdup("alice@example.com");
	label(&u->traits, "logins", "alice", NULL);
	for (int i = 1; i < N_LOGINS; i++) {
		snprintf(buf, sizeof(buf), "login%03d", i);
		push(&u->traits.e[0].values, buf);
	}
	label(&u->traits, "email", "alice@example.com", NULL);
	for (int i = 0; i < N_ROLES; i++) {
		struct tu_role *r = &d.roles[i];
		snprintf(buf, sizeof(buf), "role-%02d", i);
		r->name = xstrdup(buf);
		r->version = xstrdup("v7");
		r->create_host_user = TU_BOOL_UNSET;
		push(&u->roles, buf);
		push(&r->allow.logins, "{{internal.logins}}");
		snprintf(buf, sizeof(buf), "svc-%02d", i);
		push(&r->allow.logins, buf);
		push(&r->allow.logins, "{{email.local(external.email)}}");
		label(&r->allow.node_labels, "env", i % 2 ? "dev" : "staging", i % 3 ? "dev-*" : NULL);
		label(&r->allow.node_labels, "team", "^(infra|platform)$", NULL);
		if (i % 10 == 9) {
			push(&r->deny.logins, "root");
			label(&r->deny.node_labels, "env", "prod", NULL);
		}
	}
	label(&host_labels, "env", "dev", NULL);
	label(&host_labels, "team", "infra", NULL);
	struct tu_host h = { .name = "dev-1", .id = "5a9f3c0e-0000-4000-8000-000000000001", .cluster = "example.com",
			     .labels = &host_labels };
	struct tu_decide_opts o = { 0 };
	struct tu_login_req req = { .login = "login099", .explicit_user = "alice@example.com" };
	struct tu_verdict v;
	struct tu_err e;
	int64_t now = (int64_t) time(NULL) * 1000000;

	uint64_t *samples = calloc((size_t) iters, sizeof(uint64_t));
	if (!samples)
		return 2;
	for (long k = 0; k < iters; k++) {
		uint64_t t0 = now_ns();
		tu_err_clear(&e);
		int r = tu_decide_pure(&d, &h, &o, &req, now, &v, &e);
		samples[k] = now_ns() - t0;
		if (r < 0 || v.kind != TU_VERDICT_ALLOW) {
			fprintf(stderr, "bench-decide: unexpected verdict %d (%s / %s)\n", (int) v.kind, v.reason, e.msg);
			return 2;
		}
	}
	qsort(samples, (size_t) iters, sizeof(uint64_t), cmp_u64);
	printf("decision, 50 roles x 100 logins: p50 %.1f us, p99 %.1f us (goal <= 50 us) [%s]\n",
	       samples[iters / 2] / 1000.0, samples[iters * 99 / 100] / 1000.0, v.reason);

	for (long k = 0; k < iters; k++) {
		struct tu_strv logins = { 0 };
		uint64_t t0 = now_ns();
		int r = tu_rbac_user_logins(&d, u, &h, &logins, &e);
		samples[k] = now_ns() - t0;
		if (r < 0)
			return 2;
		if (k == 0)
			printf("logins here: %zu\n", logins.n);
		tu_strv_done(&logins);
	}
	qsort(samples, (size_t) iters, sizeof(uint64_t), cmp_u64);
	printf("tu_rbac_user_logins, same user: p50 %.1f us, p99 %.1f us\n", samples[iters / 2] / 1000.0,
	       samples[iters * 99 / 100] / 1000.0);
	free(samples);
	tu_labels_done(&host_labels);
	tu_dataset_done(&d);
	return 0;
}
