/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oom-interpose.h - allocation-failure injection for the torture tests
 * (curl's idea): included by exactly one test program, it interposes
 * malloc/calloc/realloc/reallocarray/free over glibc's.  While `counting`
 * is set, the allocation after `countdown` more succeed fails with ENOMEM
 * (`injected` then says it happened) and `live` tracks blocks allocated
 * minus freed, so a test can assert a clean -ENOMEM and no leak for every N.
 * Test-only, header-only.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t sz);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

/* TU_EXPORT below: default visibility (AM_CFLAGS hides symbols), so the shared
 * libraries under test resolve their allocations to these. */
static bool counting;
static long countdown = -1; /* allocations left before the injected failure; -1 = never */
static long live;           /* blocks allocated minus freed while counting */
static bool injected;

static bool fail_now(void)
{
	if (!counting || countdown < 0)
		return false;
	if (countdown == 0) {
		injected = true;
		return true;
	}
	countdown--;
	return false;
}

TU_EXPORT void *malloc(size_t n)
{
	void *p;

	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	p = __libc_malloc(n);
	if (p && counting)
		live++;
	return p;
}

TU_EXPORT void *calloc(size_t n, size_t sz)
{
	void *p;

	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	p = __libc_calloc(n, sz);
	if (p && counting)
		live++;
	return p;
}

TU_EXPORT void *realloc(void *old, size_t n)
{
	void *p;

	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	p = __libc_realloc(old, n);
	if (p && !old && counting)
		live++;
	return p;
}

TU_EXPORT void *reallocarray(void *old, size_t n, size_t sz)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, sz, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(old, bytes);
}

TU_EXPORT void free(void *p)
{
	if (p && counting)
		live--;
	__libc_free(p);
}
