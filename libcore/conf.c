/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.c - loads /etc/teleport-unix.yaml (SPEC §3) into struct tu_conf.
 * Layer: libcore (the only user of libyaml).
 *
 * Two steps.  (1) libyaml's event API builds a small bounded tree (depth,
 * node count and scalar length are limited; anchors, aliases, tags and
 * multiple documents are refused) so nothing hostile reaches the schema.
 * (2) A strict table-driven schema walker checks every key: unknown keys,
 * duplicates, wrong node types, bad values and missing required keys are
 * -EBADMSG with the file, 1-based line and dotted key path in struct tu_err.
 * libyaml's 1/0 returns never leave this file.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "cleanup.h"
#include "conf.h"
#include "err.h"
#include "fsutil.h"
#include "parse.h"

/* Limits on the YAML itself (the schema is 4 levels deep and small). */
#define CONF_MAX_FILE_SIZE  (1024 * 1024)
#define CONF_MAX_DEPTH      8
#define CONF_MAX_NODES      10000
#define CONF_MAX_SCALAR     4096
#define CONF_MAX_FIELDS     16
#define CONF_MAX_LABELS     256
#define CONF_MAX_NAME       255  /* host.name, host.id, cluster_name, label keys */
#define CONF_MAX_LABEL_VAL  1024
#define CONF_MAX_PATH       (PATH_MAX - 1)
#define CONF_UID_MIN_FLOOR  1000u
#define CONF_UID_MAX_CEIL   2147483647u
#define CONF_MSG_SIZE_MIN   (UINT64_C(1) << 10)
#define CONF_MSG_SIZE_MAX   (UINT64_C(1) << 30)

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC  UINT64_C(1000000)
#define USEC_PER_MIN  (60 * USEC_PER_SEC)
#define USEC_PER_DAY  (86400 * USEC_PER_SEC)

#define DURATION_HINT "expected e.g. 90s, 5m, 72h"

/* ---- step 1: events -> bounded tree ---------------------------------- */

enum node_type {
	NODE_SCALAR,
	NODE_SEQ,
	NODE_MAP,
};

struct node {
	enum node_type type;
	unsigned line;          /* 1-based */
	char *value;            /* scalar: NUL-terminated (no embedded NUL) */
	bool is_null;           /* plain "", "~", "null" */
	struct node **items;    /* seq: elements; map: key, value, key, value... */
	size_t n, cap;
};

static void node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->items[i]);
	free(n->items);
	free(n->value);
	free(n);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct node *, node_free)

struct builder {
	const char *name;
	struct tu_err *err;
	struct node *root;
	struct node *stack[CONF_MAX_DEPTH];
	size_t depth;
	size_t n_nodes;
	unsigned n_docs;
};

static int syntax_fail(struct builder *b, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The key path of the node being built, for errors found before the schema
 * walk (anchors, tags, depth, syntax): "auth.addresses[1]".  A container on
 * the stack below the top has its child already attached; the top one is
 * about to receive the current event.
 */
static void builder_path(const struct builder *b, char *out, size_t size)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < b->depth && off < size; i++) {
		const struct node *n = b->stack[i];
		bool top = i + 1 == b->depth;
		int m = 0;

		if (n->type == NODE_MAP) {
			size_t k = top ? (n->n % 2 ? n->n - 1 : SIZE_MAX) : n->n - 2;
			if (k != SIZE_MAX && k < n->n)
				m = snprintf(out + off, size - off, "%s%s", off ? "." : "",
					     n->items[k]->value);
		} else if (n->type == NODE_SEQ) {
			m = snprintf(out + off, size - off, "[%zu]", top ? n->n : n->n - 1);
		}
		if (m > 0)
			off += (size_t) m;
	}
}

static int syntax_fail(struct builder *b, unsigned line, const char *fmt, ...)
{
	char path[sizeof(((struct tu_err *) 0)->key)], k[sizeof(path)];
	va_list ap;

	va_start(ap, fmt);
	tu_err_setv(b->err, -EBADMSG, fmt, ap);
	va_end(ap);
	tu_err_at(b->err, b->name, line);
	builder_path(b, path, sizeof(path));
	tu_err_key(b->err, tu_sanitize(path, k, sizeof(k)));
	return -EBADMSG;
}

static const char *type_name(enum node_type t)
{
	switch (t) {
	case NODE_SCALAR:
		return "a scalar";
	case NODE_SEQ:
		return "a list";
	case NODE_MAP:
		return "a mapping";
	}
	return "?";
}

/* Adds n under the current container (or as the root); takes ownership. */
static int attach(struct builder *b, struct node *n)
{
	struct node *parent;

	if (b->depth == 0) {
		if (b->root) {
			node_free(n);
			return syntax_fail(b, n->line, "more than one top-level node");
		}
		b->root = n;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->type == NODE_MAP && parent->n % 2 == 0 && n->type != NODE_SCALAR) {
		unsigned line = n->line;
		enum node_type t = n->type;
		node_free(n);
		return syntax_fail(b, line, "mapping keys must be strings, found %s", type_name(t));
	}
	if (parent->n == parent->cap) {
		size_t ncap = parent->cap ? parent->cap * 2 : 8;
		struct node **items = reallocarray(parent->items, ncap, sizeof(*items));
		if (!items) {
			node_free(n);
			return tu_err_set(b->err, -ENOMEM, "out of memory");
		}
		parent->items = items;
		parent->cap = ncap;
	}
	parent->items[parent->n++] = n;
	return 0;
}

