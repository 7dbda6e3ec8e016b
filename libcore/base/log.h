/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - the one logging path.  Layer: libcore/base.
 *
 * libcore itself logs only at debug level; the shims (PAM, NSS, CLI) decide
 * what to log and install a sink: PAM -> pam_syslog, CLI -> stderr,
 * NSS -> nothing unless debugging.  With no sink, messages are dropped.
 * Never calls openlog()/closelog().  The sink belongs to the calling thread:
 * the PAM shim installs one for the length of a pam_sm_acct_mgmt call with
 * that call's pam handle, and another thread of the same process (a PAM
 * host authorizing in parallel) has its own, so a message never reaches a
 * handle that another thread has already passed to pam_end().  libcore
 * starts no threads of its own, so everything it logs is on the caller's.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

typedef void (*tu_log_fn)(void *userdata, int priority, const char *msg);

/* Installs fn for this thread (NULL = drop everything) with userdata; debug enables LOG_DEBUG. */
void tu_log_set_sink(tu_log_fn fn, void *userdata, bool debug);

/* Returns whether LOG_DEBUG messages reach the sink. */
bool tu_log_debug_enabled(void);

void tu_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tu_logv(int priority, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* A ready-made sink writing "teleport-unix: <msg>\n" to stderr. */
void tu_log_stderr_sink(void *userdata, int priority, const char *msg);

/* A ready-made sink calling syslog(LOG_AUTHPRIV | priority, ...) without openlog. */
void tu_log_syslog_sink(void *userdata, int priority, const char *msg);
