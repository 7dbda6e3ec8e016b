/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dl.h - the NSS module's online path (dl.c), used by nss.c on a miss.
 * Layer: nss.  Not exported (hidden; nss.map).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Whether this process may go online at all: the core did not fail to load
 * in the last 10 s, euid 0, not AT_SECURE, not disabled by
 * TELEPORT_UNIX_NSS_ONLINE=0.  Cheap; thread-safe. */
bool tu_nss_online_allowed(void);

/* Whether tu_nss_online_allowed() found no configuration file in the last
 * 100 ms (so it would say no again).  No system call: one coarse clock read.
 * For misses the snapshot answered; a lookup without any snapshot asks
 * tu_nss_online_allowed() itself.  Thread-safe. */
bool tu_nss_unconfigured_lately(void);

/*
 * Asks libteleport-unix.so.0 (dlopen'ed on first use, from TU_PKGLIBDIR or
 * $TELEPORT_UNIX_CORE_LIB) to refresh the snapshot for name (non-NULL) or id.
 * Returns 0 when a refreshed snapshot was written (look up again), -ENOENT
 * when the miss stands (recent snapshot, or this key tried in the last
 * second), -EPERM (not allowed here, or the core failed to load lately), -EBUSY (another thread is
 * online), -ENOPKG (core library missing or without a usable table), or the core's negative errno
 * (-ETIMEDOUT, -ECONNREFUSED, ...).  Blocking, bounded by the config's timeouts.  Thread-safe.
 */
int tu_nss_online_refresh(const char *name, uint32_t id);
