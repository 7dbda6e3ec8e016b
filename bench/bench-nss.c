/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-nss.c - NSS lookup benchmarks through glibc (run by run-bench.sh in a
 * private mount namespace where /etc/nsswitch.conf, /etc/passwd and
 * /etc/group are the generated ones).  Prints numbers; asserts nothing but
 * that hits are hits (a benchmark of failing lookups would be meaningless).
 *
 *   bench-nss warm SERVICE N      in-process getpwnam_r hit / miss and
 *                                 getpwuid_r hit, ns/op, median of 5 rounds
 *   bench-nss first SERVICE NAME  the first getpwnam_r of this process, ns
 *                                 (includes nsswitch.conf, dlopen, mapping)
 *   bench-nss spawn RUNS PROG ARG...  median wall time of a whole process, ns
 */
#include <errno.h>
#include <fcntl.h>
#include <nss.h>
#include <pwd.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define NAMES    4096
#define ROUNDS   5
#define ROUND_NS 100000000ull /* 100 ms per round and kind */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static unsigned long num(const char *s)
{
	unsigned long v = 0;

	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (unsigned long) (*s - '0');
	return v;
}

static char names[NAMES][24], misses[NAMES][24];
static uid_t uids[NAMES];

/* One round of one kind: ns per lookup; exits when a hit does not hit. */
static uint64_t round_of(int kind)
{
	char buf[1024];
	struct passwd pw, *res;
	uint64_t t0 = now_ns(), t, ops = 0;

	do {
		for (int k = 0; k < 16; k++, ops++) {
			size_t i = ops % NAMES;
			int r;

			if (kind == 0)
				r = getpwnam_r(names[i], &pw, buf, sizeof(buf), &res);
			else if (kind == 1)
				r = getpwnam_r(misses[i], &pw, buf, sizeof(buf), &res);
			else
				r = getpwuid_r(uids[i], &pw, buf, sizeof(buf), &res);
			if ((kind != 1 && (r != 0 || !res)) || (kind == 1 && res)) {
				fprintf(
				    stderr,
				    "bench-nss: lookup %d of '%s' gave r=%d res=%p: benchmark invalid\n",
				    kind, kind == 1 ? misses[i] : names[i], r, (void *) res);
				exit(1);
			}
		}
		t = now_ns();
	} while (t - t0 < ROUND_NS);
	return (t - t0) / ops;
}

static int warm(const char *service, unsigned long n)
{
	unsigned seed = 12345;
	uint64_t r[3][ROUNDS];

	__nss_configure_lookup("passwd", service);
	for (size_t i = 0; i < NAMES; i++) {
		unsigned long k = (unsigned long) rand_r(&seed) % n;

		snprintf(names[i], sizeof(names[i]), "u%lu", k);
		snprintf(misses[i], sizeof(misses[i]), "x%lu", k);
		uids[i] = (uid_t) (200000 + (unsigned long) rand_r(&seed) % n);
	}
	for (int kind = 0; kind < 3; kind++) /* warm up: map, fault pages in, fill caches */
		(void) round_of(kind);
	for (int k = 0; k < ROUNDS; k++)
		for (int kind = 0; kind < 3; kind++)
			r[kind][k] = round_of(kind);
	printf("%llu %llu %llu\n", (unsigned long long) median(r[0], ROUNDS),
	       (unsigned long long) median(r[1], ROUNDS),
	       (unsigned long long) median(r[2], ROUNDS));
	return 0;
}

static int first(const char *service, const char *name)
{
	char buf[1024];
	struct passwd pw, *res = NULL;
	uint64_t t0, t1;
	int r;

	__nss_configure_lookup("passwd", service);
	t0 = now_ns();
	r = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	t1 = now_ns();
	if (r != 0 || !res) {
		fprintf(stderr, "bench-nss: first lookup of '%s' failed\n", name);
		return 1;
	}
	printf("%llu\n", (unsigned long long) (t1 - t0));
	return 0;
}

static int spawn(unsigned long runs, char **argv)
{
	uint64_t *t = calloc(runs ? runs : 1, sizeof(*t));
	posix_spawn_file_actions_t fa;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	for (unsigned long i = 0; i < runs; i++) {
		uint64_t t0 = now_ns();
		pid_t pid;
		int st;

		if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0 ||
		    waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bench-nss: %s failed\n", argv[0]);
			return 1;
		}
		t[i] = now_ns() - t0;
	}
	printf("%llu\n", (unsigned long long) median(t, runs));
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "warm") == 0)
		return warm(argv[2], num(argv[3]));
	if (argc == 4 && strcmp(argv[1], "first") == 0)
		return first(argv[2], argv[3]);
	if (argc >= 4 && strcmp(argv[1], "spawn") == 0)
		return spawn(num(argv[2]), argv + 3);
	fprintf(stderr,
		"usage: bench-nss warm SERVICE N | first SERVICE NAME | spawn RUNS PROG ARG...\n");
	return 2;
}
