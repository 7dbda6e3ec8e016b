/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dial/find.c - discovery from a Proxy address alone: GET /webapi/find
 * (PROXY.md §5) and the few fields that pick the path (TLS routing on?
 * the tunnel address; the cluster name).  Layer: libcore (libcurl for the
 * HTTPS GET, through h2-curl.h's shared set-up; a small bounded JSON reader
 * of our own).
 */
#include "dial.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "conf.h"
#include "err.h"
#include "h2-curl.h"
#include "parse.h"
#include "resolve.h"
#include "transport.h"

#define FIND_MAX_BODY  (64u * 1024u)
#define JSON_MAX_DEPTH 32
#define JSON_MAX_STR   512
#define DEFAULT_TUNNEL_PORT 3024

/* ---- a bounded JSON reader that keeps the fields find needs ------------- */

enum field {
	F_NONE = -1,
	F_CLUSTER,      /* cluster_name */
	F_TLS_ROUTING,  /* proxy.tls_routing_enabled */
	F_LISTEN,       /* proxy.ssh.listen_addr */
	F_TUNNEL_LISTEN,/* proxy.ssh.tunnel_listen_addr */
	F_WEB_LISTEN,   /* proxy.ssh.web_listen_addr */
	F_PUBLIC,       /* proxy.ssh.public_addr */
	F_SSH_PUBLIC,   /* proxy.ssh.ssh_public_addr */
	F_TUNNEL_PUBLIC,/* proxy.ssh.ssh_tunnel_public_addr */
	F_N
};

struct json {
	const char *p, *end;
	char *reason;
	size_t reason_size;
	bool seen_proxy;
	bool has[F_N];
	bool b[F_N];
	char s[F_N][JSON_MAX_STR];
};

static int jfail(struct json *j, const char *what)
{
	snprintf(j->reason, j->reason_size, "%s", what);
	return -EBADMSG;
}

static void ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* A string into out (may be NULL: skipped); \u escapes beyond ASCII become '?'. */
static int jstring(struct json *j, char *out, size_t size)
{
	size_t n = 0;

	if (j->p >= j->end || *j->p != '"')
		return jfail(j, "expected a string");
	j->p++;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char) *j->p++;
		if (c < 0x20)
			return jfail(j, "control character in a string");
		if (c == '\\') {
			if (j->p >= j->end)
				return jfail(j, "unterminated escape");
			c = (unsigned char) *j->p++;
			switch (c) {
			case '"': case '\\': case '/': break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u': {
				unsigned v = 0;
				if (j->end - j->p < 4)
					return jfail(j, "short \\u escape");
				for (int i = 0; i < 4; i++) {
					char h = *j->p++;
					v = v * 16 + (unsigned) (h >= '0' && h <= '9'   ? h - '0'
								 : h >= 'a' && h <= 'f' ? h - 'a' + 10
								 : h >= 'A' && h <= 'F' ? h - 'A' + 10
											: 99);
					if (v > 0xffff)
						return jfail(j, "bad \\u escape");
				}
				c = v >= 0x20 && v < 0x7f ? (unsigned char) v : '?';
				break;
			}
			default:
				return jfail(j, "bad escape");
			}
		}
		if (out) {
			if (n + 1 >= size)
				return jfail(j, "string too long");
			out[n++] = (char) c;
		}
	}
	if (j->p >= j->end)
		return jfail(j, "unterminated string");
	j->p++;
	if (out)
		out[n] = '\0';
	return 0;
}

static int jvalue(struct json *j, int depth, const char *path);

static enum field field_of(const char *path)
{
	static const char *const names[F_N] = {
	    [F_CLUSTER] = "cluster_name",
	    [F_TLS_ROUTING] = "proxy.tls_routing_enabled",
	    [F_LISTEN] = "proxy.ssh.listen_addr",
	    [F_TUNNEL_LISTEN] = "proxy.ssh.tunnel_listen_addr",
	    [F_WEB_LISTEN] = "proxy.ssh.web_listen_addr",
	    [F_PUBLIC] = "proxy.ssh.public_addr",
	    [F_SSH_PUBLIC] = "proxy.ssh.ssh_public_addr",
	    [F_TUNNEL_PUBLIC] = "proxy.ssh.ssh_tunnel_public_addr",
	};
	for (int i = 0; i < F_N; i++)
		if (strcmp(path, names[i]) == 0)
			return (enum field) i;
	return F_NONE;
}

