/* SPDX-License-Identifier: Apache-2.0 */
/*
 * teleport-unix/err.h - the error detail of the public C API (installed;
 * also the definition libcore/base/err.h uses, so there is one).  Functions
 * return 0 or a negative errno and fill a caller-provided struct tu_err with
 * what went wrong and where; a NULL struct tu_err * is accepted everywhere.
 * Plain C, libc only.
 */
#ifndef TELEPORT_UNIX_ERR_H
#define TELEPORT_UNIX_ERR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TU_ERR_MSG_MAX 512

struct tu_err {
	int code;                 /* negative errno, 0 when unset */
	int grpc_status;          /* gRPC status code, -1 when none */
	unsigned line;            /* 1-based line in .file, 0 when none */
	char file[256];           /* file the problem is in, "" when none */
	char key[128];            /* config key path (e.g. "auth.timeouts.connect"), "" when none */
	char msg[TU_ERR_MSG_MAX]; /* human readable, no trailing newline */
};

/* Resets e to "no error". Accepts NULL. */
void tu_err_clear(struct tu_err *e);

/*
 * Formats the whole error as one line "<file>:<line>: <key>: <msg>" leaving
 * out the parts that are unset, into buf (always NUL-terminated).
 * Returns buf.  When e->msg is empty, uses strerror(-e->code).
 */
const char *tu_err_format(const struct tu_err *e, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