static int new_node(struct builder *b, enum node_type t, unsigned line, struct node **ret)
{
	struct node *n;

	if (++b->n_nodes > CONF_MAX_NODES)
		return syntax_fail(b, line, "too many YAML nodes (limit %d)", CONF_MAX_NODES);
	n = calloc(1, sizeof(*n));
	if (!n)
		return tu_err_set(b->err, -ENOMEM, "out of memory");
	n->type = t;
	n->line = line;
	*ret = n;
	return 0;
}

static bool plain_null(const char *v)
{
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

/* One event; returns 1 at the end of the stream, 0 to continue, <0 on error. */
static int on_event(struct builder *b, const yaml_event_t *ev)
{
	unsigned line = (unsigned) ev->start_mark.line + 1;
	const yaml_char_t *anchor = NULL, *tag = NULL;
	struct node *n = NULL;
	int r;

	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
		return 0;
	case YAML_STREAM_END_EVENT:
		return 1;
	case YAML_DOCUMENT_START_EVENT:
		if (++b->n_docs > 1)
			return syntax_fail(b, line, "multiple YAML documents are not supported");
		return 0;
	case YAML_ALIAS_EVENT: {
		char a[64];
		return syntax_fail(b, line, "YAML aliases (*%s) are not supported",
				   tu_sanitize((const char *) ev->data.alias.anchor, a, sizeof(a)));
	}
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth == 0)
			return syntax_fail(b, line, "unbalanced YAML events");
		b->depth--;
		return 0;
	default:
		return syntax_fail(b, line, "unexpected YAML event");
	}

	if (anchor)
		return syntax_fail(b, line, "YAML anchors (&) are not supported");
	if (tag)
		return syntax_fail(b, line, "YAML tags (!) are not supported");

	if (ev->type == YAML_SCALAR_EVENT) {
		size_t len = ev->data.scalar.length;
		const char *v = (const char *) ev->data.scalar.value;

		if (len > CONF_MAX_SCALAR)
			return syntax_fail(b, line, "value too long (%zu bytes, limit %d)", len,
					   CONF_MAX_SCALAR);
		if (memchr(v, '\0', len))
			return syntax_fail(b, line, "value contains a NUL byte");
		r = new_node(b, NODE_SCALAR, line, &n);
		if (r < 0)
			return r;
		n->value = strndup(v, len);
		if (!n->value) {
			node_free(n);
			return tu_err_set(b->err, -ENOMEM, "out of memory");
		}
		n->is_null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && plain_null(n->value);
		return attach(b, n);
	}

	if (b->depth >= CONF_MAX_DEPTH)
		return syntax_fail(b, line, "nesting too deep (limit %d levels)", CONF_MAX_DEPTH);
	r = new_node(b, ev->type == YAML_SEQUENCE_START_EVENT ? NODE_SEQ : NODE_MAP, line, &n);
	if (r < 0)
		return r;
	r = attach(b, n);
	if (r < 0)
		return r;
	b->stack[b->depth++] = n;
	return 0;
}

/* Parses the whole text into a tree; *ret may be NULL for an empty stream. */
static int build_tree(const char *text, size_t len, const char *name, struct node **ret,
		      struct tu_err *reterr)
{
	struct builder b = { .name = name, .err = reterr };
	yaml_parser_t parser;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);

	while (r == 0) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&parser, &ev)) {
			if (parser.error == YAML_MEMORY_ERROR) {
				r = tu_err_set(reterr, -ENOMEM, "out of memory");
			} else {
				char p[160], c[160];
				tu_sanitize(parser.problem ? parser.problem : "unknown error", p,
					    sizeof(p));
				if (parser.context)
					r = syntax_fail(&b, (unsigned) parser.problem_mark.line + 1,
							"YAML syntax error: %s (%s, from line %u)", p,
							tu_sanitize(parser.context, c, sizeof(c)),
							(unsigned) parser.context_mark.line + 1);
				else
					r = syntax_fail(&b, (unsigned) parser.problem_mark.line + 1,
							"YAML syntax error: %s", p);
			}
			break;
		}
		r = on_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (r < 0) {
		node_free(b.root);
		return r;
	}
	*ret = b.root;
	return 0;
}

/* ---- step 2: the schema walker --------------------------------------- */

struct walker {
	const char *name;
	struct tu_conf *c;
	struct tu_err *err;
};

typedef int (*field_fn)(struct walker *w, const struct node *n, const char *path);

struct field {
	const char *name;
	field_fn fn;
	bool required;
};

static int fail(struct walker *w, const struct node *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct walker *w, const struct node *n, const char *path, const char *fmt, ...)
{
	char k[sizeof(((struct tu_err *) 0)->key)];
	va_list ap;

	va_start(ap, fmt);
	tu_err_setv(w->err, -EBADMSG, fmt, ap);
	va_end(ap);
	tu_err_at(w->err, w->name, n ? n->line : 1);
	tu_err_key(w->err, tu_sanitize(path, k, sizeof(k)));
	return -EBADMSG;
}

static int oom(struct walker *w)
{
	return tu_err_set(w->err, -ENOMEM, "out of memory");
}

/* A user value for messages: sanitized and cut at 64 characters. */
struct shown {
	char s[72];
};

static struct shown show(const char *v)
{
	struct shown o;

	tu_sanitize(v, o.s, 65);
	if (strlen(v) > 64)
		memcpy(o.s + 61, "...", 4);
	return o;
}