static int jobject(struct json *j, int depth, const char *path)
{
	char key[64], child[200];

	j->p++; /* { */
	ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		ws(j);
		/* Keys longer than ours are skipped (no field of ours is that long). */
		const char *at = j->p;
		int r = jstring(j, key, sizeof(key));
		if (r < 0) {
			j->p = at;
			r = jstring(j, NULL, 0);
			if (r < 0)
				return r;
			key[0] = '\0';
			snprintf(j->reason, j->reason_size, "%s", "");
		}
		ws(j);
		if (j->p >= j->end || *j->p != ':')
			return jfail(j, "expected ':'");
		j->p++;
		ws(j);
		snprintf(child, sizeof(child), "%s%s%s", path, *path ? "." : "", key);
		if (depth == 0 && strcmp(key, "proxy") == 0)
			j->seen_proxy = true;
		r = jvalue(j, depth + 1, key[0] ? child : "");
		if (r < 0)
			return r;
		ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return 0;
		}
		return jfail(j, "expected ',' or '}'");
	}
}

static int jarray(struct json *j, int depth)
{
	j->p++; /* [ */
	ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		ws(j);
		int r = jvalue(j, depth + 1, "");
		if (r < 0)
			return r;
		ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		return jfail(j, "expected ',' or ']'");
	}
}

static bool word(struct json *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t) (j->end - j->p) < n || memcmp(j->p, w, n) != 0)
		return false;
	j->p += n;
	return true;
}

static int jvalue(struct json *j, int depth, const char *path)
{
	enum field f = *path ? field_of(path) : F_NONE;

	if (depth > JSON_MAX_DEPTH)
		return jfail(j, "nested too deeply");
	ws(j);
	if (j->p >= j->end)
		return jfail(j, "unexpected end");
	switch (*j->p) {
	case '{':
		return jobject(j, depth, path);
	case '[':
		return jarray(j, depth);
	case '"':
		if (f != F_NONE && f != F_TLS_ROUTING) {
			int r = jstring(j, j->s[f], sizeof(j->s[f]));
			if (r == 0)
				j->has[f] = true;
			return r;
		}
		return jstring(j, NULL, 0);
	case 't':
	case 'f':
		if (word(j, "true") || word(j, "false")) {
			if (f == F_TLS_ROUTING) {
				j->b[f] = j->p[-1] == 'e' && j->p[-2] == 'u';
				j->has[f] = true;
			}
			return 0;
		}
		return jfail(j, "bad literal");
	case 'n':
		return word(j, "null") ? 0 : jfail(j, "bad literal");
	default:
		if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
			j->p++;
			while (j->p < j->end && strchr("0123456789.eE+-", *j->p))
				j->p++;
			return 0;
		}
		return jfail(j, "unexpected character");
	}
}

/* "tcp://host:port", "https://host", "host:port" -> host + port (default_port when none). */
static bool addr_of(const char *s, uint16_t default_port, bool override_port, uint16_t port,
		    char *out, size_t size)
{
	char *host = NULL;
	uint16_t p = 0;
	const char *sep = strstr(s, "://");

	if (sep) {
		if (!((sep - s == 3 && strncmp(s, "tcp", 3) == 0) ||
		      (sep - s == 4 && strncmp(s, "http", 4) == 0) ||
		      (sep - s == 5 && strncmp(s, "https", 5) == 0)))
			return false;
		s = sep + 3;
	}
	if (!*s || tu_parse_hostport(s, default_port, &host, &p) < 0)
		return false;
	if (override_port)
		p = port;
	if (strchr(host, ':'))
		snprintf(out, size, "[%s]:%u", host, p);
	else
		snprintf(out, size, "%s:%u", host, p);
	free(host);
	return true;
}

static uint16_t port_of(const char *s, uint16_t dflt)
{
	char tmp[TU_DIAL_WHAT_MAX];
	const char *colon;
	uint32_t v;

	if (!addr_of(s, dflt, false, 0, tmp, sizeof(tmp)))
		return dflt;
	colon = strrchr(tmp, ':');
	return colon && tu_parse_u32(colon + 1, &v) == 0 && v && v <= 65535 ? (uint16_t) v : dflt;
}

int tu_dial_find_parse(const char *json, size_t len, uint16_t web_port, struct tu_dial_memo *ret,
		       struct tu_err *reterr)
{
	char reason[128] = "";
	struct json *j = calloc(1, sizeof(*j));
	int r;

