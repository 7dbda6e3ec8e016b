/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - logging sink (see log.h).  Layer: libcore/base.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "log.h"

struct sink {
	tu_log_fn fn;
	void *userdata;
	bool debug;
};

/* Written once by the host shim before use; read by any thread. */
static _Atomic(struct sink *) current;
static struct sink sinks[2];
static atomic_uint sink_gen;

void tu_log_set_sink(tu_log_fn fn, void *userdata, bool debug)
{
	/* Two slots so a concurrent reader never sees a half-written sink. */
	unsigned g = atomic_fetch_add(&sink_gen, 1) & 1;
	sinks[g] = (struct sink){ .fn = fn, .userdata = userdata, .debug = debug };
	atomic_store(&current, fn ? &sinks[g] : NULL);
}

bool tu_log_debug_enabled(void)
{
	struct sink *s = atomic_load(&current);
	return s && s->debug;
}

void tu_logv(int priority, const char *fmt, va_list ap)
{
	struct sink *s = atomic_load(&current);
	char msg[1024];

	if (!s || !s->fn)
		return;
	if (LOG_PRI(priority) == LOG_DEBUG && !s->debug)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	s->fn(s->userdata, priority, msg);
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