static void child_path(char *out, size_t size, const char *parent, const char *key)
{
	if (parent && *parent)
		snprintf(out, size, "%s.%s", parent, key);
	else
		snprintf(out, size, "%s", key);
}

/* Requires a non-null scalar; returns its text. */
static int want_scalar(struct walker *w, const struct node *n, const char *path, const char *what,
		       const char **ret)
{
	if (n->type != NODE_SCALAR)
		return fail(w, n, path, "expected %s, found %s", what, type_name(n->type));
	if (n->is_null)
		return fail(w, n, path, "missing value (expected %s; remove the key to use the default)",
			    what);
	*ret = n->value;
	return 0;
}

static int walk_map(struct walker *w, const struct node *n, const char *path,
		    const struct field *fields, size_t n_fields, const struct node **ret_seen)
{
	const struct node *seen[CONF_MAX_FIELDS] = { 0 };
	char cp[128];
	int r;

	if (n_fields > CONF_MAX_FIELDS)
		return -EINVAL; /* programming error: table too large */
	if (n->type != NODE_MAP)
		return fail(w, n, path, "expected a mapping, found %s", type_name(n->type));

	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct node *key = n->items[i], *val = n->items[i + 1];
		size_t f;

		child_path(cp, sizeof(cp), path, key->value);
		for (f = 0; f < n_fields; f++)
			if (strcmp(fields[f].name, key->value) == 0)
				break;
		if (f == n_fields) {
			char known[256] = "";
			size_t off = 0;
			for (size_t j = 0; j < n_fields && off < sizeof(known); j++) {
				int m = snprintf(known + off, sizeof(known) - off, "%s%s",
						 j ? ", " : "", fields[j].name);
				if (m > 0)
					off += (size_t) m;
			}
			return fail(w, key, cp, "unknown key '%s' (expected one of: %s)",
				    show(key->value).s, known);
		}
		if (seen[f])
			return fail(w, key, cp, "duplicate key '%s' (first at line %u)", fields[f].name,
				    seen[f]->line);
		seen[f] = key;
		r = fields[f].fn(w, val, cp);
		if (r < 0)
			return r;
	}
	for (size_t f = 0; f < n_fields; f++) {
		if (fields[f].required && !seen[f]) {
			child_path(cp, sizeof(cp), path, fields[f].name);
			return fail(w, n, cp, "missing required key '%s'", fields[f].name);
		}
	}
	if (ret_seen)
		memcpy(ret_seen, seen, n_fields * sizeof(seen[0]));
	return 0;
}

/* -- value helpers -- */

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int replace_str(struct walker *w, char **dst, const char *v)
{
	char *d = strdup(v);

	if (!d)
		return oom(w);
	free(*dst);
	*dst = d;
	return 0;
}

/* A non-empty printable string of at most CONF_MAX_NAME bytes. */
static int set_name(struct walker *w, const struct node *n, const char *path, char **dst)
{
	const char *v = NULL;
	int r = want_scalar(w, n, path, "a string", &v);

	if (r < 0)
		return r;
	if (!*v)
		return fail(w, n, path, "must not be empty");
	if (strlen(v) > CONF_MAX_NAME)
		return fail(w, n, path, "too long (%zu bytes, limit %d)", strlen(v), CONF_MAX_NAME);
	if (!printable(v) || strchr(v, ' '))
		return fail(w, n, path, "invalid value '%s' (spaces and control characters are not allowed)",
			    show(v).s);
	return replace_str(w, dst, v);
}

/*
 * An absolute path without control characters.  passwd_field: it ends up in
 * a passwd line (home, shell), where ':' would split the record.
 */
static int set_abs_path(struct walker *w, const struct node *n, const char *path, char **dst,
			bool passwd_field)
{
	const char *v = NULL;
	int r = want_scalar(w, n, path, "an absolute path", &v);

	if (r < 0)
		return r;
	if (v[0] != '/')
		return fail(w, n, path, "invalid path '%s' (must be absolute, starting with /)",
			    show(v).s);
	if (strlen(v) > CONF_MAX_PATH)
		return fail(w, n, path, "path too long (%zu bytes)", strlen(v));
	if (!printable(v))
		return fail(w, n, path, "invalid path '%s' (control characters are not allowed)",
			    show(v).s);
	if (passwd_field && strchr(v, ':'))
		return fail(w, n, path, "invalid path '%s' (':' is not allowed in a passwd field)",
			    show(v).s);
	return replace_str(w, dst, v);
}

static int set_duration(struct walker *w, const struct node *n, const char *path, uint64_t *dst,
			uint64_t min, uint64_t max, const char *range)
{
	const char *v = NULL;
	uint64_t usec;
	int r = want_scalar(w, n, path, "a duration (" DURATION_HINT ")", &v);

	if (r < 0)
		return r;
	r = tu_parse_duration(v, &usec);
	if (r == -ERANGE)
		return fail(w, n, path, "duration '%s' is too large (%s)", show(v).s, range);
	if (r < 0)
		return fail(w, n, path, "invalid duration '%s' (" DURATION_HINT ")", show(v).s);
	if (usec < min || usec > max)
		return fail(w, n, path, "duration '%s' out of range (%s)", show(v).s, range);
	*dst = usec;
	return 0;
}

