/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tunnel-select.h - which stream dialer (if any) carries the connection to
 * Auth for a configuration: today the WebSocket upgrade (dial/ws.h); the
 * SSH reverse tunnel is not implemented (docs/transport.md says why).
 * Layer: libcore.
 *
 * Until the Proxy path list (dial/dial.h) decides among every path, this
 * applies the keys this folder owns:
 *   - auth.proxy_conn_upgrade: always: the WebSocket upgrade to the first
 *     auth.addresses entry (Teleport's authConnect with
 *     ALPNConnUpgradeRequired: that address is the Proxy's web address);
 *   - otherwise none (plain TCP, h2.c's own dial).
 */
#pragma once

struct tu_conf;
struct tu_creds;
struct tu_err;
struct tu_stream_dialer;

/*
 * 0 with *ret a new dialer or NULL (none); -ENOMEM.  *pre_fd: a TCP
 * connection the loader made to the first Auth address (h2-load.c), or -1:
 * a dialer that can use it takes it (and sets *pre_fd to -1).
 */
int tu_tunnel_select(const struct tu_conf *conf, const struct tu_creds *creds, int *pre_fd,
		     struct tu_stream_dialer **ret, struct tu_err *reterr);
