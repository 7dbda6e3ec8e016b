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
 * TELEPORT_UNIX_NSS_ONLINE=0, a configuration file exists.  System calls
 * every time (a "no" is also remembered for tu_nss_offline_lately()); thread-safe. */
bool tu_nss_online_allowed(void);

/* Whether a miss would stay a miss without going online, as found out in
 * the last 100 ms at most (tu_nss_online_allowed() said no, or the core's
 * last attempt is younger than cache.negative_ttl: tu_nss_remember_offline).
 * No system call: one coarse clock read.  Only for misses a snapshot
 * answered; a lookup without any snapshot asks tu_nss_online_allowed()
 * itself.  Never a reason to go online.  Thread-safe, fork-safe (atomic). */
bool tu_nss_offline_lately(void);

/* Remembers "stay offline" for min(for_nsec, 100 ms) minus one coarse clock
 * tick (nothing when that leaves nothing).  Thread-safe. */
void tu_nss_remember_offline(uint64_t for_nsec);

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
