/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake-online.c - a stand-in for libteleport-unix.so.0's online table, for
 * tests/nss/test-nss-module.c: the NSS module dlopens it (through
 * TELEPORT_UNIX_CORE_LIB) on a miss.  FAKE_ONLINE_MODE selects the answer:
 * "write" adds the asked name (uid/gid 310000) or id (name "byid") to a
 * fresh snapshot in $TELEPORT_UNIX_CACHE_DIR and returns 0; "enoent" returns
 * -ENOENT; anything else -ETIMEDOUT.  fake_online_calls counts the calls.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "err.h"
#include "online.h"
#include "snapshot.h"

int fake_online_calls;
const struct tu_online_v1 *tu_online_v1_get(void) __attribute__((visibility("default")));
extern int fake_online_calls __attribute__((visibility("default")));

static int answer(const struct tu_online_req *req, const char *name, uint32_t id)
{
	const char *mode = getenv("FAKE_ONLINE_MODE"), *dir = getenv("TELEPORT_UNIX_CACHE_DIR");
	char path[PATH_MAX];
	struct tu_pw_rec pw;
	struct tu_gr_rec gr;

	fake_online_calls++;
	if (!req || req->size < sizeof(*req) || req->now_usec <= 0 || !req->log_fn)
		return -EINVAL;
	req->log_fn(req->log_userdata, LOG_DEBUG, "fake online refresh");
	if (!mode || strcmp(mode, "write") != 0)
		return mode && strcmp(mode, "enoent") == 0 ? -ENOENT : -ETIMEDOUT;
	if (!dir)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/accounts.db", dir);
	pw = (struct tu_pw_rec){name ? name : "byid", "online",           "/home/online", "/bin/sh",
				name ? 310000 : id,   name ? 310000 : id, NULL,           0};
	gr = (struct tu_gr_rec){pw.name, pw.gid, NULL, 0};
	return tu_snapshot_write_accounts(path, &pw, 1, &gr, 1, 2, req->now_usec, NULL);
}

static int by_name(const struct tu_online_req *req, const char *name)
{
	return answer(req, name, 0);
}

static int by_id(const struct tu_online_req *req, uint32_t id)
{
	return answer(req, NULL, id);
}

static const struct tu_online_v1 table = {
    .version = TU_ONLINE_VERSION,
    .size = sizeof(struct tu_online_v1),
    .refresh_for_name = by_name,
    .refresh_for_id = by_id,
};

const struct tu_online_v1 *tu_online_v1_get(void)
{
	return &table;
}