static int set_bool(struct walker *w, const struct node *n, const char *path, bool *dst)
{
	static const char *const yes[] = { "true", "True", "TRUE" };
	static const char *const no[] = { "false", "False", "FALSE" };
	const char *v = NULL;
	int r = want_scalar(w, n, path, "true or false", &v);

	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (!strcmp(v, yes[i])) {
			*dst = true;
			return 0;
		}
		if (!strcmp(v, no[i])) {
			*dst = false;
			return 0;
		}
	}
	return fail(w, n, path, "invalid boolean '%s' (expected true or false)", show(v).s);
}

/* -- auth -- */

static int f_addresses(struct walker *w, const struct node *n, const char *path)
{
	struct tu_conf *c = w->c;
	char ip[144];

	if (n->type != NODE_SEQ)
		return fail(w, n, path, "expected a list of addresses (e.g. [\"auth.example.com:3025\"]), found %s",
			    type_name(n->type));
	if (n->n == 0)
		return fail(w, n, path, "at least one address is required");
	if (n->n > TU_MAX_AUTH_ADDRESSES)
		return fail(w, n, path, "too many addresses (%zu, limit %d)", n->n,
			    TU_MAX_AUTH_ADDRESSES);
	for (size_t i = 0; i < c->n_addresses; i++)
		free(c->addresses[i].host);
	c->n_addresses = 0;
	for (size_t i = 0; i < n->n; i++) {
		const struct node *e = n->items[i];
		const char *v = NULL;
		char *host;
		uint16_t port;
		int r;

		snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
		r = want_scalar(w, e, ip, "an address (host:port)", &v);
		if (r < 0)
			return r;
		r = tu_parse_hostport(v, TU_DEFAULT_AUTH_PORT, &host, &port);
		if (r == -ENOMEM)
			return oom(w);
		if (r == -ERANGE)
			return fail(w, e, ip, "invalid port in address '%s' (must be 1-65535)",
				    show(v).s);
		if (r < 0)
			return fail(w, e, ip, "invalid address '%s' (expected host, host:port or [ipv6]:port)",
				    show(v).s);
		c->addresses[c->n_addresses].host = host;
		c->addresses[c->n_addresses].port = port;
		c->n_addresses++;
	}
	return 0;
}

static int f_server_name(struct walker *w, const struct node *n, const char *path)
{
	const char *v = NULL;
	int r = want_scalar(w, n, path, "a DNS name", &v);

	if (r < 0)
		return r;
	if (tu_parse_check_hostname(v) < 0)
		return fail(w, n, path, "invalid server name '%s' (expected a DNS name such as teleport.cluster.local)",
			    show(v).s);
	return replace_str(w, &w->c->server_name, v);
}

static int f_cluster_name(struct walker *w, const struct node *n, const char *path)
{
	return set_name(w, n, path, &w->c->cluster_name);
}

static int f_kp_cert(struct walker *w, const struct node *n, const char *path)
{
	return set_abs_path(w, n, path, &w->c->cert_path, false);
}

static int f_kp_key(struct walker *w, const struct node *n, const char *path)
{
	return set_abs_path(w, n, path, &w->c->key_path, false);
}

static int f_kp_ca(struct walker *w, const struct node *n, const char *path)
{
	return set_abs_path(w, n, path, &w->c->ca_path, false);
}

static const struct field key_pair_fields[] = {
	{ "cert", f_kp_cert, true },
	{ "key", f_kp_key, true },
	{ "ca", f_kp_ca, true },
};

static int f_key_pair(struct walker *w, const struct node *n, const char *path)
{
	return walk_map(w, n, path, key_pair_fields, ELEMENTSOF(key_pair_fields), NULL);
}

static int f_identity_file(struct walker *w, const struct node *n, const char *path)
{
	return set_abs_path(w, n, path, &w->c->identity_file, false);
}

/* A tsh profile name: a file name (the Proxy host), never a path. */
static int f_profile_name(struct walker *w, const struct node *n, const char *path)
{
	const char *v = NULL;
	int r = want_scalar(w, n, path, "a profile name (the Proxy host, e.g. example.teleport.sh)",
			    &v);

	if (r < 0)
		return r;
	if (!*v || strlen(v) > CONF_MAX_NAME || !printable(v) || strchr(v, '/') || strchr(v, ' ') ||
	    !strcmp(v, ".") || !strcmp(v, ".."))
		return fail(w, n, path,
			    "invalid profile name '%s' (a Proxy host name such as example.teleport.sh)",
			    show(v).s);
	return replace_str(w, &w->c->profile_name, v);
}

static int f_profile_dir(struct walker *w, const struct node *n, const char *path)
{
	return set_abs_path(w, n, path, &w->c->profile_dir, false);
}

static const struct field profile_fields[] = {
	{ "dir", f_profile_dir, true },
	{ "name", f_profile_name, false },
};

/* profile: DIR (its current profile) or { dir: DIR, name: PROXY-HOST }. */
static int f_profile(struct walker *w, const struct node *n, const char *path)
{
	if (n->type == NODE_SCALAR)
		return set_abs_path(w, n, path, &w->c->profile_dir, false);
	return walk_map(w, n, path, profile_fields, ELEMENTSOF(profile_fields), NULL);
}

static const struct field credentials_fields[] = {
	{ "key_pair", f_key_pair, false },
	{ "identity_file", f_identity_file, false },
	{ "profile", f_profile, false },
};

