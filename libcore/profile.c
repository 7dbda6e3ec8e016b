/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile.c - tsh profile directories: current-profile and the profile
 * YAML (see profile.h).  Layer: libcore (libyaml, event API).
 *
 * Only the top-level mapping is looked at; any other value (tsh's lists
 * and mappings, keys of later releases) is skipped whole, so a newer tsh
 * does not break us.  The keys we use must be plain scalars.
 */
#include "profile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "err.h"
#include "fsutil.h"
#include "parse.h"

#define MAX_DEPTH   64
#define MAX_NAME    255
#define MAX_CURRENT 4096

bool tu_profile_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > MAX_NAME || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || (unsigned char) s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

void tu_profile_done(struct tu_profile *p)
{
	if (!p)
		return;
	free(p->dir);
	free(p->name);
	free(p->web_proxy_addr);
	free(p->proxy_host);
	free(p->user);
	free(p->cluster);
	*p = (struct tu_profile){0};
}

struct pstate {
	yaml_parser_t parser;
	const char *file;
	struct tu_err *err;
};

static int bad(struct pstate *s, unsigned line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(struct pstate *s, unsigned line, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tu_err_setv(s->err, -EBADMSG, fmt, ap);
	va_end(ap);
	tu_err_at(s->err, s->file, line);
	if (key)
		tu_err_key(s->err, key);
	return -EBADMSG;
}

static int next(struct pstate *s, yaml_event_t *ev)
{
	if (yaml_parser_parse(&s->parser, ev))
		return 0;
	if (s->parser.error == YAML_MEMORY_ERROR)
		return tu_err_set(s->err, -ENOMEM, "out of memory");
	return bad(s, (unsigned) s->parser.problem_mark.line + 1, NULL,
		   "not a tsh profile: YAML syntax error: %s",
		   s->parser.problem ? s->parser.problem : "unknown");
}

/* Skips the rest of a sequence or mapping whose start event was just read. */
static int skip_nested(struct pstate *s)
{
	int depth = 1;

	while (depth > 0) {
		yaml_event_t ev;
		int r = next(s, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		else if (ev.type == YAML_STREAM_END_EVENT || ev.type == YAML_NO_EVENT)
			depth = 0;
		yaml_event_delete(&ev);
		if (depth > MAX_DEPTH)
			return bad(s, (unsigned) s->parser.mark.line + 1, NULL,
				   "not a tsh profile: nesting deeper than %d levels", MAX_DEPTH);
	}
	return 0;
}

enum field { F_PROXY, F_USER, F_CLUSTER, F_ROUTING, F_UPGRADE, F_N };

static const char *const field_names[F_N] = {
    [F_PROXY] = "web_proxy_addr",
    [F_USER] = "user",
    [F_CLUSTER] = "cluster",
    [F_ROUTING] = "tls_routing_enabled",
    [F_UPGRADE] = "tls_routing_conn_upgrade_required",
};

static int parse_bool(struct pstate *s, const char *v, unsigned line, const char *key, bool *ret)
{
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
		*ret = true;
	else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE") || !*v)
		*ret = false;
	else
		return bad(s, line, key, "invalid boolean (expected true or false)");
	return 0;
}

int tu_profile_parse(const char *text, size_t len, const char *file, const char *name,
		     struct tu_profile *ret, struct tu_err *reterr)
{
	struct pstate s = {.file = file ? file : "<profile>", .err = reterr};
	struct tu_profile p = {0};
	char *vals[F_N] = {0};
	unsigned lines[F_N] = {0};
	yaml_event_t ev;
	bool in_map = false, done = false;
	int r = 0;

	if (len > TU_PROFILE_MAX_YAML) {
		tu_err_at(reterr, s.file, 0);
		return tu_err_set(reterr, -EMSGSIZE, "tsh profile larger than %zu bytes",
				  TU_PROFILE_MAX_YAML);
	}
	if (!yaml_parser_initialize(&s.parser))
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	yaml_parser_set_input_string(&s.parser, (const unsigned char *) text, len);

	/* stream start, document start, then the top-level mapping */
	while (r >= 0 && !in_map && !done) {
		r = next(&s, &ev);
		if (r < 0)
			break;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_START_EVENT:
			break;
		case YAML_MAPPING_START_EVENT:
			in_map = true;
			break;
		case YAML_STREAM_END_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			done = true;
			break;
		default:
			r = bad(
			    &s, (unsigned) ev.start_mark.line + 1, NULL,
			    "not a tsh profile: expected a mapping of keys (web_proxy_addr, user, ...)");
		}
		yaml_event_delete(&ev);
	}
	while (r >= 0 && in_map) {
		yaml_event_t kev;
		char *key = NULL;
		unsigned line;

		r = next(&s, &kev);
		if (r < 0)
			break;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			break;
		}
		line = (unsigned) kev.start_mark.line + 1;
		if (kev.type == YAML_SCALAR_EVENT) {
			key = strndup((const char *) kev.data.scalar.value, kev.data.scalar.length);
			if (!key)
				r = tu_err_set(reterr, -ENOMEM, "out of memory");
		} else if (kev.type == YAML_SEQUENCE_START_EVENT ||
			   kev.type == YAML_MAPPING_START_EVENT) {
			r = skip_nested(&s); /* a complex key: not one of ours */
		}
		yaml_event_delete(&kev);
		if (r < 0)
			break;
		r = next(&s, &ev);
		if (r < 0) {
			free(key);
			break;
		}
		int f = F_N;
		for (int i = 0; key && i < F_N; i++)
			if (!strcmp(key, field_names[i]))
				f = i;
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
			if (f != F_N)
				r = bad(&s, line, field_names[f], "expected a string, found a %s",
					ev.type == YAML_SEQUENCE_START_EVENT ? "list" : "mapping");
			else
				r = skip_nested(&s);
		} else if (ev.type == YAML_SCALAR_EVENT && f != F_N) {
			if (vals[f])
				r = bad(&s, line, field_names[f], "duplicate key '%s'",
					field_names[f]);
			else if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length))
				r = bad(&s, line, field_names[f], "NUL byte in the value");
			else if (!(vals[f] = strndup((const char *) ev.data.scalar.value,
						     ev.data.scalar.length)))
				r = tu_err_set(reterr, -ENOMEM, "out of memory");
			lines[f] = line;
		} else if (ev.type == YAML_ALIAS_EVENT && f != F_N) {
			r = bad(&s, line, field_names[f], "YAML aliases are not supported here");
		} else if (ev.type != YAML_SCALAR_EVENT && ev.type != YAML_ALIAS_EVENT) {
			r = bad(&s, line, key, "not a tsh profile: unexpected YAML structure");
		}
		yaml_event_delete(&ev);
		free(key);
	}
	yaml_parser_delete(&s.parser);
	if (r < 0)
		goto out;
	if (!in_map) {
		r = bad(&s, 1, NULL, "not a tsh profile: the file is empty");
		goto out;
	}

	if (!vals[F_PROXY] || !*vals[F_PROXY]) {
		r = bad(&s, lines[F_PROXY] ? lines[F_PROXY] : 1, "web_proxy_addr",
			"missing web_proxy_addr (the Proxy address tsh logged in to)");
		goto out;
	}
	r = tu_parse_hostport(vals[F_PROXY], TU_PROFILE_DEFAULT_WEB_PORT, &p.proxy_host,
			      &p.proxy_port);
	if (r == -ENOMEM) {
		r = tu_err_set(reterr, r, "out of memory");
		goto out;
	}
	if (r < 0 || !tu_profile_name_ok(p.proxy_host)) {
		char sb[128];
		r = bad(&s, lines[F_PROXY], "web_proxy_addr", "invalid Proxy address '%s'",
			tu_sanitize(vals[F_PROXY], sb, sizeof(sb)));
		goto out;
	}
	if (!vals[F_USER] || !tu_profile_name_ok(vals[F_USER])) {
		r = bad(&s, lines[F_USER] ? lines[F_USER] : 1, "user",
			vals[F_USER]
			    ? "invalid user name (empty, '/', '.', '..' or control characters)"
			    : "missing user (the Teleport user tsh logged in as)");
		goto out;
	}
	if (vals[F_CLUSTER] && *vals[F_CLUSTER] && !tu_profile_name_ok(vals[F_CLUSTER])) {
		r = bad(&s, lines[F_CLUSTER], "cluster", "invalid cluster name");
		goto out;
	}
	if (vals[F_ROUTING] && (r = parse_bool(&s, vals[F_ROUTING], lines[F_ROUTING],
					       field_names[F_ROUTING], &p.tls_routing_enabled)) < 0)
		goto out;
	if (vals[F_UPGRADE] &&
	    (r = parse_bool(&s, vals[F_UPGRADE], lines[F_UPGRADE], field_names[F_UPGRADE],
			    &p.tls_routing_conn_upgrade_required)) < 0)
		goto out;

	p.web_proxy_addr = vals[F_PROXY];
	vals[F_PROXY] = NULL;
	p.user = vals[F_USER];
	vals[F_USER] = NULL;
	if (vals[F_CLUSTER] && *vals[F_CLUSTER]) {
		p.cluster = vals[F_CLUSTER];
		vals[F_CLUSTER] = NULL;
	} else {
		p.cluster = strdup(name && *name ? name : p.proxy_host);
	}
	p.name = strdup(name && *name ? name : p.proxy_host);
	if (!p.cluster || !p.name) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	*ret = p;
	p = (struct tu_profile){0};
	r = 0;
