/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dial/dial.c - the paths to Auth: their names, the ALPN list of TLS routing,
 * the plan (fixed order, the remembered path first) and the memo kept in
 * <cache.dir>/dial.memo (see dial.h).  Layer: libcore; no curl, no OpenSSL.
 */
#include "dial.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cleanup.h"
#include "conf.h"
#include "creds.h"
#include "err.h"
#include "fsutil.h"
#include "parse.h"

#define MEMO_FILE     TU_CACHE_DIAL_MEMO_FILE
#define MEMO_MAX_SIZE 4096

static const char *const path_names[TU_DIAL_N_PATHS] = {
    [TU_DIAL_DIRECT] = "direct",
    [TU_DIAL_TLS_ROUTING] = "proxy tls-routing",
    [TU_DIAL_TLS_ROUTING_UPGRADE] = "proxy tls-routing+upgrade",
    [TU_DIAL_TUNNEL] = "reverse tunnel",
};

const char *tu_dial_path_name(enum tu_dial_path p)
{
	return (unsigned) p < TU_DIAL_N_PATHS ? path_names[p] : "unknown";
}

int tu_dial_path_from_name(const char *name, enum tu_dial_path *ret)
{
	for (unsigned i = 0; i < TU_DIAL_N_PATHS; i++)
		if (name && strcmp(name, path_names[i]) == 0) {
			*ret = (enum tu_dial_path) i;
			return 0;
		}
	return -EINVAL;
}

int tu_dial_alpn_auth(const char *cluster, uint8_t *buf, size_t size)
{
	static const char prefix[] = "teleport-auth@", suffix[] = ".teleport.cluster.local";
	static const char hex[] = "0123456789abcdef";
	size_t n, len = 0;

	if (!cluster || !*cluster)
		return -EINVAL;
	n = sizeof(prefix) - 1 + 2 * strlen(cluster) + sizeof(suffix) - 1;
	if (n > 255 || 1 + n + 3 > size)
		return -ENAMETOOLONG;
	buf[len++] = (uint8_t) n;
	memcpy(buf + len, prefix, sizeof(prefix) - 1);
	len += sizeof(prefix) - 1;
	for (const unsigned char *p = (const unsigned char *) cluster; *p; p++) {
		buf[len++] = (uint8_t) hex[*p >> 4];
		buf[len++] = (uint8_t) hex[*p & 15];
	}
	memcpy(buf + len, suffix, sizeof(suffix) - 1);
	len += sizeof(suffix) - 1;
	buf[len++] = 2;
	buf[len++] = 'h';
	buf[len++] = '2';
	return (int) len;
}

struct tu_dialer *tu_dialer_free(struct tu_dialer *d)
{
	if (!d)
		return NULL;
	if (d->free_state)
		d->free_state(d->state);
	free(d->host);
	free(d);
	return NULL;
}

/* Until dial/stream.c (over ws.h) and dial/tunnel*.c define them: those paths are not
 * available. */
__attribute__((weak)) int tu_dial_upgrade_new(const struct tu_conf *conf,
					      const struct tu_creds *creds,
					      const struct tu_dial_memo *memo,
					      struct tu_dialer **ret, struct tu_err *reterr)
{
	(void) conf;
	(void) creds;
	(void) memo;
	(void) ret;
	return tu_err_set(reterr, -EOPNOTSUPP, "the connection upgrade is not built in");
}

__attribute__((weak)) int tu_dial_tunnel_new(const struct tu_conf *conf,
					     const struct tu_creds *creds,
					     const struct tu_dial_memo *memo, struct tu_dialer **ret,
					     struct tu_err *reterr)
{
	(void) conf;
	(void) creds;
	(void) memo;
	(void) ret;
	return tu_err_set(reterr, -EOPNOTSUPP, "the reverse tunnel is not built in");
}

static void format_addr(char *buf, size_t size, const char *host, uint16_t port)
{
	if (strchr(host, ':'))
		snprintf(buf, size, "[%s]:%u", host, port);
	else
		snprintf(buf, size, "%s:%u", host, port);
}

