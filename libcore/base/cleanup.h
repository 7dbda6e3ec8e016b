/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cleanup.h - scope-bound cleanup helpers (GNU C cleanup attribute).
 * Layer: libcore/base (libc only).
 *
 * Rule: a cleanup variable is declared at the top of its block and
 * initialised to NULL or -1; never jump over it with goto.  Ownership
 * leaves a scope only through TAKE_PTR()/TAKE_FD().
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void tu_freep(void *p)
{
	free(*(void **) p);
}

static inline void tu_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		(void) close(*fd);
		errno = saved;
	}
}

static inline void tu_fclosep(FILE **f)
{
	if (*f)
		(void) fclose(*f);
}

#define _cleanup_free_   _cleanup_(tu_freep)
#define _cleanup_close_  _cleanup_(tu_closep)
#define _cleanup_fclose_ _cleanup_(tu_fclosep)

/* Hand a pointer out of a cleanup scope: returns it and leaves NULL behind. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _tp_ = (p);                                                          \
		(p) = NULL;                                                                        \
		_tp_;                                                                              \
	})

#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _tf_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_tf_;                                                                              \
	})

/* Defines name##p(type *) calling func(*p) when *p is non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
	static inline void func##p(type *p)                                                        \
	{                                                                                          \
		if (*p)                                                                            \
			func(*p);                                                                  \
	}

/* Keep errno across a block (NSS entry points must not clobber it on success). */
static inline void tu_reset_errno(int *saved)
{
	errno = *saved;
}

#define PROTECT_ERRNO _cleanup_(tu_reset_errno) __attribute__((unused)) int _saved_errno_ = errno

#define TU_EXPORT __attribute__((visibility("default")))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