out:
	tu_profile_done(&p);
	for (int i = 0; i < F_N; i++)
		free(vals[i]);
	return r;
}

static int check_dir(const char *dir, bool relaxed, struct tu_err *reterr)
{
	int fd, r;

	if (relaxed)
		return 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			return tu_err_set(reterr, r,
					  "tsh profile directory %s does not exist (run tsh login)",
					  dir);
		return tu_err_set(reterr, r, "cannot open the tsh profile directory %s: %s", dir,
				  strerror(-r));
	}
	r = tu_fs_check_trusted(fd, dir, TU_FS_OWNER_SELF, reterr);
	close(fd);
	return r;
}

int tu_profile_load(const char *dir, const char *name, bool relaxed, struct tu_profile *ret,
		    struct tu_err *reterr)
{
	unsigned fs = TU_FS_OWNER_SELF | (relaxed ? TU_FS_RELAXED : 0);
	char *cur = NULL, *text = NULL, *path = NULL, *chosen = NULL;
	size_t len = 0;
	int r;

	if (!dir || dir[0] != '/')
		return tu_err_set(reterr, -EINVAL,
				  "the tsh profile directory must be an absolute path");
	r = check_dir(dir, relaxed, reterr);
	if (r < 0)
		return r;
	if (!name) {
		if (asprintf(&path, "%s/current-profile", dir) < 0)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		r = tu_fs_read_file(path, MAX_CURRENT, fs, &cur, &len, reterr);
		if (r == -ENOENT)
			r = tu_err_set(
			    reterr, r,
			    "no current tsh profile in %s (%s is missing; run tsh login)", dir,
			    path);
		if (r < 0)
			goto out;
		/* tsh writes the name and a newline; surrounding white space is trimmed */
		char *b = cur, *e = cur + len;
		while (b < e && (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
			e--;
		if (b == e) {
			tu_err_at(reterr, path, 1);
			r = tu_err_set(reterr, -ENOENT,
				       "no current tsh profile: %s is empty (run tsh login)", path);
			goto out;
		}
		chosen = strndup(b, (size_t) (e - b));
		if (!chosen) {
			r = tu_err_set(reterr, -ENOMEM, "out of memory");
			goto out;
		}
		if (!tu_profile_name_ok(chosen) || strchr(chosen, '\n')) {
			tu_err_at(reterr, path, 1);
			r = tu_err_set(reterr, -EBADMSG,
				       "%s does not hold a profile name (one Proxy host name)",
				       path);
			goto out;
		}
		name = chosen;
		free(path);
		path = NULL;
	} else if (!tu_profile_name_ok(name)) {
		r = tu_err_set(reterr, -EBADMSG, "invalid tsh profile name");
		goto out;
	}
	if (asprintf(&path, "%s/%s.yaml", dir, name) < 0) {
		path = NULL;
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	r = tu_fs_read_file(path, TU_PROFILE_MAX_YAML, fs, &text, &len, reterr);
	if (r == -ENOENT)
		r = tu_err_set(reterr, r, "tsh profile %s is missing (run tsh login)", path);
	if (r < 0)
		goto out;
	r = tu_profile_parse(text, len, path, name, ret, reterr);
	if (r >= 0 && !(ret->dir = strdup(dir))) {
		tu_profile_done(ret);
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
	}
out:
	free(cur);
	free(text);
	free(path);
	free(chosen);
	return r;
}