	if (!j)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	j->p = json;
	j->end = json + len;
	j->reason = reason;
	j->reason_size = sizeof(reason);
	ws(j);
	if (j->p >= j->end || *j->p != '{') {
		free(j);
		return tu_err_set(reterr, -EBADMSG, "the answer is not a JSON object");
	}
	r = jvalue(j, 0, "");
	if (r == 0) {
		ws(j);
		if (j->p != j->end)
			r = jfail(j, "trailing data");
	}
	if (r < 0) {
		size_t at = (size_t) (j->p - json);
		free(j);
		return tu_err_set(reterr, -EBADMSG, "the answer is not valid JSON (%s near byte %zu)",
				  reason[0] ? reason : "syntax error", at);
	}
	if (!j->seen_proxy) {
		free(j);
		return tu_err_set(reterr, -EBADMSG,
				  "the answer has no \"proxy\" object: not a Teleport Proxy's find");
	}
	ret->found = true;
	ret->tls_routing = j->has[F_TLS_ROUTING] && j->b[F_TLS_ROUTING];
	ret->cluster[0] = '\0';
	if (j->has[F_CLUSTER] && strlen(j->s[F_CLUSTER]) < sizeof(ret->cluster))
		memcpy(ret->cluster, j->s[F_CLUSTER], strlen(j->s[F_CLUSTER]) + 1);
	ret->tunnel_addr[0] = '\0';
	/* TunnelAddr() (PROXY.md §5).  TELEPORT_TUNNEL_PUBLIC_ADDR is not read: this code runs
	 * inside sshd and getpwnam callers, whose environment is not the administrator's. */
	char *t = ret->tunnel_addr;
	size_t ts = sizeof(ret->tunnel_addr);
	if (ret->tls_routing) {
		uint16_t wp = j->has[F_WEB_LISTEN] ? port_of(j->s[F_WEB_LISTEN], web_port) : web_port;
		if (!(j->has[F_PUBLIC] && addr_of(j->s[F_PUBLIC], wp, false, 0, t, ts)) &&
		    !(j->has[F_WEB_LISTEN] && addr_of(j->s[F_WEB_LISTEN], wp, false, 0, t, ts)))
			t[0] = '\0';
	} else {
		uint16_t tp = j->has[F_TUNNEL_LISTEN]
				  ? port_of(j->s[F_TUNNEL_LISTEN], DEFAULT_TUNNEL_PORT)
				  : DEFAULT_TUNNEL_PORT;
		if (!(j->has[F_TUNNEL_PUBLIC] && addr_of(j->s[F_TUNNEL_PUBLIC], tp, false, 0, t, ts)) &&
		    !(j->has[F_SSH_PUBLIC] && addr_of(j->s[F_SSH_PUBLIC], tp, true, tp, t, ts)) &&
		    !(j->has[F_PUBLIC] && addr_of(j->s[F_PUBLIC], tp, true, tp, t, ts)) &&
		    !(j->has[F_TUNNEL_LISTEN] && addr_of(j->s[F_TUNNEL_LISTEN], tp, false, 0, t, ts)) &&
		    !(j->has[F_WEB_LISTEN] && addr_of(j->s[F_WEB_LISTEN], tp, true, tp, t, ts)))
			t[0] = '\0';
	}
	free(j);
	return 0;
}

/* ---- the HTTPS GET ------------------------------------------------------- */

struct body {
	char *buf;
	size_t len;
	bool over;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;

	if (b->len + n > FIND_MAX_BODY) {
		b->over = true;
		return CURL_WRITEFUNC_ERROR;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	return n;
}

int tu_dial_find(const struct tu_conf *conf, uint64_t deadline_usec, struct tu_dial_memo *ret,
		 struct tu_err *reterr)
{
	char what[TU_DIAL_WHAT_MAX], url[TU_DIAL_WHAT_MAX + 64], entry[TU_RESOLVE_MAX_NAME + 16 + TU_RESOLVE_MAX_ADDRS * 50];
	char addrs[TU_RESOLVE_MAX_ADDRS * 50], errbuf[CURL_ERROR_SIZE] = "", d[CURL_ERROR_SIZE];
	struct tu_resolve_result res;
	struct body b = {0};
	struct curl_slist *resolve = NULL;
	CURLM *multi = NULL;
	CURL *c = NULL;
	CURLcode rc = CURLE_OK;
	long status = 0;
	int r;

