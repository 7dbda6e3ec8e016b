/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-dial.c - unit tests of libcore/dial/ (issue 12): the path names of
 * `ping`'s via, Teleport's ALPN list for TLS routing (PROXY.md §0: cluster
 * example.com -> teleport-auth@6578616d706c652e636f6d.teleport.cluster.local),
 * the /webapi/find reader (TunnelAddr() rules of PROXY.md §5, garbage, depth),
 * the plan's fixed order with the remembered path first, and the memo's round
 * trip through <cache.dir>/dial.memo.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "dial/dial.h"
#include "err.h"

static void test_names(void **state)
{
	enum tu_dial_path p;

	(void) state;
	assert_string_equal(tu_dial_path_name(TU_DIAL_DIRECT), "direct");
	assert_string_equal(tu_dial_path_name(TU_DIAL_TLS_ROUTING), "proxy tls-routing");
	assert_string_equal(tu_dial_path_name(TU_DIAL_TLS_ROUTING_UPGRADE),
			    "proxy tls-routing+upgrade");
	assert_string_equal(tu_dial_path_name(TU_DIAL_TUNNEL), "reverse tunnel");
	assert_string_equal(tu_dial_path_name(TU_DIAL_N_PATHS), "unknown");
	for (int i = 0; i < TU_DIAL_N_PATHS; i++) {
		assert_int_equal(tu_dial_path_from_name(tu_dial_path_name(i), &p), 0);
		assert_int_equal(p, i);
	}
	assert_int_equal(tu_dial_path_from_name("proxy", &p), -EINVAL);
}