static int socket_dialer(enum tu_dial_path path, const char *host, uint16_t port,
			 struct tu_dialer **ret)
{
	struct tu_dialer *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->path = path;
	d->host = strdup(host);
	if (!d->host) {
		free(d);
		return -ENOMEM;
	}
	d->port = port;
	format_addr(d->what, sizeof(d->what), host, port);
	*ret = d;
	return 0;
}

void tu_dial_plan_done(struct tu_dial_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		p->d[i] = tu_dialer_free(p->d[i]);
	p->n = 0;
}

/* The memo applies to this configuration's Proxy (a memo of another Proxy is stale). */
static bool memo_is_ours(const struct tu_conf *conf, const struct tu_dial_memo *m)
{
	char want[TU_DIAL_WHAT_MAX];

	if (!m || !m->valid)
		return false;
	if (!conf->proxy.host)
		return m->proxy[0] == '\0';
	format_addr(want, sizeof(want), conf->proxy.host, conf->proxy.port);
	return strcmp(want, m->proxy) == 0;
}

/* Adds the dialer a constructor made; -EOPNOTSUPP (does not apply) is skipped. */
static int add_made(struct tu_dial_plan *p, int r, struct tu_dialer *d, const struct tu_err *e,
		    struct tu_err *reterr)
{
	if (r == -EOPNOTSUPP)
		return 0;
	if (r < 0)
		return tu_err_set(reterr, r, "%s", e->msg[0] ? e->msg : strerror(-r));
	if (p->n >= TU_DIAL_MAX) {
		tu_dialer_free(d);
		return tu_err_set(reterr, -EINVAL, "too many paths to Auth");
	}
	p->d[p->n++] = d;
	return 0;
}

int tu_dial_plan_new(const struct tu_conf *conf, const struct tu_creds *creds,
		     const struct tu_dial_memo *memo, struct tu_dial_plan *ret,
		     struct tu_err *reterr)
{
	struct tu_dial_plan p = {.n = 0};
	struct tu_err e;
	int r;

