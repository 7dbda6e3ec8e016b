/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dial/find-parse.c - the reader of /webapi/find's answer (PROXY.md §5): a
 * bounded JSON reader of our own that keeps the few fields that pick the
 * path, and Teleport's TunnelAddr() rules.  Layer: libcore (libc only; the
 * HTTPS GET is find.c).
 */
#include "dial.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "parse.h"

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