static void test_alpn(void **state)
{
	static const char want[] = "teleport-auth@6578616d706c652e636f6d.teleport.cluster.local";
	uint8_t buf[TU_DIAL_ALPN_MAX];
	char big[200];

	(void) state;
	int n = tu_dial_alpn_auth("example.com", buf, sizeof(buf));
	assert_int_equal(n, 1 + (int) strlen(want) + 3);
	assert_int_equal(buf[0], strlen(want));
	assert_memory_equal(buf + 1, want, strlen(want));
	assert_memory_equal(buf + 1 + strlen(want), "\x02h2", 3);
	assert_int_equal(tu_dial_alpn_auth("", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(tu_dial_alpn_auth(NULL, buf, sizeof(buf)), -EINVAL);
	/* 14 + 2n + 23 <= 255: n <= 109 */
	memset(big, 'a', 109);
	big[109] = '\0';
	assert_true(tu_dial_alpn_auth(big, buf, sizeof(buf)) > 0);
	big[109] = 'a';
	big[110] = '\0';
	assert_int_equal(tu_dial_alpn_auth(big, buf, sizeof(buf)), -ENAMETOOLONG);
	assert_int_equal(tu_dial_alpn_auth("example.com", buf, 20), -ENAMETOOLONG);
}

static int parse(const char *json, struct tu_dial_memo *m, struct tu_err *e)
{
	*m = (struct tu_dial_memo){.upgrade = -1};
	tu_err_clear(e);
	return tu_dial_find_parse(json, strlen(json), 443, m, e);
}

static void test_find_parse(void **state)
{
	struct tu_dial_memo m;
	struct tu_err e;

	(void) state;
	/* TLS routing: ssh.public_addr, default port = the web port. */
	assert_int_equal(parse("{\"proxy\":{\"ssh\":{\"public_addr\":\"proxy.example.com\","
			       "\"web_listen_addr\":\"0.0.0.0:3080\"},\"tls_routing_enabled\":true},"
			       "\"cluster_name\":\"example.com\",\"server_version\":\"16.4.0\"}",
			       &m, &e),
			 0);
	assert_true(m.found);
	assert_true(m.tls_routing);
	assert_string_equal(m.cluster, "example.com");
	assert_string_equal(m.tunnel_addr, "proxy.example.com:3080");

	/* No TLS routing: ssh_tunnel_public_addr wins, then ssh_public_addr with the tunnel port. */
	assert_int_equal(parse("{\"proxy\":{\"ssh\":{\"ssh_public_addr\":\"ssh.example.com:3023\","
			       "\"tunnel_listen_addr\":\"0.0.0.0:4024\",\"public_addr\":\"p:443\"},"
			       "\"tls_routing_enabled\":false},\"cluster_name\":\"c\"}",
			       &m, &e),
			 0);
	assert_false(m.tls_routing);
	assert_string_equal(m.tunnel_addr, "ssh.example.com:4024");
	assert_int_equal(parse("{\"proxy\":{\"ssh\":{\"ssh_tunnel_public_addr\":\"tcp://t.example.com\","
			       "\"ssh_public_addr\":\"ssh.example.com:3023\"}}}",
			       &m, &e),
			 0);
	assert_string_equal(m.tunnel_addr, "t.example.com:3024");
	/* Unknown fields, arrays, numbers, nulls, escapes are skipped. */
	assert_int_equal(parse(" {\"auth\":{\"a\":[1,2.5e3,-1,null,true,{\"x\":\"\\u00e9\\n\"}]},"
			       "\"proxy\":{\"tls_routing_enabled\":true,\"db\":{}},"
			       "\"cluster_name\":\"ex\\u0061mple\"} ",
			       &m, &e),
			 0);
	assert_string_equal(m.cluster, "example");
	assert_true(m.tls_routing);

	/* Garbage and foreign answers. */
	assert_int_equal(parse("<html>Welcome to nginx</html>", &m, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "not a JSON object"));
	assert_int_equal(parse("{\"cluster_name\":\"x\"}", &m, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "no \"proxy\""));
	assert_int_equal(parse("{\"proxy\":{}", &m, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "not valid JSON"));
	assert_int_equal(parse("{\"proxy\":{}} x", &m, &e), -EBADMSG);
	assert_int_equal(parse("{\"proxy\":\"\x01\"}", &m, &e), -EBADMSG);
	assert_false(m.found);
	char deep[200] = "{\"proxy\":";
	for (int i = 0; i < 60; i++)
		strcat(deep, "[");
	assert_int_equal(parse(deep, &m, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "nested too deeply"));
}

static struct tu_conf conf;
static char cache[64];

static void conf_init(void)
{
	static char *hosts[] = {(char *) "auth-1.example.com", (char *) "10.0.0.2"};

	memset(&conf, 0, sizeof(conf));
	conf.addresses[0].host = hosts[0];
	conf.addresses[0].port = 3025;
	conf.addresses[1].host = hosts[1];
	conf.addresses[1].port = 0;
	conf.n_addresses = 2;
	conf.proxy.host = (char *) "proxy.example.com";
	conf.proxy.port = 443;
	conf.cluster_name = (char *) "example.com";
	conf.cache_dir = cache;
}

static void test_plan(void **state)
{
	struct tu_dial_plan p;
	struct tu_dial_memo m = {.upgrade = -1};
	struct tu_err e;

	(void) state;
	conf_init();
	tu_err_clear(&e);
	/* Fixed order: direct (each address), then TLS routing (the stand-ins of the
	 * upgrade and the tunnel answer -EOPNOTSUPP until dial/ws.c, tunnel.c land). */
	assert_int_equal(tu_dial_plan_new(&conf, NULL, NULL, &p, &e), 0);
	assert_true(p.n >= 3);
	assert_int_equal(p.d[0]->path, TU_DIAL_DIRECT);
	assert_string_equal(p.d[0]->what, "auth-1.example.com:3025");
	assert_int_equal(p.d[0]->alpn_len, 0);
	assert_string_equal(p.d[1]->what, "10.0.0.2:3025");
	assert_int_equal(p.d[2]->path, TU_DIAL_TLS_ROUTING);
	assert_string_equal(p.d[2]->what, "proxy.example.com:443");
	assert_int_equal(p.d[2]->alpn[0], 59);
	tu_dial_plan_done(&p);

	/* The remembered path goes first, the others keep their order. */
	m.valid = true;
	snprintf(m.proxy, sizeof(m.proxy), "proxy.example.com:443");
	m.has_path = true;
	m.path = TU_DIAL_TLS_ROUTING;
	snprintf(m.path_what, sizeof(m.path_what), "proxy.example.com:443");
	assert_int_equal(tu_dial_plan_new(&conf, NULL, &m, &p, &e), 0);
	assert_int_equal(p.d[0]->path, TU_DIAL_TLS_ROUTING);
	assert_string_equal(p.d[1]->what, "auth-1.example.com:3025");
	assert_string_equal(p.d[2]->what, "10.0.0.2:3025");
	tu_dial_plan_done(&p);
	m.path = TU_DIAL_DIRECT;
	snprintf(m.path_what, sizeof(m.path_what), "10.0.0.2:3025");
	assert_int_equal(tu_dial_plan_new(&conf, NULL, &m, &p, &e), 0);
	assert_string_equal(p.d[0]->what, "10.0.0.2:3025");
	assert_string_equal(p.d[1]->what, "auth-1.example.com:3025");
	tu_dial_plan_done(&p);

	/* A memo of another Proxy is ignored. */
	snprintf(m.proxy, sizeof(m.proxy), "old-proxy.example.com:443");
	assert_int_equal(tu_dial_plan_new(&conf, NULL, &m, &p, &e), 0);
	assert_string_equal(p.d[0]->what, "auth-1.example.com:3025");
	tu_dial_plan_done(&p);

	/* find said TLS routing is off: no TLS routing path. */
	snprintf(m.proxy, sizeof(m.proxy), "proxy.example.com:443");
	m.has_path = false;
	m.found = true;
	m.tls_routing = false;
	assert_int_equal(tu_dial_plan_new(&conf, NULL, &m, &p, &e), 0);
	for (size_t i = 0; i < p.n; i++)
		assert_int_not_equal(p.d[i]->path, TU_DIAL_TLS_ROUTING);
	tu_dial_plan_done(&p);

	/* Proxy only, and no cluster name anywhere: a clear error naming the key. */
	conf.n_addresses = 0;
	conf.cluster_name = NULL;
	tu_err_clear(&e);
	assert_int_equal(tu_dial_plan_new(&conf, NULL, NULL, &p, &e), -EINVAL);
	assert_string_equal(e.key, "auth.cluster_name");
	assert_non_null(strstr(e.msg, "cluster name"));
}

static void test_memo(void **state)
{
	struct tu_dial_memo m = {.upgrade = -1}, back;
	struct tu_err e;
	char path[128];
	FILE *f;

	(void) state;
	conf_init();
	tu_err_clear(&e);
	assert_int_equal(tu_dial_memo_load(&conf, &back, &e), -ENOENT);
	m.valid = m.found = m.tls_routing = true;
	snprintf(m.proxy, sizeof(m.proxy), "proxy.example.com:443");
	snprintf(m.tunnel_addr, sizeof(m.tunnel_addr), "proxy.example.com:443");
	snprintf(m.cluster, sizeof(m.cluster), "example.com");
	m.has_path = true;
	m.path = TU_DIAL_TLS_ROUTING;
	snprintf(m.path_what, sizeof(m.path_what), "proxy.example.com:443");
	m.upgrade = 0;
	m.updated_usec = 42;
	assert_int_equal(tu_dial_memo_save(&conf, &m, &e), 0);
	assert_int_equal(tu_dial_memo_load(&conf, &back, &e), 0);
	assert_true(back.valid && back.found && back.tls_routing && back.has_path);
	assert_int_equal(back.path, TU_DIAL_TLS_ROUTING);
	assert_string_equal(back.proxy, m.proxy);
	assert_string_equal(back.tunnel_addr, m.tunnel_addr);
	assert_string_equal(back.cluster, m.cluster);
	assert_string_equal(back.path_what, m.path_what);
	assert_int_equal(back.upgrade, 0);
	assert_int_equal(back.updated_usec, 42);

	/* A damaged memo is refused, never half used. */
	snprintf(path, sizeof(path), "%s/dial.memo", cache);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("version 1\npath teleport\n", f);
	fclose(f);
	assert_int_equal(tu_dial_memo_load(&conf, &back, &e), -EBADMSG);
	/* One writable by others is not trusted (it picks where we connect). */
	assert_int_equal(tu_dial_memo_save(&conf, &m, &e), 0);
	assert_int_equal(chmod(path, 0666), 0);
	assert_true(tu_dial_memo_load(&conf, &back, &e) < 0);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),      cmocka_unit_test(test_alpn),
	    cmocka_unit_test(test_find_parse), cmocka_unit_test(test_plan),
	    cmocka_unit_test(test_memo),
	};
	snprintf(cache, sizeof(cache), "/tmp/test-dial.XXXXXX");
	if (!mkdtemp(cache))
		return 1;
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(cache);
	return r;
}