static int f_credentials(struct walker *w, const struct node *n, const char *path)
{
	const struct node *seen[ELEMENTSOF(credentials_fields)];
	size_t first = ELEMENTSOF(credentials_fields);
	char cp[128];
	int r;

	r = walk_map(w, n, path, credentials_fields, ELEMENTSOF(credentials_fields), seen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(credentials_fields); i++) {
		if (!seen[i])
			continue;
		if (first == ELEMENTSOF(credentials_fields)) {
			first = i;
			continue;
		}
		child_path(cp, sizeof(cp), path, credentials_fields[i].name);
		return fail(w, seen[i], cp, "%s and %s are mutually exclusive (%s at line %u)",
			    credentials_fields[first].name, credentials_fields[i].name,
			    credentials_fields[first].name, seen[first]->line);
	}
	if (first == ELEMENTSOF(credentials_fields))
		return fail(w, n, path, "one of key_pair, identity_file or profile is required");
	return 0;
}

static int f_connect(struct walker *w, const struct node *n, const char *path)
{
	return set_duration(w, n, path, &w->c->connect_timeout_usec, USEC_PER_MSEC,
			    10 * USEC_PER_MIN, "must be between 1ms and 10m");
}

static int f_request(struct walker *w, const struct node *n, const char *path)
{
	return set_duration(w, n, path, &w->c->request_timeout_usec, USEC_PER_MSEC,
			    10 * USEC_PER_MIN, "must be between 1ms and 10m");
}

static const struct field timeouts_fields[] = {
	{ "connect", f_connect, false },
	{ "request", f_request, false },
};

static int f_timeouts(struct walker *w, const struct node *n, const char *path)
{
	return walk_map(w, n, path, timeouts_fields, ELEMENTSOF(timeouts_fields), NULL);
}

static int f_max_message_size(struct walker *w, const struct node *n, const char *path)
{
	const char *v = NULL;
	uint64_t size;
	int r = want_scalar(w, n, path, "a size (e.g. 64MiB)", &v);

	if (r < 0)
		return r;
	r = tu_parse_size(v, &size);
	if (r < 0 && r != -ERANGE)
		return fail(w, n, path, "invalid size '%s' (expected bytes or e.g. 512KiB, 64MiB)",
			    show(v).s);
	if (r == -ERANGE || size < CONF_MSG_SIZE_MIN || size > CONF_MSG_SIZE_MAX)
		return fail(w, n, path, "size '%s' out of range (must be between 1KiB and 1GiB)",
			    show(v).s);
	w->c->max_message_size = size;
	return 0;
}

static int f_proxy_conn_upgrade(struct walker *w, const struct node *n, const char *path)
{
	const char *v = NULL;
	int r = want_scalar(w, n, path, "auto, always or never", &v);

	if (r < 0)
		return r;
	if (!strcmp(v, "auto"))
		w->c->proxy_conn_upgrade = TU_CONN_UPGRADE_AUTO;
	else if (!strcmp(v, "always"))
		w->c->proxy_conn_upgrade = TU_CONN_UPGRADE_ALWAYS;
	else if (!strcmp(v, "never"))
		w->c->proxy_conn_upgrade = TU_CONN_UPGRADE_NEVER;
	else
		return fail(w, n, path, "invalid value '%s' (expected auto, always or never)",
			    show(v).s);
	return 0;
}

static int f_proxy_ca(struct walker *w, const struct node *n, const char *path)
{
	return set_abs_path(w, n, path, &w->c->proxy_ca, false);
}

static const struct field auth_fields[] = {
	{ "addresses", f_addresses, false }, /* required unless the credential is a tsh profile */
	{ "server_name", f_server_name, false },
	{ "cluster_name", f_cluster_name, false },
	{ "credentials", f_credentials, true },
	{ "timeouts", f_timeouts, false },
	{ "max_message_size", f_max_message_size, false },
	{ "proxy_conn_upgrade", f_proxy_conn_upgrade, false },
	{ "proxy_ca", f_proxy_ca, false },
};

static int f_auth(struct walker *w, const struct node *n, const char *path)
{
	char cp[128];
	int r = walk_map(w, n, path, auth_fields, ELEMENTSOF(auth_fields), NULL);

	if (r < 0)
		return r;
	/* A tsh profile names its Proxy (web_proxy_addr): no address is needed. */
	if (w->c->n_addresses == 0 && !w->c->proxy.host && !w->c->profile_dir) {
		child_path(cp, sizeof(cp), path, "addresses");
		return fail(w, n, cp, "missing required key 'addresses'");
	}
	return 0;
}

/* -- host -- */

static int f_host_name(struct walker *w, const struct node *n, const char *path)
{
	return set_name(w, n, path, &w->c->host_name);
}

static int f_host_id(struct walker *w, const struct node *n, const char *path)
{
	return set_name(w, n, path, &w->c->host_id);
}

/* Teleport's label key alphabet: letters, digits and / . _ : * - */
static bool label_key_ok(const char *k)
{
	if (!*k || strlen(k) > CONF_MAX_NAME)
		return false;
	for (; *k; k++) {
		char ch = *k;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("/._:*-", ch)))
			return false;
	}
	return true;
}

static void labels_clear(struct tu_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].key);
		for (size_t j = 0; j < l->e[i].values.n; j++)
			free(l->e[i].values.v[j]);
		free(l->e[i].values.v);
	}
	free(l->e);
	l->e = NULL;
	l->n = 0;
}

