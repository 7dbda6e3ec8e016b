/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-log.c - the log sink belongs to the thread that installed it
 * (libcore/base/log.h): a PAM host authorizing in several threads at once
 * gives each pam_sm_acct_mgmt call its own pam handle as the sink's
 * userdata, and a message must never reach another call's handle (which
 * that call may already have passed to pam_end()).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

#define THREADS 8
#define ROUNDS  2000

struct box {
	int id;
	atomic_int mine, foreign;
	char last[64];
};

static void box_sink(void *userdata, int priority, const char *msg)
{
	struct box *b = userdata;
	int from = -1;

	(void) priority;
	if (sscanf(msg, "from %d", &from) == 1 && from == b->id)
		atomic_fetch_add(&b->mine, 1);
	else
		atomic_fetch_add(&b->foreign, 1);
	snprintf(b->last, sizeof(b->last), "%s", msg);
}

static pthread_barrier_t barrier;

static void *logger(void *arg)
{
	struct box *b = arg;

	tu_log_set_sink(box_sink, b, b->id % 2 == 0);
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < ROUNDS; i++) {
		tu_log(LOG_WARNING, "from %d", b->id);
		tu_log(LOG_DEBUG, "from %d", b->id); /* reaches only the even (debug) threads */
		if (i % 100 == 0) {
			/* Re-installing (as every PAM call does) never disturbs the others. */
			tu_log_set_sink(NULL, NULL, false);
			tu_log(LOG_ERR, "from %d", b->id); /* dropped */
			tu_log_set_sink(box_sink, b, b->id % 2 == 0);
		}
	}
	tu_log_set_sink(NULL, NULL, false);
	return NULL;
}

static void test_sink_is_per_thread(void **state)
{
	(void) state;
	struct box boxes[THREADS];
	pthread_t t[THREADS];
	int seen = 0;

	assert_int_equal(pthread_barrier_init(&barrier, NULL, THREADS), 0);
	for (int i = 0; i < THREADS; i++) {
		memset(&boxes[i], 0, sizeof(boxes[i]));
		boxes[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, logger, &boxes[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&barrier);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(atomic_load(&boxes[i].foreign), 0);
		assert_int_equal(atomic_load(&boxes[i].mine), i % 2 == 0 ? 2 * ROUNDS : ROUNDS);
		seen += atomic_load(&boxes[i].mine);
	}
	assert_int_equal(seen, THREADS / 2 * 3 * ROUNDS);
}

static void *debug_enabled_there(void *arg)
{
	*(bool *) arg = tu_log_debug_enabled();
	return NULL;
}

static void test_no_sink_in_a_new_thread(void **state)
{
	(void) state;
	struct box b = { .id = 1 };
	pthread_t t;
	bool there = true;

	/* This thread's sink is not inherited by a thread it starts. */
	tu_log_set_sink(box_sink, &b, true);
	assert_true(tu_log_debug_enabled());
	assert_int_equal(pthread_create(&t, NULL, debug_enabled_there, &there), 0);
	pthread_join(t, NULL);
	assert_false(there);
	tu_log(LOG_INFO, "from %d", 1);
	assert_int_equal(atomic_load(&b.mine), 1);
	assert_string_equal(b.last, "from 1");
	tu_log_set_sink(NULL, NULL, false);
	assert_false(tu_log_debug_enabled());
	tu_log(LOG_INFO, "from %d", 1);
	assert_int_equal(atomic_load(&b.mine), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sink_is_per_thread),
		cmocka_unit_test(test_no_sink_in_a_new_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