	if (!conf->proxy.host)
		return tu_err_set(reterr, -EINVAL, "auth.proxy is not set");
	const char *host = conf->proxy.host;
	uint16_t port = conf->proxy.port ? conf->proxy.port : TU_DEFAULT_PROXY_PORT;
	bool v6 = strchr(host, ':') != NULL;
	snprintf(what, sizeof(what), v6 ? "[%s]:%u" : "%s:%u", host, port);
	r = tu_h2_curl_init(reterr);
	if (r < 0)
		return r;
	uint64_t now = tu_transport_now_usec();
	if (now >= deadline_usec)
		return tu_err_set(reterr, -ETIMEDOUT, "Proxy %s: no time left to ask /webapi/find",
				  what);
	r = tu_resolve(host, deadline_usec, NULL, &res, reterr);
	if (r < 0) {
		tu_err_prefix(reterr, "Proxy %s", what);
		return r;
	}
	if (tu_resolve_format_list(&res, addrs, sizeof(addrs)) < 0)
		return tu_err_set(reterr, -EIO, "cannot format the addresses of %s", what);
	/* An IPv6 literal cannot be a CURLOPT_RESOLVE name: a private stand-in then. */
	const char *name = v6 ? "proxy-address.invalid" : host;
	snprintf(entry, sizeof(entry), "%s:%u:%s", name, port, addrs);
	snprintf(url, sizeof(url), "https://%s:%u/webapi/find", name, port);

	b.buf = malloc(FIND_MAX_BODY);
	resolve = curl_slist_append(NULL, entry);
	c = curl_easy_init();
	multi = tu_h2_multi_new();
	if (!b.buf || !resolve || !c || !multi) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	uint64_t left = deadline_usec - tu_transport_now_usec();
#define SET(opt, val)                                       \
	do {                                                \
		if (rc == CURLE_OK)                         \
			rc = curl_easy_setopt(c, opt, val); \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (conf->proxy_ca) {
		SET(CURLOPT_CAINFO, conf->proxy_ca);
		SET(CURLOPT_CAPATH, NULL);
	}
	SET(CURLOPT_RESOLVE, resolve);
	SET(CURLOPT_TIMEOUT_MS, (long) ((left + 999) / 1000));
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long) ((left + 999) / 1000));
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, &b);
	SET(CURLOPT_OPENSOCKETFUNCTION, tu_h2_open_socket);
	SET(CURLOPT_RESOLVER_START_FUNCTION, tu_h2_refuse_resolver);
	SET(CURLOPT_HTTPHEADER, NULL);
	SET(CURLOPT_USERAGENT, "teleport-unix/" PACKAGE_VERSION);
#undef SET
	if (rc != CURLE_OK) {
		r = tu_err_set(reterr, -EIO, "cannot configure libcurl: %s", curl_easy_strerror(rc));
		goto out;
	}
	rc = tu_h2_perform(multi, c, NULL);
	tu_sanitize(errbuf[0] ? errbuf : curl_easy_strerror(rc), d, sizeof(d));
	(void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_OPERATION_TIMEDOUT:
		r = tu_err_set(reterr, -ETIMEDOUT, "Proxy %s: /webapi/find timed out: %s", what, d);
		goto out;
	case CURLE_COULDNT_CONNECT: {
		long os_errno = 0;
		(void) curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ECONNREFUSED)
			r = tu_err_set(reterr, -ECONNREFUSED,
				       "cannot connect to the Proxy %s: connection refused", what);
		else if (os_errno == ETIMEDOUT)
			r = tu_err_set(reterr, -ETIMEDOUT, "cannot connect to the Proxy %s: timed out",
				       what);
		else
			r = tu_err_set(reterr, -EHOSTUNREACH, "cannot connect to the Proxy %s: %s",
				       what, d);
		goto out;
	}
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		r = tu_err_set(reterr, -EPROTO,
			       "Proxy %s: TLS failed (its web certificate is checked against %s): %s",
			       what, conf->proxy_ca ? conf->proxy_ca : "the system's trusted roots",
			       d);
		goto out;
	default:
		r = tu_err_set(reterr, b.over ? -EMSGSIZE : -EPROTO, "Proxy %s: /webapi/find failed: %s",
			       what, b.over ? "answer over 64 KiB" : d);
		goto out;
	}
	if (status != 200) {
		r = tu_err_set(reterr, -EPROTO,
			       "Proxy %s: /webapi/find answered HTTP %ld: is this a Teleport Proxy's web "
			       "address?",
			       what, status);
		goto out;
	}
	struct tu_dial_memo m = *ret;
	r = tu_dial_find_parse(b.buf, b.len, port, &m, reterr);
	if (r < 0) {
		tu_err_prefix(reterr, "Proxy %s: /webapi/find", what);
		goto out;
	}
	snprintf(m.proxy, sizeof(m.proxy), "%s", what);
	m.valid = true;
	*ret = m;
	r = 0;
out:
	if (c) {
		if (multi)
			(void) curl_multi_remove_handle(multi, c);
		curl_easy_cleanup(c);
	}
	if (multi)
		curl_multi_cleanup(multi);
	curl_slist_free_all(resolve);
	free(b.buf);
	return r;
}
