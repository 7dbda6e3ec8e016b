/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tunnel-select.c - the dialer for a configuration (see tunnel-select.h).
 * Layer: libcore.
 */
#include "tunnel-select.h"

#include <errno.h>
#include <stddef.h>

#include "conf.h"
#include "err.h"
#include "tunnel-pump.h"
#include "ws.h"

int tu_tunnel_select(const struct tu_conf *conf, const struct tu_creds *creds, int *pre_fd,
		     struct tu_stream_dialer **ret, struct tu_err *reterr)
{
	(void) creds;
	*ret = NULL;
	if (conf->proxy_conn_upgrade == TU_CONN_UPGRADE_ALWAYS && conf->n_addresses > 0) {
		struct tu_ws_target t = {
		    .host = conf->addresses[0].host,
		    .port = conf->addresses[0].port,
		    .ca_path = conf->proxy_ca,
		};
		int fd = *pre_fd;
		*pre_fd = -1;
		return tu_ws_dialer_new_fd(&t, fd, ret, reterr);
	}
	return 0;
}