static int f_labels(struct walker *w, const struct node *n, const char *path)
{
	struct tu_labels *l = &w->c->host_labels;
	size_t count;
	char cp[128];

	if (n->type != NODE_MAP)
		return fail(w, n, path, "expected a mapping of label names to values, found %s",
			    type_name(n->type));
	count = n->n / 2;
	if (count > CONF_MAX_LABELS)
		return fail(w, n, path, "too many labels (%zu, limit %d)", count, CONF_MAX_LABELS);
	labels_clear(l);
	if (count == 0)
		return 0;
	l->e = calloc(count, sizeof(*l->e));
	if (!l->e)
		return oom(w);
	for (size_t i = 0; i < count; i++) {
		const struct node *key = n->items[2 * i], *val = n->items[2 * i + 1];
		const char *v = NULL;

		child_path(cp, sizeof(cp), path, key->value);
		if (!label_key_ok(key->value))
			return fail(w, key, cp, "invalid label name '%s' (letters, digits and / . _ : * - only)",
				    show(key->value).s);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(l->e[j].key, key->value))
				return fail(w, key, cp, "duplicate label '%s' (first at line %u)",
					    show(key->value).s, n->items[2 * j]->line);
		if (val->type != NODE_SCALAR)
			return fail(w, val, cp, "expected a string label value, found %s",
				    type_name(val->type));
		v = val->is_null ? "" : val->value;
		if (val->is_null && val->value[0])
			return fail(w, val, cp, "missing value (quote it if you mean the text '%s')",
				    show(val->value).s);
		if (strlen(v) > CONF_MAX_LABEL_VAL || !printable(v))
			return fail(w, val, cp, "invalid label value '%s' (control characters or longer than %d bytes)",
				    show(v).s, CONF_MAX_LABEL_VAL);
		l->e[i].key = strdup(key->value);
		l->e[i].values.v = calloc(1, sizeof(char *));
		l->n = i + 1; /* so labels_clear frees what exists so far */
		if (!l->e[i].key || !l->e[i].values.v)
			return oom(w);
		l->e[i].values.v[0] = strdup(v);
		if (!l->e[i].values.v[0])
			return oom(w);
		l->e[i].values.n = 1;
	}
	return 0;
}

static const struct field host_fields[] = {
	{ "name", f_host_name, false },
	{ "id", f_host_id, false },
	{ "labels", f_labels, false },
};

static int f_host(struct walker *w, const struct node *n, const char *path)
{
	return walk_map(w, n, path, host_fields, ELEMENTSOF(host_fields), NULL);
}

/* -- accounts -- */

static int f_source(struct walker *w, const struct node *n, const char *path)
{
	const char *v = NULL;
	int r = want_scalar(w, n, path, "host_user_creation or all_logins", &v);

	if (r < 0)
		return r;
	if (!strcmp(v, "host_user_creation"))
		w->c->source = TU_SOURCE_HOST_USER_CREATION;
	else if (!strcmp(v, "all_logins"))
		w->c->source = TU_SOURCE_ALL_LOGINS;
	else
		return fail(w, n, path, "invalid value '%s' (expected host_user_creation or all_logins)",
			    show(v).s);
	return 0;
}

static int f_uid_range(struct walker *w, const struct node *n, const char *path)
{
	uint32_t ids[2];

	if (n->type != NODE_SEQ)
		return fail(w, n, path, "expected a list of two uids [min, max], found %s",
			    type_name(n->type));
	if (n->n != 2)
		return fail(w, n, path, "expected a list of two uids [min, max], found %zu item(s)",
			    n->n);
	for (size_t i = 0; i < 2; i++) {
		const char *v = NULL;
		int r = want_scalar(w, n->items[i], path, "a uid", &v);
		if (r < 0)
			return r;
		r = tu_parse_u32(v, &ids[i]);
		if (r < 0 || ids[i] > CONF_UID_MAX_CEIL)
			return fail(w, n->items[i], path, "invalid uid '%s' (expected a number up to %u)",
				    show(v).s, CONF_UID_MAX_CEIL);
	}
	if (ids[0] < CONF_UID_MIN_FLOOR)
		return fail(w, n, path, "minimum uid %u is below %u (system accounts)", ids[0],
			    CONF_UID_MIN_FLOOR);
	if (ids[0] >= ids[1])
		return fail(w, n, path, "minimum uid %u must be less than maximum %u", ids[0], ids[1]);
	if (ids[0] <= 65535 && ids[1] >= 65534)
		return fail(w, n, path, "range %u-%u contains 65534 (nobody) or 65535 (the 16-bit -1)",
			    ids[0], ids[1]);
	w->c->uid_min = ids[0];
	w->c->uid_max = ids[1];
	return 0;
}

/*
 * accounts.trait_id_range: the fence for host_user_uid / host_user_gid
 * traits (accounts.h).  Never 0 (root); 65534 and 65535 inside it are never
 * taken anyway.
 */
static int f_trait_id_range(struct walker *w, const struct node *n, const char *path)
{
	uint32_t ids[2];

	if (n->type != NODE_SEQ)
		return fail(w, n, path, "expected a list of two ids [min, max], found %s",
			    type_name(n->type));
	if (n->n != 2)
		return fail(w, n, path, "expected a list of two ids [min, max], found %zu item(s)",
			    n->n);
	for (size_t i = 0; i < 2; i++) {
		const char *v = NULL;
		int r = want_scalar(w, n->items[i], path, "an id", &v);
		if (r < 0)
			return r;
		r = tu_parse_u32(v, &ids[i]);
		if (r < 0 || ids[i] > CONF_UID_MAX_CEIL)
			return fail(w, n->items[i], path, "invalid id '%s' (expected a number up to %u)",
				    show(v).s, CONF_UID_MAX_CEIL);
	}
	if (ids[0] == 0)
		return fail(w, n, path, "minimum id 0 (root) is never taken from a trait");
	if (ids[0] > ids[1])
		return fail(w, n, path, "minimum id %u is above maximum %u", ids[0], ids[1]);
	w->c->trait_id_min = ids[0];
	w->c->trait_id_max = ids[1];
	return 0;
}

