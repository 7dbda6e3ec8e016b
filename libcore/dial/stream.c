/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dial/stream.c - the stream dialers of dial/tunnel-pump.h (the WebSocket
 * upgrade of dial/ws.h; the reverse tunnel) as paths of the plan (dial.h).
 * Layer: libcore, in the transport module (the upgrade's outer TLS needs
 * libssl).  The reverse tunnel has no dialer yet: dial.c's weak stand-in
 * tu_dial_tunnel_new() says so and the plan leaves it out.
 *
 * The upgrade is a path of its own, after plain TLS routing, whatever
 * auth.proxy_conn_upgrade says except `never`: behind an L7 load balancer the
 * plain TLS routing attempt fails before reaching Auth (the balancer's
 * certificate is not Auth's), the upgrade is then tried within the same
 * deadline, and the path that worked is remembered (dial.memo), so later
 * logins go straight to it without Teleport's test dial.  With `always`
 * plain TLS routing is left out.
 */
#include "dial.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "err.h"
#include "tunnel-pump.h"
#include "ws.h"

static int s_open(struct tu_dialer *d, uint64_t deadline_usec, struct sockaddr_un *ret_addr,
		  socklen_t *ret_len, struct tu_err *reterr)
{
	return tu_stream_dialer_open(d->state, deadline_usec, ret_addr, ret_len, reterr);
}

static size_t s_pollfds(struct tu_dialer *d, struct pollfd *fds, size_t max)
{
	return tu_stream_dialer_pollfds(d->state, fds, max);
}

static void s_step(struct tu_dialer *d)
{
	tu_stream_dialer_step(d->state);
}

static bool s_last_error(const struct tu_dialer *d, struct tu_err *ret)
{
	return tu_stream_dialer_last_error(d->state, ret);
}

static void s_free(void *state)
{
	tu_stream_dialer_free(state);
}

int tu_dial_wrap_stream(enum tu_dial_path path, const char *what, struct tu_stream_dialer *sd,
			struct tu_dialer **ret, struct tu_err *reterr)
{
	struct tu_dialer *d = calloc(1, sizeof(*d));

	if (!d) {
		tu_stream_dialer_free(sd);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	d->path = path;
	snprintf(d->what, sizeof(d->what), "%s", what);
	d->dial = s_open;
	d->pollfds = s_pollfds;
	d->step = s_step;
	d->last_error = s_last_error;
	d->state = sd;
	d->free_state = s_free;
	*ret = d;
	return 0;
}

int tu_dial_upgrade_new(const struct tu_conf *conf, const struct tu_creds *creds,
			const struct tu_dial_memo *memo, struct tu_dialer **ret,
			struct tu_err *reterr)
{
	struct tu_stream_dialer *sd = NULL;
	char what[TU_DIAL_WHAT_MAX];
	int r;

	(void) creds;
	(void) memo;
	if (!conf->proxy.host || conf->proxy_conn_upgrade == TU_CONN_UPGRADE_NEVER)
		return -EOPNOTSUPP;
	struct tu_ws_target t = {
	    .host = conf->proxy.host,
	    .port = conf->proxy.port ? conf->proxy.port : TU_DEFAULT_PROXY_PORT,
	    .ca_path = conf->proxy_ca,
	};
	r = tu_ws_dialer_new(&t, &sd, reterr);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), strchr(t.host, ':') ? "[%s]:%u" : "%s:%u", t.host, t.port);
	r = tu_dial_wrap_stream(TU_DIAL_TLS_ROUTING_UPGRADE, what, sd, ret, reterr);
	if (r < 0)
		return r;
	(*ret)->replaces_tls_routing = conf->proxy_conn_upgrade == TU_CONN_UPGRADE_ALWAYS;
	return 0;
}
