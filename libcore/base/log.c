/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - logging sink (see log.h).  Layer: libcore/base.
 */
#include <stdio.h>

#include "log.h"

struct sink {
	tu_log_fn fn;
	void *userdata;
	bool debug;
};

/* Per thread: see log.h. */
static _Thread_local struct sink current;

void tu_log_set_sink(tu_log_fn fn, void *userdata, bool debug)
{
	current = (struct sink){ .fn = fn, .userdata = userdata, .debug = debug && fn };
}

bool tu_log_debug_enabled(void)
{
	return current.debug;
}

void tu_logv(int priority, const char *fmt, va_list ap)
{
	const struct sink s = current;
	char msg[1024];

	if (!s.fn)
		return;
	if (LOG_PRI(priority) == LOG_DEBUG && !s.debug)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	s.fn(s.userdata, priority, msg);
}

void tu_log(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tu_logv(priority, fmt, ap);
	va_end(ap);
}

void tu_log_stderr_sink(void *userdata, int priority, const char *msg)
{
	(void) userdata;
	(void) priority;
	fprintf(stderr, "teleport-unix: %s\n", msg);
}

void tu_log_syslog_sink(void *userdata, int priority, const char *msg)
{
	(void) userdata;
	syslog(LOG_AUTHPRIV | LOG_PRI(priority), "teleport-unix: %s", msg);
}