static int f_home(struct walker *w, const struct node *n, const char *path)
{
	const char *v = NULL;
	int r = set_abs_path(w, n, path, &w->c->home_template, true);

	if (r < 0)
		return r;
	v = w->c->home_template;
	/* Exactly one kind of placeholder: {login}; a home shared by all users is a mistake. */
	if (!strstr(v, "{login}"))
		return fail(w, n, path, "home '%s' must contain {login}", show(v).s);
	for (const char *p = v; (p = strpbrk(p, "{}")); p++) {
		if (*p == '{' && !strncmp(p, "{login}", 7)) {
			p += 6;
			continue;
		}
		return fail(w, n, path, "home '%s': only the {login} placeholder is supported",
			    show(v).s);
	}
	return 0;
}

static int f_shell(struct walker *w, const struct node *n, const char *path)
{
	return set_abs_path(w, n, path, &w->c->shell, true);
}

static const struct field accounts_fields[] = {
	{ "source", f_source, false },
	{ "uid_range", f_uid_range, false },
	{ "trait_id_range", f_trait_id_range, false },
	{ "home", f_home, false },
	{ "shell", f_shell, false },
};

static int f_accounts(struct walker *w, const struct node *n, const char *path)
{
	return walk_map(w, n, path, accounts_fields, ELEMENTSOF(accounts_fields), NULL);
}

/* -- cache -- */

static int f_cache_dir(struct walker *w, const struct node *n, const char *path)
{
	return set_abs_path(w, n, path, &w->c->cache_dir, false);
}

static int f_refresh_after(struct walker *w, const struct node *n, const char *path)
{
	return set_duration(w, n, path, &w->c->refresh_after_usec, 0, 30 * USEC_PER_DAY,
			    "must be between 0 and 30d");
}

static int f_offline_max_age(struct walker *w, const struct node *n, const char *path)
{
	return set_duration(w, n, path, &w->c->offline_max_age_usec, USEC_PER_SEC,
			    3650 * USEC_PER_DAY,
			    "must be between 1s and 3650d; use pam.offline: deny to refuse offline logins");
}

static int f_negative_ttl(struct walker *w, const struct node *n, const char *path)
{
	return set_duration(w, n, path, &w->c->negative_ttl_usec, 0, USEC_PER_DAY,
			    "must be between 0 and 1d");
}

static const struct field cache_fields[] = {
	{ "dir", f_cache_dir, false },
	{ "refresh_after", f_refresh_after, false },
	{ "offline_max_age", f_offline_max_age, false },
	{ "negative_ttl", f_negative_ttl, false },
};

static int f_cache(struct walker *w, const struct node *n, const char *path)
{
	const struct node *seen[ELEMENTSOF(cache_fields)];
	char cp[128];
	int r;

	r = walk_map(w, n, path, cache_fields, ELEMENTSOF(cache_fields), seen);
	if (r < 0)
		return r;
	if (w->c->refresh_after_usec > w->c->offline_max_age_usec) {
		const struct node *at = seen[1] ? seen[1] : seen[2];
		child_path(cp, sizeof(cp), path, seen[1] ? "refresh_after" : "offline_max_age");
		return fail(w, at ? at : n, cp, "refresh_after must not be longer than offline_max_age");
	}
	return 0;
}

/* -- pam -- */

static int f_offline(struct walker *w, const struct node *n, const char *path)
{
	const char *v = NULL;
	int r = want_scalar(w, n, path, "cached or deny", &v);

	if (r < 0)
		return r;
	if (!strcmp(v, "cached"))
		w->c->pam_offline = TU_OFFLINE_CACHED;
	else if (!strcmp(v, "deny"))
		w->c->pam_offline = TU_OFFLINE_DENY;
	else
		return fail(w, n, path, "invalid value '%s' (expected cached or deny)", show(v).s);
	return 0;
}

static int f_trust_env(struct walker *w, const struct node *n, const char *path)
{
	return set_bool(w, n, path, &w->c->trust_teleport_env);
}

static int f_trust_cert(struct walker *w, const struct node *n, const char *path)
{
	return set_bool(w, n, path, &w->c->trust_ssh_cert);
}

static const struct field pam_fields[] = {
	{ "offline", f_offline, false },
	{ "trust_teleport_env", f_trust_env, false },
	{ "trust_ssh_cert", f_trust_cert, false },
};

static int f_pam(struct walker *w, const struct node *n, const char *path)
{
	return walk_map(w, n, path, pam_fields, ELEMENTSOF(pam_fields), NULL);
}

static const struct field root_fields[] = {
	{ "auth", f_auth, true },
	{ "host", f_host, false },
	{ "accounts", f_accounts, false },
	{ "cache", f_cache, false },
	{ "pam", f_pam, false },
};

/* ---- public API ------------------------------------------------------ */

