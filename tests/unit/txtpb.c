/* SPDX-License-Identifier: Apache-2.0 */
/*
 * txtpb.c - protobuf text-format reader for tests (see txtpb.h).  Written
 * for the golden vectors in shared/vectors/teleport; schema-less, so enum
 * values stay names and numbers stay text.
 */
#include "txtpb.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tp {
	const char *p, *end;
	unsigned line;
	char *err;
	size_t errsz;
};

static int fail(struct tp *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct tp *t, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(t->err, t->errsz, "line %u: ", t->line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t) n < t->errsz)
		vsnprintf(t->err + n, t->errsz - (size_t) n, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static void skip_ws(struct tp *t)
{
	while (t->p < t->end) {
		if (*t->p == '\n') {
			t->line++;
			t->p++;
		} else if (isspace((unsigned char) *t->p)) {
			t->p++;
		} else if (*t->p == '#') {
			while (t->p < t->end && *t->p != '\n')
				t->p++;
		} else {
			break;
		}
	}
}

static bool is_tok(char c)
{
	return isalnum((unsigned char) c) || c == '_' || c == '.' || c == '-' || c == '+';
}

static char *take_token(struct tp *t)
{
	const char *s = t->p;

	while (t->p < t->end && is_tok(*t->p))
		t->p++;
	if (t->p == s)
		return NULL;
	return strndup(s, (size_t) (t->p - s));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char) tolower((unsigned char) c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One or more adjacent quoted strings, unescaped into *ret. */
static int take_string(struct tp *t, char **ret)
{
	size_t cap = 64, n = 0;
	char *out = malloc(cap);

	if (!out)
		return -ENOMEM;
	while (t->p < t->end && (*t->p == '"' || *t->p == '\'')) {
		char q = *t->p++;
		for (;;) {
			char c;
			if (t->p >= t->end || *t->p == '\n') {
				free(out);
				return fail(t, "unterminated string");
			}
			c = *t->p++;
			if (c == q)
				break;
			if (c == '\\') {
				if (t->p >= t->end) {
					free(out);
					return fail(t, "bad escape");
				}
				c = *t->p++;
				switch (c) {
				case 'n':
					c = '\n';
					break;
				case 't':
					c = '\t';
					break;
				case 'r':
					c = '\r';
					break;
				case 'a':
					c = '\a';
					break;
				case 'b':
					c = '\b';
					break;
				case 'f':
					c = '\f';
					break;
				case 'v':
					c = '\v';
					break;
				case '\\':
				case '\'':
				case '"':
				case '?':
					break;
				case 'x': {
					int v = 0, k = 0, h;
					while (k < 2 && t->p < t->end && (h = hexval(*t->p)) >= 0) {
						v = v * 16 + h;
						t->p++;
						k++;
					}
					if (k == 0) {
						free(out);
						return fail(t, "bad \\x escape");
					}
					c = (char) v;
					break;
				}
				default:
					if (c >= '0' && c <= '7') {
						int v = c - '0', k = 1;
						while (k < 3 && t->p < t->end && *t->p >= '0' &&
						       *t->p <= '7') {
							v = v * 8 + (*t->p++ - '0');
							k++;
						}
						c = (char) v;
					} else {
						free(out);
						return fail(t, "unknown escape \\%c", c);
					}
				}
			}
			if (n + 2 > cap) {
				char *o = realloc(out, cap * 2);
				if (!o) {
					free(out);
					return -ENOMEM;
				}
				out = o;
				cap *= 2;
			}
			out[n++] = c;
		}
		skip_ws(t);
	}
	out[n] = 0;
	*ret = out;
	return 0;
}

static int add_kid(struct tnode *parent, struct tnode *kid)
{
	struct tnode *k = realloc(parent->kids, (parent->n + 1) * sizeof(*k));

	if (!k)
		return -ENOMEM;
	parent->kids = k;
	k[parent->n++] = *kid;
	*kid = (struct tnode){0};
	return 0;
}

static int parse_fields(struct tp *t, struct tnode *parent, char close, unsigned depth);

/* A value (scalar or message) for field `name`, appended to parent. */
static int parse_value(struct tp *t, struct tnode *parent, const char *name, unsigned depth)
{
	struct tnode kid = {0};
	int r;

	kid.name = strdup(name);
	if (!kid.name)
		return -ENOMEM;
	if (t->p < t->end && *t->p == '{') {
		t->p++;
		r = parse_fields(t, &kid, '}', depth + 1);
	} else if (t->p < t->end && (*t->p == '"' || *t->p == '\'')) {
		kid.is_str = true;
		r = take_string(t, &kid.val);
	} else {
		kid.val = take_token(t);
		r = kid.val ? 0 : fail(t, "value expected for %s", name);
	}
	if (r >= 0)
		r = add_kid(parent, &kid);
	txtpb_free(&kid);
	return r;
}

static int parse_fields(struct tp *t, struct tnode *parent, char close, unsigned depth)
{
	if (depth > 64)
		return fail(t, "nesting too deep");
	for (;;) {
		char *name;
		bool colon = false;
		int r;

		skip_ws(t);
		if (t->p >= t->end)
			return close ? fail(t, "missing '%c'", close) : 0;
		if (*t->p == close) {
			t->p++;
			return 0;
		}
		name = take_token(t);
		if (!name)
			return fail(t, "field name expected at '%c'", *t->p);
		skip_ws(t);
		if (t->p < t->end && *t->p == ':') {
			colon = true;
			t->p++;
			skip_ws(t);
		}
		if (colon && t->p < t->end && *t->p == '[') {
			t->p++;
			for (;;) {
				skip_ws(t);
				if (t->p < t->end && *t->p == ']') {
					t->p++;
					break;
				}
				r = parse_value(t, parent, name, depth);
				if (r < 0) {
					free(name);
					return r;
				}
				skip_ws(t);
				if (t->p < t->end && *t->p == ',')
					t->p++;
				else if (t->p < t->end && *t->p != ']') {
					free(name);
					return fail(t, "',' or ']' expected");
				}
			}
		} else if (!colon && (t->p >= t->end || *t->p != '{')) {
			free(name);
			return fail(t, "':' or '{' expected");
		} else {
			r = parse_value(t, parent, name, depth);
			if (r < 0) {
				free(name);
				return r;
			}
		}
		free(name);
		skip_ws(t);
		if (t->p < t->end && (*t->p == ',' || *t->p == ';'))
			t->p++;
	}
}

int txtpb_parse(const char *text, size_t len, struct tnode *ret, char *err, size_t errsz)
{
	struct tp t = {.p = text, .end = text + len, .line = 1, .err = err, .errsz = errsz};
	struct tnode root = {0};
	int r;

	root.name = strdup("");
	if (!root.name)
		return -ENOMEM;
	r = parse_fields(&t, &root, 0, 0);
	if (r < 0) {
		txtpb_free(&root);
		return r;
	}
	*ret = root;
	return 0;
}

int txtpb_message_type(const char *text, char *out, size_t outsz)
{
	static const char key[] = "# proto-message:";
	const char *p = strstr(text, key), *e;
	size_t n;

	if (!p)
		return -ENOENT;
	p += sizeof(key) - 1;
	while (*p == ' ')
		p++;
	e = p;
	while (*e && !isspace((unsigned char) *e))
		e++;
	n = (size_t) (e - p);
	if (n == 0 || n >= outsz)
		return -ENOENT;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

void txtpb_free(struct tnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		txtpb_free(&n->kids[i]);
	free(n->kids);
	free(n->name);
	free(n->val);
	*n = (struct tnode){0};
}

static void find(const struct tnode *n, const char *path, const struct tnode **out, size_t max,
		 size_t *count)
{
	const char *dot = strchr(path, '.');
	size_t len = dot ? (size_t) (dot - path) : strlen(path);

	for (size_t i = 0; i < n->n; i++) {
		const struct tnode *k = &n->kids[i];
		if (strlen(k->name) != len || strncmp(k->name, path, len) != 0)
			continue;
		if (dot) {
			find(k, dot + 1, out, max, count);
		} else {
			if (*count < max)
				out[*count] = k;
			(*count)++;
		}
	}
}

size_t txtpb_find(const struct tnode *n, const char *path, const struct tnode **out, size_t max)
{
	size_t count = 0;

	if (n && path)
		find(n, path, out, max, &count);
	return count;
}

const struct tnode *txtpb_get(const struct tnode *n, const char *path)
{
	const struct tnode *k = NULL;

	if (txtpb_find(n, path, &k, 1) == 0)
		return NULL;
	return k;
}

const char *txtpb_str(const struct tnode *n, const char *path)
{
	const struct tnode *k = txtpb_get(n, path);

	return k ? k->val : NULL;
}