	if (!memo_is_ours(conf, memo))
		memo = NULL;
	if (conf->n_addresses > TU_MAX_AUTH_ADDRESSES)
		return tu_err_set(reterr, -EINVAL, "too many Auth addresses");
	for (size_t i = 0; i < conf->n_addresses; i++) {
		uint16_t port = conf->addresses[i].port ? conf->addresses[i].port
							: TU_DEFAULT_AUTH_PORT;
		r = socket_dialer(TU_DIAL_DIRECT, conf->addresses[i].host, port, &p.d[p.n]);
		if (r < 0) {
			tu_dial_plan_done(&p);
			return tu_err_set(reterr, r, "out of memory");
		}
		p.n++;
	}
	if (conf->proxy.host) {
		const char *cluster = conf->cluster_name ? conf->cluster_name
							 : (creds ? tu_creds_cluster(creds) : NULL);
		/* find said TLS routing is off: only the tunnel can work there. */
		bool routing = !(memo && memo->found && !memo->tls_routing);
		bool upgrade_needed = memo && memo->upgrade == 1;

		if (routing && !upgrade_needed) {
			struct tu_dialer *d = NULL;
			uint16_t port = conf->proxy.port ? conf->proxy.port : TU_DEFAULT_PROXY_PORT;

			if (!cluster) {
				tu_dial_plan_done(&p);
				tu_err_key(reterr, "auth.cluster_name");
				return tu_err_set(
				    reterr, -EINVAL,
				    "reaching Auth through the Proxy needs the cluster name: set "
				    "auth.cluster_name (the credential's certificate names none)");
			}
			r = socket_dialer(TU_DIAL_TLS_ROUTING, conf->proxy.host, port, &d);
			if (r < 0) {
				tu_dial_plan_done(&p);
				return tu_err_set(reterr, r, "out of memory");
			}
			r = tu_dial_alpn_auth(cluster, d->alpn, sizeof(d->alpn));
			if (r < 0) {
				tu_dialer_free(d);
				tu_dial_plan_done(&p);
				tu_err_key(reterr, "auth.cluster_name");
				return tu_err_set(reterr, -EINVAL,
						  "cluster name too long for the ALPN protocol name "
						  "(at most 109 bytes)");
			}
			d->alpn_len = (size_t) r;
			p.d[p.n++] = d;
		}
		if (routing) {
			struct tu_dialer *d = NULL;
			tu_err_clear(&e);
			r = tu_dial_upgrade_new(conf, creds, memo, &d, &e);
			if (r == 0 && d->alpn_len == 0 && cluster) {
				int n = tu_dial_alpn_auth(cluster, d->alpn, sizeof(d->alpn));
				d->alpn_len = n > 0 ? (size_t) n : 0;
			}
			/* Required (always): plain TLS routing cannot pass the load balancer. */
			if (r == 0 && d->replaces_tls_routing && p.n > 0 &&
			    p.d[p.n - 1]->path == TU_DIAL_TLS_ROUTING) {
				p.n--;
				p.d[p.n] = tu_dialer_free(p.d[p.n]);
			}
			r = add_made(&p, r, d, &e, reterr);
			if (r < 0) {
				tu_dial_plan_done(&p);
				return r;
			}
		}
		struct tu_dialer *d = NULL;
		tu_err_clear(&e);
		r = tu_dial_tunnel_new(conf, creds, memo, &d, &e);
		r = add_made(&p, r, d, &e, reterr);
		if (r < 0) {
			tu_dial_plan_done(&p);
			return r;
		}
	}
	if (p.n == 0 && memo && memo->found && !memo->tls_routing)
		return tu_err_set(reterr, -EINVAL,
				  "the Proxy %s says TLS routing is off (/webapi/find) and no other "
				  "path to Auth applies (the reverse tunnel needs a credential with an "
				  "SSH certificate)",
				  memo->proxy);
	if (p.n == 0)
		return tu_err_set(reterr, -EINVAL,
				  "no way to reach Auth: auth.addresses is empty and no path through "
				  "auth.proxy applies");
	/* The path that worked last goes first; the others keep their order. */
	if (memo && memo->has_path) {
		for (size_t i = 1; i < p.n; i++) {
			if (p.d[i]->path != memo->path ||
			    (memo->path_what[0] && strcmp(p.d[i]->what, memo->path_what) != 0))
				continue;
			struct tu_dialer *first = p.d[i];
			memmove(&p.d[1], &p.d[0], i * sizeof(p.d[0]));
			p.d[0] = first;
			break;
		}
	}
	*ret = p;
	return 0;
}

/* ---- the memo ---------------------------------------------------------- */

static bool memo_value_ok(const char *v)
{
	for (; *v; v++)
		if ((unsigned char) *v < 0x20 || (unsigned char) *v >= 0x7f)
			return false;
	return true;
}

static int memo_str(char *dst, size_t size, const char *v)
{
	size_t n = strlen(v);

	if (n >= size || !memo_value_ok(v))
		return -EBADMSG;
	memcpy(dst, v, n + 1);
	return 0;
}

static int memo_bool(bool *dst, const char *v)
{
	if (strcmp(v, "true") == 0)
		*dst = true;
	else if (strcmp(v, "false") == 0)
		*dst = false;
	else
		return -EBADMSG;
	return 0;
}

