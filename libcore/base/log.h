/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - the one logging path.  Layer: libcore/base.
 *
 * libcore itself logs only at debug level; the shims (PAM, NSS, CLI) decide
 * what to log and install a sink: PAM -> pam_syslog, CLI -> stderr,
 * NSS -> nothing unless debugging.  With no sink, messages are dropped.
 * Never calls openlog()/closelog().  The sink is process-global and set once
 * by the host shim; tu_log() itself is thread-safe.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

typedef void (*tu_log_fn)(void *userdata, int priority, const char *msg);

/* Installs fn (NULL = drop everything) with userdata; debug enables LOG_DEBUG. */
void tu_log_set_sink(tu_log_fn fn, void *userdata, bool debug);

/* Returns whether LOG_DEBUG messages reach the sink. */
bool tu_log_debug_enabled(void);

void tu_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tu_logv(int priority, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* A ready-made sink writing "teleport-unix: <msg>\n" to stderr. */
void tu_log_stderr_sink(void *userdata, int priority, const char *msg);

/* A ready-made sink calling syslog(LOG_AUTHPRIV | priority, ...) without openlog. */
void tu_log_syslog_sink(void *userdata, int priority, const char *msg);
