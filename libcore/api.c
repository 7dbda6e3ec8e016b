/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c - the few functions of the public C API (include/teleport-unix/
 * teleport-unix.h) that are not also internal ones: building settings
 * without a file, and Auth calls whose results leave no internal struct
 * behind.  Layer: libcore.  Including the public header beside the
 * internal ones makes the compiler check that both declare the same
 * functions the same way.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conf.h"
#include "creds.h"
#include "err.h"
#include "model.h"
#include "parse.h"
#include "teleport-unix/teleport-unix.h"

#define USEC_PER_MSEC UINT64_C(1000)
#define TIMEOUT_MAX   (UINT64_C(10) * 60 * 1000000)

int tu_conf_add_address(struct tu_conf *c, const char *hostport, struct tu_err *reterr)
{
	char *host = NULL;
	uint16_t port = 0;
	int r;

	if (!c || !hostport)
		return tu_err_set(reterr, -EINVAL, "no address given");
	if (c->n_addresses >= TU_MAX_AUTH_ADDRESSES)
		return tu_err_set(reterr, -EMSGSIZE, "more than %d Auth addresses",
				  TU_MAX_AUTH_ADDRESSES);
	r = tu_parse_hostport(hostport, TU_DEFAULT_AUTH_PORT, &host, &port);
	if (r == -ENOMEM)
		return tu_err_set(reterr, r, "out of memory");
	if (r < 0) {
		char sb[128];
		return tu_err_set(reterr, -EINVAL,
				  "invalid address '%s' (expected host, host:port or [ipv6]:port)",
				  tu_sanitize(hostport, sb, sizeof(sb)));
	}
	c->addresses[c->n_addresses].host = host;
	c->addresses[c->n_addresses].port = port;
	c->n_addresses++;
	return 0;
}

int tu_conf_set_timeouts(struct tu_conf *c, uint64_t connect_usec, uint64_t request_usec,
			 struct tu_err *reterr)
{
	if (!c || connect_usec < USEC_PER_MSEC || connect_usec > TIMEOUT_MAX ||
	    request_usec < USEC_PER_MSEC || request_usec > TIMEOUT_MAX)
		return tu_err_set(reterr, -EINVAL, "timeouts must be between 1ms and 10m");
	c->connect_timeout_usec = connect_usec;
	c->request_timeout_usec = request_usec;
	return 0;
}

/* Whether src fits dst with its NUL (NULL or size 0: not wanted, fits). */
static bool fits(const char *dst, size_t size, const char *src)
{
	return !dst || size == 0 || (src ? strlen(src) : 0) < size;
}

static void copy_out(char *dst, size_t size, const char *src)
{
	if (!dst || size == 0)
		return;
	size_t n = src ? strnlen(src, size - 1) : 0;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

int tu_auth_ping_info(struct tu_auth *a, char *cluster, size_t cluster_size, char *version,
		      size_t version_size, struct tu_err *reterr)
{
	struct tu_ping p = {0};
	int r;

	if (!a)
		return tu_err_set(reterr, -EINVAL, "no Auth client");
	r = tu_auth_ping(a, &p, reterr);
	if (r < 0)
		return r;
	/* Never a shorter name: "example" for "example.com" could pass the caller's check. */
	if (!fits(cluster, cluster_size, p.cluster_name) ||
	    !fits(version, version_size, p.server_version)) {
		bool c = !fits(cluster, cluster_size, p.cluster_name);
		r = tu_err_set(reterr, -ENOSPC, "the %s (%zu bytes) does not fit in %zu bytes",
			       c ? "cluster name" : "Teleport version",
			       strlen(c ? p.cluster_name : p.server_version),
			       c ? cluster_size : version_size);
		tu_ping_done(&p);
		return r;
	}
	copy_out(cluster, cluster_size, p.cluster_name);
	copy_out(version, version_size, p.server_version);
	tu_ping_done(&p);
	return 0;
}

int tu_auth_user_exists(struct tu_auth *a, const char *name, bool *ret_exists,
			struct tu_err *reterr)
{
	struct tu_user u;
	int r;

	if (!a || !name || !ret_exists)
		return tu_err_set(reterr, -EINVAL, "no Auth client or user name");
	memset(&u, 0, sizeof(u));
	r = tu_auth_get_user(a, name, &u, reterr);
	if (r == -ENOENT) {
		tu_err_clear(reterr);
		*ret_exists = false;
		return 0;
	}
	if (r < 0)
		return r;
	tu_user_done(&u);
	*ret_exists = true;
	return 0;
}
