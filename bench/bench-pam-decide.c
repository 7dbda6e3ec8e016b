/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-pam-decide.c - what pam_sm_acct_mgmt costs for one login, in process:
 * tu_ctx_new (the configuration), tu_decide (host identity, the watch state,
 * the private snapshot, the decision) and tu_ctx_free, ITERATIONS times;
 * prints the median, p90 and min in microseconds and how the verdict was
 * reached (watch-fed cache, online, offline).  Used by bench/bench-watch.py
 * (issue 13 item 6: <= 1 ms median while the watch is current).
 * Usage: bench-pam-decide CONFIG USER LOGIN [ITERATIONS]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx.h"
#include "decide.h"
#include "err.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct tu_verdict v = {0};
	int n = argc > 4 ? (int) strtol(argv[4], NULL, 10) : 200;
	uint64_t *t;

	if (argc < 4 || n <= 0) {
		fprintf(stderr, "usage: bench-pam-decide CONFIG USER LOGIN [ITERATIONS]\n");
		return 2;
	}
	t = calloc((size_t) n, sizeof(*t));
	if (!t)
		return 2;
	for (int i = 0; i < n; i++) {
		struct tu_ctx *ctx = NULL;
		struct tu_err e;
		struct tu_login_req req = {.login = argv[3], .service = "sshd", .explicit_user = argv[2]};
		uint64_t t0 = now_ns();
		tu_err_clear(&e);
		if (tu_ctx_new(argv[1], TU_CTX_RELAXED_PERMS, &ctx, &e) < 0 ||
		    tu_decide(ctx, &req, tu_now_usec(), false, &v, &e) < 0) {
			fprintf(stderr, "bench-pam-decide: %s\n", e.msg);
			return 2;
		}
		tu_ctx_free(ctx);
		t[i] = now_ns() - t0;
	}
	qsort(t, (size_t) n, sizeof(*t), cmp);
	printf("median_us %.1f p90_us %.1f min_us %.1f verdict %s via %s (%s)\n",
	       (double) t[n / 2] / 1000, (double) t[n * 9 / 10] / 1000, (double) t[0] / 1000,
	       v.kind == TU_VERDICT_ALLOW ? "allow" : v.kind == TU_VERDICT_DENY ? "deny" : "other",
	       v.watched ? "watch-fed-cache" : v.offline ? "offline-cache" : "online", v.reason);
	free(t);
	return 0;
}
