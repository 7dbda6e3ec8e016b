/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws-probe.c - test driver for libcore/dial/ws.c's decision, run by
 * tests/integration/test_proxy_upgrade.py against the stand-in servers:
 *
 *   ws-probe detect HOST PORT [CA]       prints "required" or "not-required"
 *   ws-probe decide CONFIG HOST PORT     applies auth.proxy_conn_upgrade and
 *                                        the memory in cache.dir; prints
 *                                        "upgrade|direct remembered|tested"
 *
 * Exit 0, or 2 with the error on stderr.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "conf.h"
#include "dial/ws.h"
#include "err.h"
#include "transport.h"

int main(int argc, char **argv)
{
	struct tu_err e = {0};
	bool b = false, remembered = false;

	if (argc >= 4 && strcmp(argv[1], "detect") == 0) {
		struct tu_ws_target t = {argv[2], (uint16_t) strtoul(argv[3], NULL, 10),
					 argc > 4 ? argv[4] : NULL};
		tu_ws_upgrade_required(&t, tu_transport_now_usec() + 5000000, &b);
		puts(b ? "required" : "not-required");
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "decide") == 0) {
		struct tu_conf *c = NULL;
		struct timeval tv;
		if (tu_conf_load(argv[2], TU_CONF_RELAXED_PERMS, &c, &e) < 0) {
			fprintf(stderr, "ws-probe: %s\n", e.msg);
			return 2;
		}
		struct tu_ws_target t = {argv[3], (uint16_t) strtoul(argv[4], NULL, 10),
					 c->proxy_ca};
		gettimeofday(&tv, NULL);
		tu_ws_decide(c, &t, (int64_t) tv.tv_sec * 1000000 + tv.tv_usec,
			     tu_transport_now_usec() + 5000000, &b, &remembered);
		printf("%s %s\n", b ? "upgrade" : "direct", remembered ? "remembered" : "tested");
		tu_conf_free(c);
		return 0;
	}
	fprintf(stderr, "usage: ws-probe detect HOST PORT [CA] | decide CONFIG HOST PORT\n");
	return 2;
}