struct tu_conf *tu_conf_free(struct tu_conf *c)
{
	if (!c)
		return NULL;
	free(c->path);
	for (size_t i = 0; i < c->n_addresses; i++)
		free(c->addresses[i].host);
	free(c->server_name);
	free(c->cluster_name);
	free(c->cert_path);
	free(c->key_path);
	free(c->ca_path);
	free(c->identity_file);
	free(c->proxy_ca);
	free(c->proxy.host);
	free(c->profile_dir);
	free(c->profile_name);
	free(c->host_name);
	free(c->host_id);
	labels_clear(&c->host_labels);
	free(c->home_template);
	free(c->shell);
	free(c->cache_dir);
	free(c);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct tu_conf *, tu_conf_free)

static struct tu_conf *conf_new_defaults(void)
{
	_cleanup_(tu_conf_freep) struct tu_conf *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->connect_timeout_usec = 1 * USEC_PER_SEC;
	c->request_timeout_usec = 3 * USEC_PER_SEC;
	c->max_message_size = UINT64_C(64) << 20;
	c->source = TU_SOURCE_HOST_USER_CREATION;
	c->uid_min = 200000;
	c->uid_max = 899999999;
	c->trait_id_min = 1000;
	c->trait_id_max = 2147483647;
	c->refresh_after_usec = 5 * USEC_PER_MIN;
	c->offline_max_age_usec = 72 * 60 * USEC_PER_MIN;
	c->negative_ttl_usec = 1 * USEC_PER_MIN;
	c->pam_offline = TU_OFFLINE_CACHED;
	c->trust_teleport_env = false;
	c->trust_ssh_cert = false;
	c->server_name = strdup(TU_DEFAULT_SERVER_NAME);
	c->home_template = strdup("/home/{login}");
	c->shell = strdup("/bin/bash");
	/* The same directory the NSS module looks in by default (base/snapshot.h). */
	c->cache_dir = strdup(TU_LOCALSTATEDIR "/cache/teleport-unix");
	if (!c->server_name || !c->home_template || !c->shell || !c->cache_dir)
		return NULL;
	return TAKE_PTR(c);
}

int tu_conf_parse(const char *text, size_t len, const char *name, struct tu_conf **ret,
			    struct tu_err *reterr)
{
	_cleanup_(tu_conf_freep) struct tu_conf *c = NULL;
	_cleanup_(node_freep) struct node *root = NULL;
	struct walker w;
	int r;

	if (!name)
		name = "<config>";
	if (!text || !ret)
		return tu_err_set(reterr, -EINVAL, "no configuration text");
	if (len > CONF_MAX_FILE_SIZE) {
		tu_err_at(reterr, name, 0);
		return tu_err_set(reterr, -EMSGSIZE, "configuration larger than %d bytes",
				  CONF_MAX_FILE_SIZE);
	}

	r = build_tree(text, len, name, &root, reterr);
	if (r < 0)
		return r;

	c = conf_new_defaults();
	if (!c)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	w = (struct walker){ .name = name, .c = c, .err = reterr };

	if (!root || (root->type == NODE_SCALAR && root->is_null))
		return fail(&w, root, "auth", "missing required key 'auth' (the file is empty)");
	if (root->type != NODE_MAP)
		return fail(&w, root, "", "expected a mapping at the top level, found %s",
			    type_name(root->type));
	r = walk_map(&w, root, "", root_fields, ELEMENTSOF(root_fields), NULL);
	if (r < 0)
		return r;

	if (!c->host_name) {
		char hn[HOST_NAME_MAX + 1];

		if (gethostname(hn, sizeof(hn)) < 0) {
			r = -errno;
			return tu_err_set(reterr, r, "host.name not set and gethostname() failed: %s",
					  strerror(-r));
		}
		hn[sizeof(hn) - 1] = '\0';
		c->host_name = strdup(hn);
		if (!c->host_name)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	*ret = TAKE_PTR(c);
	return 0;
}

int tu_conf_new_default(struct tu_conf **ret, struct tu_err *reterr)
{
	_cleanup_(tu_conf_freep) struct tu_conf *c = conf_new_defaults();
	char hn[HOST_NAME_MAX + 1];

	if (!c)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	if (gethostname(hn, sizeof(hn)) < 0) {
		int r = -errno;
		return tu_err_set(reterr, r, "gethostname() failed: %s", strerror(-r));
	}
	hn[sizeof(hn) - 1] = '\0';
	c->host_name = strdup(hn);
	if (!c->host_name)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	*ret = TAKE_PTR(c);
	return 0;
}

int tu_conf_load(const char *path, unsigned flags, struct tu_conf **ret,
			   struct tu_err *reterr)
{
	_cleanup_(tu_conf_freep) struct tu_conf *c = NULL;
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	if (!path || !*path || !ret)
		return tu_err_set(reterr, -EINVAL, "no configuration file given");

	r = tu_fs_read_file(path, CONF_MAX_FILE_SIZE,
			    (flags & TU_CONF_RELAXED_PERMS) ? TU_FS_RELAXED : 0, &text, &len, reterr);
	if (r < 0)
		return r; /* the message already names the path */
	r = tu_conf_parse(text, len, path, &c, reterr);
	if (r < 0)
		return r;
	c->path = strdup(path);
	if (!c->path)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	*ret = TAKE_PTR(c);
	return 0;
}

const char *tu_conf_path(const char *explicit_path)
{
	const char *e;

	if (explicit_path && *explicit_path)
		return explicit_path;
	e = secure_getenv("TELEPORT_UNIX_CONFIG");
	if (e && *e)
		return e;
	return TU_CONF_DEFAULT_PATH;
}
