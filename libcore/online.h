/* SPDX-License-Identifier: Apache-2.0 */
/*
 * online.h - the small versioned function table that libnss_teleport.so.2
 * reaches through dlopen("libteleport-unix.so.0", RTLD_NOW|RTLD_LOCAL) on a
 * lookup miss (STYLE §2.3, §2.9.9).  Layer: libcore.
 *
 * The NSS side (nss/dl.c) decides WHETHER to go online (root, not AT_SECURE,
 * credentials readable); this side decides HOW: it loads the config and,
 * unless the public snapshot or the last online attempt is younger than
 * cache.negative_ttl (then the miss stands, with no network), refreshes the
 * snapshots under the configured timeouts: for a name, with a usable private
 * state, only that Teleport user, the roles and the locks (3 RPCs, merged
 * into the state); otherwise a full sync.  The caller then looks the name or
 * id up in the refreshed public snapshot as usual.
 *
 * ABI rules: the NSS module and the core may come from different builds.
 * The table is append-only: new members go at the end, `size` tells how much
 * of it exists; a caller checks version == TU_ONLINE_VERSION and size >= the
 * offset of the member it uses.  Same for struct tu_online_req (the caller
 * sets req->size = sizeof(*req)).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define TU_ONLINE_VERSION 1
/* The one symbol NSS looks up with dlsym(). */
#define TU_ONLINE_SYMBOL  "tu_online_v1_get"

/* What NSS passes in (the NSS copy of base has its own globals: the sink travels here). */
struct tu_online_req {
	size_t size;             /* sizeof(struct tu_online_req) as the caller knows it */
	const char *config_path; /* NULL = tu_conf_path(NULL) (TELEPORT_UNIX_CONFIG via
				    secure_getenv, else default) */
	tu_log_fn log_fn;        /* where to log (NULL = nowhere) */
	void *log_userdata;
	bool debug;       /* log LOG_DEBUG too */
	int64_t now_usec; /* the caller's clock (CLOCK_REALTIME) */
};

struct tu_online_v1 {
	uint32_t version; /* TU_ONLINE_VERSION */
	size_t size;      /* sizeof(struct tu_online_v1) of the library */
	/*
	 * Each refreshes the snapshots so that the public snapshot answers the
	 * query.  Returns 0 when the refreshed snapshot was written (look the
	 * name/id up again), -ENOENT when nothing was fetched because the
	 * snapshot is recent enough (younger than cache.negative_ttl) so the miss
	 * stands, or another negative errno on failure (never -ENOENT: a
	 * missing config or credential file is reported as -EIO), e.g.
	 * -EPERM (not root, or AT_SECURE), -EINVAL (bad req), -ETIMEDOUT,
	 * -ECONNREFUSED, -EACCES; the detail goes to req->log_fn.
	 * Blocking, bounded by the config's connect + request timeouts per RPC.
	 * Thread-safe (one Auth client per call).  Never called from setuid
	 * programs (the caller checks).
	 */
	int (*refresh_for_name)(const struct tu_online_req *req, const char *name);
	int (*refresh_for_id)(const struct tu_online_req *req, uint32_t id);
};

/* Returns the library's table (static storage, never NULL). */
const struct tu_online_v1 *tu_online_v1_get(void);