/* Parses the memo text (NUL-terminated); unknown keys are ignored (a newer writer). */
static int memo_parse(char *text, struct tu_dial_memo *m)
{
	char *next;

	*m = (struct tu_dial_memo){.upgrade = -1};
	for (char *line = text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!*line)
			continue;
		char *sp = strchr(line, ' ');
		const char *k = line, *v;
		int r = 0;
		uint64_t u;

		if (!sp)
			return -EBADMSG;
		*sp = '\0';
		v = sp + 1;
		if (strcmp(k, "version") == 0)
			r = strcmp(v, "1") == 0 ? 0 : -EBADMSG;
		else if (strcmp(k, "proxy") == 0)
			r = memo_str(m->proxy, sizeof(m->proxy), v);
		else if (strcmp(k, "found") == 0)
			r = memo_bool(&m->found, v);
		else if (strcmp(k, "tls_routing") == 0)
			r = memo_bool(&m->tls_routing, v);
		else if (strcmp(k, "tunnel_addr") == 0)
			r = memo_str(m->tunnel_addr, sizeof(m->tunnel_addr), v);
		else if (strcmp(k, "cluster") == 0)
			r = memo_str(m->cluster, sizeof(m->cluster), v);
		else if (strcmp(k, "upgrade") == 0)
			m->upgrade = strcmp(v, "true") == 0 ? 1 : strcmp(v, "false") == 0 ? 0 : -1;
		else if (strcmp(k, "path") == 0) {
			r = tu_dial_path_from_name(v, &m->path) < 0 ? -EBADMSG : 0;
			m->has_path = r == 0;
		} else if (strcmp(k, "path_addr") == 0)
			r = memo_str(m->path_what, sizeof(m->path_what), v);
		else if (strcmp(k, "updated") == 0) {
			r = tu_parse_u64(v, &u) < 0 || u > INT64_MAX ? -EBADMSG : 0;
			m->updated_usec = (int64_t) u;
		}
		if (r < 0)
			return r;
	}
	m->valid = true;
	return 0;
}

int tu_dial_memo_load(const struct tu_conf *conf, struct tu_dial_memo *ret,
		      struct tu_err *reterr)
{
	char path[PATH_MAX];
	_cleanup_free_ char *text = NULL;
	struct tu_dial_memo m;
	int r;

	if (!conf->cache_dir)
		return tu_err_set(reterr, -ENOENT, "no cache.dir");
	if (tu_cache_path(conf, MEMO_FILE, path, sizeof(path)) < 0)
		return tu_err_set(reterr, -ENAMETOOLONG, "cache.dir too long");
	/* Root's and not writable by others, like the snapshots: it picks where we connect. */
	r = tu_fs_read_file(path, MEMO_MAX_SIZE, 0, &text, NULL, reterr);
	if (r < 0)
		return r;
	r = memo_parse(text, &m);
	if (r < 0)
		return tu_err_set(reterr, -EBADMSG, "%s: not a path memo of teleport-unix", path);
	*ret = m;
	return 0;
}

int tu_dial_memo_save(const struct tu_conf *conf, const struct tu_dial_memo *m,
		      struct tu_err *reterr)
{
	char path[PATH_MAX], text[MEMO_MAX_SIZE];
	int r, n;

	if (!conf->cache_dir)
		return tu_err_set(reterr, -ENOENT, "no cache.dir");
	/* A person's tsh profile (--profile) never writes the host's cache, this file included. */
	if (conf->cache_read_only)
		return tu_err_set(reterr, -EPERM, "the cache is read-only here (a tsh profile)");
	r = tu_cache_may_write(reterr);
	if (r < 0)
		return r;
	if (tu_cache_path(conf, MEMO_FILE, path, sizeof(path)) < 0)
		return tu_err_set(reterr, -ENAMETOOLONG, "cache.dir too long");
	if (!memo_value_ok(m->proxy) || !memo_value_ok(m->tunnel_addr) ||
	    !memo_value_ok(m->cluster) || !memo_value_ok(m->path_what))
		return tu_err_set(reterr, -EINVAL, "refusing to write a memo with control characters");
	n = snprintf(text, sizeof(text),
		     "version 1\nproxy %s\nfound %s\ntls_routing %s\ntunnel_addr %s\ncluster %s\n"
		     "upgrade %s\n%s%s%spath_addr %s\nupdated %" PRId64 "\n",
		     m->proxy, m->found ? "true" : "false", m->tls_routing ? "true" : "false",
		     m->tunnel_addr, m->cluster,
		     m->upgrade == 1 ? "true" : m->upgrade == 0 ? "false" : "unknown",
		     m->has_path ? "path " : "", m->has_path ? tu_dial_path_name(m->path) : "",
		     m->has_path ? "\n" : "", m->path_what, m->updated_usec);
	if (n < 0 || (size_t) n >= sizeof(text))
		return tu_err_set(reterr, -EINVAL, "path memo too long");
	r = tu_fs_mkdir_p(conf->cache_dir, 0755, reterr);
	if (r < 0)
		return r;
	return tu_fs_write_atomic(path, text, (size_t) n, 0644, reterr);
}
