/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbac.c - Teleport's node-access RBAC, written from the behaviour of
 * lib/services/role.go, lib/utils/parse and api/types/role.go (see
 * API.md §4, §5): trait templates, node_labels and node_labels_expression
 * matching, allow vs deny across roles, host-user creation.
 * Layer: libcore.  Pure: no clock, no I/O, no environment, no logging.
 *
 * Regular expressions: Teleport uses Go's RE2; we use POSIX ERE (regcomp,
 * REG_EXTENDED) after a small translation (re2_to_posix below): \d \w \s and
 * their negations become bracket classes, (?:...) and (?P<name>...) become
 * plain groups with the group numbers remapped, so $1/${name} in
 * regexp.replace mean what they mean in Teleport.  Not supported (the
 * pattern is refused with -EBADMSG, which fails closed): lazy quantifiers,
 * inline flags (?i), \b, \pL, \A, \z.  POSIX picks the leftmost-longest
 * match where RE2 picks leftmost-first; the two differ only for ambiguous
 * alternations.
 */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cleanup.h"
#include "err.h"
#include "rbac.h"
#include "strbuf.h"

#define TEMPLATE_MAX     4096 /* longest template / expression we evaluate */
#define RESULT_MAX       65536 /* bytes of one interpolated value */
#define VALUES_MAX       4096 /* values produced by one template */
#define EXPR_DEPTH_MAX   32
#define RX_CACHE_MAX     512
#define RX_GROUPS_MAX    32
#define LOGIN_MAX        32

/* ---- small list helpers (own copies: rbac must not depend on model.c) ---- */

static int strv_addn(struct tu_strv *v, const char *s, size_t n)
{
	char *c = strndup(s, n);
	if (!c)
		return -ENOMEM;
	char **nv = realloc(v->v, (v->n + 2) * sizeof(char *));
	if (!nv) {
		free(c);
		return -ENOMEM;
	}
	nv[v->n++] = c;
	nv[v->n] = NULL;
	v->v = nv;
	return 0;
}

static int strv_add(struct tu_strv *v, const char *s)
{
	return strv_addn(v, s, strlen(s));
}

static bool strv_has(const struct tu_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorts bytewise and drops duplicates in place. */
static void strv_sort_uniq(struct tu_strv *v)
{
	if (v->n < 2)
		return;
	qsort(v->v, v->n, sizeof(char *), cmp_strp);
	size_t w = 1;
	for (size_t i = 1; i < v->n; i++) {
		if (strcmp(v->v[i], v->v[w - 1]) == 0) {
			free(v->v[i]);
			continue;
		}
		v->v[w++] = v->v[i];
	}
	v->n = w;
	v->v[w] = NULL;
}

static const struct tu_strv *labels_find(const struct tu_labels *l, const char *key)
{
	if (!l)
		return NULL;
	for (size_t i = 0; i < l->n; i++)
		if (l->e[i].key && strcmp(l->e[i].key, key) == 0)
			return &l->e[i].values;
	return NULL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ---- regular expressions ---- */

struct rx {
	char *pattern;                /* as written (RE2 syntax) */
	regex_t re;
	size_t n_groups;              /* RE2 capturing groups */
	int group_map[RX_GROUPS_MAX + 1]; /* RE2 group number -> POSIX group number */
	char *group_names[RX_GROUPS_MAX + 1];
};

struct rx_cache {
	pthread_mutex_t lock;
	struct rx **e;
	size_t n;
};

static void rx_free(struct rx *r)
{
	if (!r)
		return;
	regfree(&r->re);
	for (size_t i = 0; i <= RX_GROUPS_MAX; i++)
		free(r->group_names[i]);
	free(r->pattern);
	free(r);
}

static int append_class(struct tu_strbuf *b, char esc, bool in_bracket)
{
	const char *cls;
	bool neg = false;
	switch (esc) {
	case 'D':
		neg = true;
		/* fall through */
	case 'd':
		cls = "0-9";
		break;
	case 'W':
		neg = true;
		/* fall through */
	case 'w':
		cls = "0-9A-Za-z_";
		break;
	case 'S':
		neg = true;
		/* fall through */
	case 's':
		cls = "[:space:]";
		break;
	default:
		return -EINVAL;
	}
	if (in_bracket) {
		if (neg)
			return -EOPNOTSUPP;
		return tu_strbuf_adds(b, cls);
	}
	return tu_strbuf_addf(b, "[%s%s]", neg ? "^" : "", cls);
}

/* Translates RE2 syntax into POSIX ERE and fills the group map of r. */
static int re2_to_posix(const char *in, struct rx *r, struct tu_strbuf *out, struct tu_err *reterr)
{
	size_t posix_groups = 0;
	unsigned long product = 1;
	bool in_bracket = false, prev_quant = false;
	int k;

	for (size_t i = 0; in[i]; i++) {
		char c = in[i];
		if (c == '\\') {
			prev_quant = false;
			char n = in[i + 1];
			if (!n)
				return tu_err_set(reterr, -EBADMSG, "regular expression '%s': trailing backslash", in);
			i++;
			if (strchr("dDwWsS", n)) {
				k = append_class(out, n, in_bracket);
				if (k == -EOPNOTSUPP)
					return tu_err_set(reterr, -EBADMSG, "regular expression '%s': negated class \\%c inside [] is not supported", in, n);
				if (k < 0)
					return k;
				continue;
			}
			if (strchr("bBpPAzQECK", n) || (n >= '0' && n <= '9'))
				return tu_err_set(reterr, -EBADMSG, "regular expression '%s': \\%c is not supported (POSIX regex)", in, n);
			if (n == 'n' || n == 't' || n == 'r' || n == 'f' || n == 'v') {
				char lit = n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n == 'f' ? '\f' : '\v';
				k = tu_strbuf_addc(out, lit);
			} else if (in_bracket) {
				/* POSIX brackets have no escapes: a backslash is literal. */
				k = n == '\\' ? tu_strbuf_addc(out, '\\') : tu_strbuf_addc(out, n);
			} else {
				char two[2] = { '\\', n };
				k = tu_strbuf_add(out, two, 2);
			}
			if (k < 0)
				return k;
			continue;
		}
		if (in_bracket) {
			if (c == ']' && !(i > 0 && (in[i - 1] == '[' || (in[i - 1] == '^' && i > 1 && in[i - 2] == '['))))
				in_bracket = false;
			else if (c == '[' && in[i + 1] == ':') {
				const char *end = strstr(in + i + 2, ":]");
				if (!end)
					return tu_err_set(reterr, -EBADMSG, "regular expression '%s': unterminated [: :] class", in);
				k = tu_strbuf_add(out, in + i, (size_t) (end + 2 - (in + i)));
				if (k < 0)
					return k;
				i = (size_t) (end + 1 - in);
				continue;
			}
			k = tu_strbuf_addc(out, c);
			if (k < 0)
				return k;
			continue;
		}
		if (c == '[') {
			prev_quant = false;
			in_bracket = true;
			k = tu_strbuf_addc(out, c);
			if (k < 0)
				return k;
			continue;
		}
		/*
		 * Repetition.  RE2 refuses a repetition of a repetition ("a**",
		 * "a+{2}") and big counts; glibc accepts them and can need
		 * gigabytes to compile them, so refuse them here (fail closed).
		 */
		size_t rep_len = 0;
		unsigned long rep_max = 0;
		if (c == '{') {
			unsigned long m = 0, n = 0;
			size_t j = i + 1;
			bool comma = false, digits = false, digits2 = false;
			while (in[j] >= '0' && in[j] <= '9' && m <= 100000)
				m = m * 10 + (unsigned long) (in[j++] - '0'), digits = true;
			if (in[j] == ',') {
				comma = true;
				j++;
				while (in[j] >= '0' && in[j] <= '9' && n <= 100000)
					n = n * 10 + (unsigned long) (in[j++] - '0'), digits2 = true;
			}
			if (digits && in[j] == '}') {
				rep_len = j - i + 1;
				rep_max = comma ? (digits2 ? n : m + 1) : m;
				if (m > 1000 || n > 1000 || (digits2 && n < m))
					return tu_err_set(reterr, -EBADMSG, "regular expression '%s': bad repetition count", in);
			}
		}
		if (c == '*' || c == '+' || c == '?' || rep_len) {
			size_t l = rep_len ? rep_len : 1;
			if (prev_quant)
				return tu_err_set(reterr, -EBADMSG, "regular expression '%s': invalid nested repetition operator", in);
			if (in[i + l] == '?')
				return tu_err_set(reterr, -EBADMSG, "regular expression '%s': lazy quantifiers are not supported (POSIX regex)", in);
			if (rep_len) {
				product *= rep_max > 1 ? rep_max : 1;
				if (product > 1000)
					return tu_err_set(reterr, -EBADMSG, "regular expression '%s': repetition too large", in);
			}
			k = tu_strbuf_add(out, in + i, l);
			if (k < 0)
				return k;
			i += l - 1;
			prev_quant = true;
			continue;
		}
		prev_quant = false;
		if (c == '{' || c == '}') {
			/* Not a repetition: a literal brace, as in RE2. */
			char two[2] = { '\\', c };
			k = tu_strbuf_add(out, two, 2);
			if (k < 0)
				return k;
			continue;
		}
		if (c == '(') {
			if (posix_groups >= RX_GROUPS_MAX)
				return tu_err_set(reterr, -EBADMSG, "regular expression '%s': more than %d groups", in, RX_GROUPS_MAX);
			posix_groups++;
			if (in[i + 1] == '?') {
				if (in[i + 2] == ':') {
					i += 2;
				} else if ((in[i + 2] == 'P' && in[i + 3] == '<') || in[i + 2] == '<') {
					size_t s = i + (in[i + 2] == 'P' ? 4 : 3);
					size_t e = s;
					while (in[e] && in[e] != '>')
						e++;
					if (!in[e] || e == s)
						return tu_err_set(reterr, -EBADMSG, "regular expression '%s': bad group name", in);
					r->n_groups++;
					r->group_map[r->n_groups] = (int) posix_groups;
					r->group_names[r->n_groups] = strndup(in + s, e - s);
					if (!r->group_names[r->n_groups])
						return -ENOMEM;
					i = e;
				} else {
					return tu_err_set(reterr, -EBADMSG, "regular expression '%s': '(?' flags are not supported (POSIX regex)", in);
				}
			} else {
				r->n_groups++;
				r->group_map[r->n_groups] = (int) posix_groups;
			}
			k = tu_strbuf_addc(out, '(');
			if (k < 0)
				return k;
			continue;
		}
		k = tu_strbuf_addc(out, c);
		if (k < 0)
			return k;
	}
	if (in_bracket)
		return tu_err_set(reterr, -EBADMSG, "regular expression '%s': missing ']'", in);
	return 0;
}

static int rx_compile(const char *pattern, struct rx **ret, struct tu_err *reterr)
{
	struct tu_strbuf b;
	struct rx *r;
	int k;

	if (strlen(pattern) > TEMPLATE_MAX)
		return tu_err_set(reterr, -EMSGSIZE, "regular expression longer than %d bytes", TEMPLATE_MAX);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->pattern = strdup(pattern);
	if (!r->pattern) {
		free(r);
		return -ENOMEM;
	}
	tu_strbuf_init(&b, 4 * TEMPLATE_MAX);
	k = re2_to_posix(pattern, r, &b, reterr);
	if (k >= 0 && !b.buf)
		k = tu_strbuf_adds(&b, "");
	if (k < 0) {
		tu_strbuf_done(&b);
		for (size_t i = 0; i <= RX_GROUPS_MAX; i++)
			free(r->group_names[i]);
		free(r->pattern);
		free(r);
		return k;
	}
	k = regcomp(&r->re, b.buf, REG_EXTENDED);
	tu_strbuf_done(&b);
	if (k != 0) {
		char msg[128];
		regerror(k, NULL, msg, sizeof(msg));
		for (size_t i = 0; i <= RX_GROUPS_MAX; i++)
			free(r->group_names[i]);
		free(r->pattern);
		free(r);
		return tu_err_set(reterr, -EBADMSG, "invalid regular expression '%s': %s", pattern, msg);
	}
	*ret = r;
	return 0;
}

/* A compiled expression: from the cache (owned=false) or compiled for this use. */
struct rx_ref {
	struct rx *rx;
	bool owned;
};

static int rx_acquire(struct rx_cache *c, const char *pattern, struct rx_ref *ret, struct tu_err *reterr)
{
	struct rx *r = NULL;
	int k;

	if (c) {
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < c->n; i++)
			if (strcmp(c->e[i]->pattern, pattern) == 0) {
				r = c->e[i];
				break;
			}
		pthread_mutex_unlock(&c->lock);
		if (r) {
			*ret = (struct rx_ref){ r, false };
			return 0;
		}
	}
	k = rx_compile(pattern, &r, reterr);
	if (k < 0)
		return k;
	if (c) {
		bool cached = false;
		pthread_mutex_lock(&c->lock);
		if (c->n < RX_CACHE_MAX) {
			struct rx **ne = realloc(c->e, (c->n + 1) * sizeof(*ne));
			if (ne) {
				c->e = ne;
				c->e[c->n++] = r;
				cached = true;
			}
		}
		pthread_mutex_unlock(&c->lock);
		if (cached) {
			*ret = (struct rx_ref){ r, false };
			return 0;
		}
	}
	*ret = (struct rx_ref){ r, true };
	return 0;
}

static void rx_release(struct rx_ref *r)
{
	if (r->owned)
		rx_free(r->rx);
	r->rx = NULL;
}

static void rx_cache_init(struct rx_cache *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
}

static void rx_cache_done(struct rx_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		rx_free(c->e[i]);
	free(c->e);
	c->e = NULL;
	c->n = 0;
	pthread_mutex_destroy(&c->lock);
}

/* ---- globs and label values ---- */

/* Full-string glob match where only '*' is special (Teleport's GlobToRegexp). */
static bool glob_match(const char *p, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s) {
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p && *p == *s) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static bool is_regex_value(const char *p)
{
	size_t n = strlen(p);
	return n >= 2 && p[0] == '^' && p[n - 1] == '$';
}

/*
 * Reads one literal run of a regular expression (plain characters and
 * backslash-escaped punctuation) into buf.  Returns the length consumed, or
 * -1 if the run holds a metacharacter.
 */
static ssize_t regex_literal(const char *p, size_t n, char *buf, size_t size, size_t *ret_len)
{
	size_t i = 0, o = 0;
	while (i < n) {
		char c = p[i];
		if (c == '\\') {
			char e = i + 1 < n ? p[i + 1] : '\0';
			if (!e || !strchr(".+*?()|[]{}^$\\-/", e))
				return -1;
			c = e;
			i += 2;
		} else if (strchr(".+*?()|[]{}^$", c)) {
			return -1;
		} else {
			i++;
		}
		if (o + 1 >= size)
			return -1;
		buf[o++] = c;
	}
	buf[o] = '\0';
	*ret_len = o;
	return (ssize_t) i;
}

/*
 * Fast path for the label regexes people write: ^lit$, ^(a|b|c)$ and
 * ^lit.*$.  Returns true when it could decide without regcomp/regexec
 * (which cost microseconds each: a decision has a 50 µs budget).
 */
static bool simple_regex_match(const char *pattern, const char *value, bool *ret)
{
	char buf[256];
	size_t n = strlen(pattern), len;
	const char *b = pattern + 1;
	size_t bn = n - 2;

	if (bn >= 2 && b[0] == '(' && b[bn - 1] == ')') {
		size_t s = 1;
		bool any = false;
		for (size_t i = 1; i < bn; i++) {
			if (b[i] == '\\') {
				i++;
				continue;
			}
			if (b[i] != '|' && i != bn - 1)
				continue;
			if (regex_literal(b + s, i - s, buf, sizeof(buf), &len) != (ssize_t) (i - s))
				return false;
			if (strcmp(buf, value) == 0)
				any = true;
			s = i + 1;
		}
		*ret = any;
		return true;
	}
	if (bn >= 2 && b[bn - 2] == '.' && b[bn - 1] == '*' && (bn < 3 || b[bn - 3] != '\\')) {
		if (regex_literal(b, bn - 2, buf, sizeof(buf), &len) != (ssize_t) (bn - 2))
			return false;
		*ret = strncmp(buf, value, len) == 0;
		return true;
	}
	if (regex_literal(b, bn, buf, sizeof(buf), &len) != (ssize_t) bn)
		return false;
	*ret = strcmp(buf, value) == 0;
	return true;
}

static int match_value(struct rx_cache *c, const char *pattern, const char *value, bool *ret, struct tu_err *reterr)
{
	if (!is_regex_value(pattern)) {
		*ret = glob_match(pattern, value);
		return 0;
	}
	if (simple_regex_match(pattern, value, ret))
		return 0;
	struct rx_ref r;
	int k = rx_acquire(c, pattern, &r, reterr);
	if (k < 0)
		return k;
	*ret = regexec(&r.rx->re, value, 0, NULL, 0) == 0;
	rx_release(&r);
	return 0;
}

int tu_rbac_match_value(const char *pattern, const char *value, bool *ret_match, struct tu_err *reterr)
{
	bool m;
	int k = match_value(NULL, pattern, value, &m, reterr);
	if (k < 0)
		return k;
	*ret_match = m;
	return 0;
}

/* ---- regexp.replace ---- */

/* Go's Regexp.Expand: $1, ${1}, $name, ${name}, $$. */
static int expand_repl(const struct rx *r, const char *repl, const char *src, const regmatch_t *m,
		       struct tu_strbuf *out)
{
	int k;
	for (size_t i = 0; repl[i]; i++) {
		if (repl[i] != '$') {
			k = tu_strbuf_addc(out, repl[i]);
			if (k < 0)
				return k;
			continue;
		}
		if (repl[i + 1] == '$') {
			k = tu_strbuf_addc(out, '$');
			if (k < 0)
				return k;
			i++;
			continue;
		}
		size_t s = i + 1, e;
		bool brace = repl[s] == '{';
		if (brace)
			s++;
		e = s;
		while ((repl[e] >= 'a' && repl[e] <= 'z') || (repl[e] >= 'A' && repl[e] <= 'Z') ||
		       (repl[e] >= '0' && repl[e] <= '9') || repl[e] == '_')
			e++;
		if (e == s || (brace && repl[e] != '}')) {
			/* Not a valid reference: Go copies the '$' literally. */
			k = tu_strbuf_addc(out, '$');
			if (k < 0)
				return k;
			continue;
		}
		size_t len = e - s;
		int group = -1;
		bool digits = true;
		for (size_t j = s; j < e; j++)
			if (repl[j] < '0' || repl[j] > '9')
				digits = false;
		if (digits) {
			size_t num = 0;
			for (size_t j = s; j < e && num <= RX_GROUPS_MAX; j++)
				num = num * 10 + (size_t) (repl[j] - '0');
			if (num <= r->n_groups)
				group = num == 0 ? 0 : r->group_map[num];
		} else {
			for (size_t g = 1; g <= r->n_groups; g++)
				if (r->group_names[g] && strlen(r->group_names[g]) == len &&
				    memcmp(r->group_names[g], repl + s, len) == 0) {
					group = r->group_map[g];
					break;
				}
		}
		if (group >= 0 && m[group].rm_so >= 0) {
			k = tu_strbuf_add(out, src + m[group].rm_so, (size_t) (m[group].rm_eo - m[group].rm_so));
			if (k < 0)
				return k;
		}
		i = brace ? e : e - 1;
	}
	return 0;
}

/* Replaces every match of r in s (Go's ReplaceAllString); *ret_matched false when none.
 * -EMSGSIZE (with reterr filled) when the result would pass RESULT_MAX. */
static int rx_replace_all(const struct rx *r, const char *s, const char *repl, char **ret, bool *ret_matched,
			  struct tu_err *reterr)
{
	regmatch_t m[RX_GROUPS_MAX + 1];
	struct tu_strbuf out;
	size_t len = strlen(s), pos = 0;
	ssize_t last_end = -1;
	bool any = false;
	int k = 0;

	tu_strbuf_init(&out, RESULT_MAX);
	while (pos <= len) {
		if (regexec(&r->re, s + pos, RX_GROUPS_MAX + 1, m, pos > 0 ? REG_NOTBOL : 0) != 0)
			break;
		size_t ms = pos + (size_t) m[0].rm_so, me = pos + (size_t) m[0].rm_eo;
		/* Make the offsets absolute for expand_repl. */
		for (size_t g = 0; g <= RX_GROUPS_MAX; g++)
			if (m[g].rm_so >= 0) {
				m[g].rm_so += (regoff_t) pos;
				m[g].rm_eo += (regoff_t) pos;
			}
		if (ms == me && (ssize_t) ms == last_end) {
			/* An empty match right after the previous match is ignored. */
			if (ms >= len)
				break;
			k = tu_strbuf_add(&out, s + pos, ms - pos + 1);
			if (k < 0)
				goto fail;
			pos = ms + 1;
			continue;
		}
		any = true;
		k = tu_strbuf_add(&out, s + pos, ms - pos);
		if (k >= 0)
			k = expand_repl(r, repl, s, m, &out);
		if (k < 0)
			goto fail;
		last_end = (ssize_t) me;
		if (me == ms) {
			if (ms >= len) {
				pos = len + 1;
				break;
			}
			k = tu_strbuf_addc(&out, s[ms]);
			if (k < 0)
				goto fail;
			pos = ms + 1;
		} else {
			pos = me;
		}
	}
	if (pos < len) {
		k = tu_strbuf_add(&out, s + pos, len - pos);
		if (k < 0)
			goto fail;
	}
	*ret = tu_strbuf_steal(&out, NULL);
	if (!*ret)
		return -ENOMEM;
	*ret_matched = any;
	return 0;
fail:
	tu_strbuf_done(&out);
	if (k == -EMSGSIZE)
		return tu_err_set(reterr, k, "regexp.replace: result longer than %d bytes", RESULT_MAX);
	if (k == -ENOMEM)
		return tu_err_set(reterr, k, "regexp.replace: out of memory");
	return k;
}

/* ---- e-mail local part (a small subset of Go's net/mail.ParseAddress) ---- */

static int email_local(const char *in, char **ret, struct tu_err *reterr)
{
	const char *s = in, *e = in + strlen(in);
	while (s < e && is_space(*s))
		s++;
	while (e > s && is_space(e[-1]))
		e--;
	if (s == e)
		return tu_err_set(reterr, -EBADMSG, "email.local: empty address");
	if (e[-1] == '>') {
		const char *lt = e - 1;
		while (lt > s && *lt != '<')
			lt--;
		if (*lt != '<')
			return tu_err_set(reterr, -EBADMSG, "email.local: '%s' is not an address", in);
		s = lt + 1;
		e = e - 1;
	} else if (memchr(s, '<', (size_t) (e - s)) || memchr(s, '>', (size_t) (e - s))) {
		return tu_err_set(reterr, -EBADMSG, "email.local: '%s' is not an address", in);
	}
	const char *at = NULL;
	for (const char *p = s; p < e; p++) {
		if (*p == '@')
			at = p;
		if (is_space(*p) || (unsigned char) *p < 0x20)
			return tu_err_set(reterr, -EBADMSG, "email.local: '%s' is not an address", in);
	}
	if (!at)
		return tu_err_set(reterr, -EBADMSG, "email.local: missing @ in '%s'", in);
	if (at == s || at + 1 == e)
		return tu_err_set(reterr, -EBADMSG, "email.local: '%s' has an empty local part or domain", in);
	*ret = strndup(s, (size_t) (at - s));
	return *ret ? 0 : -ENOMEM;
}

/* ---- trait templates (lib/utils/parse) ---- */

static const char *const internal_traits[] = {
	"logins", "windows_logins", "kubernetes_groups", "kubernetes_users", "db_names", "db_users",
	"db_roles", "aws_role_arns", "azure_identities", "gcp_service_accounts", "jwt", "github_orgs",
};

struct tparse {
	const char *s;   /* expression text (not NUL-terminated at n) */
	size_t i, n;
	const struct tu_labels *traits;
	bool eval;       /* false: syntax check only */
	struct rx_cache *rx;
	struct tu_err *err;
	int depth;
};

static void tp_ws(struct tparse *p)
{
	while (p->i < p->n && is_space(p->s[p->i]))
		p->i++;
}

static bool is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int tp_ident(struct tparse *p, char *buf, size_t size)
{
	size_t s = p->i;
	if (p->i >= p->n || !is_ident_start(p->s[p->i]))
		return tu_err_set(p->err, -EBADMSG, "expected a name at offset %zu", p->i);
	while (p->i < p->n && is_ident_char(p->s[p->i]))
		p->i++;
	if (p->i - s >= size)
		return tu_err_set(p->err, -EBADMSG, "name too long at offset %zu", s);
	memcpy(buf, p->s + s, p->i - s);
	buf[p->i - s] = '\0';
	return 0;
}

/* A Go string literal: "..." with escapes, or `...`.  *ret malloc'ed. */
static int tp_string(struct tparse *p, char **ret)
{
	struct tu_strbuf b;
	char q;
	int k = 0;

	if (p->i >= p->n || (p->s[p->i] != '"' && p->s[p->i] != '`'))
		return tu_err_set(p->err, -EBADMSG, "expected a string literal at offset %zu", p->i);
	q = p->s[p->i++];
	tu_strbuf_init(&b, TEMPLATE_MAX);
	k = tu_strbuf_adds(&b, "");
	while (k >= 0) {
		if (p->i >= p->n) {
			k = tu_err_set(p->err, -EBADMSG, "unterminated string literal");
			break;
		}
		char c = p->s[p->i++];
		if (c == q)
			break;
		if (c == '\\' && q == '"') {
			if (p->i >= p->n) {
				k = tu_err_set(p->err, -EBADMSG, "unterminated string literal");
				break;
			}
			char e = p->s[p->i++];
			switch (e) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case '\\': case '"': case '\'': c = e; break;
			default:
				k = tu_err_set(p->err, -EBADMSG, "unsupported escape '\\%c' in string literal", e);
				continue;
			}
		} else if (c == '\n' && q == '"') {
			k = tu_err_set(p->err, -EBADMSG, "newline in string literal");
			break;
		}
		k = tu_strbuf_addc(&b, c);
	}
	if (k < 0) {
		tu_strbuf_done(&b);
		return k;
	}
	*ret = tu_strbuf_steal(&b, NULL);
	return *ret ? 0 : -ENOMEM;
}

/* Trait lookup: -ENOENT when missing (the template then yields nothing). */
static int tp_var(struct tparse *p, const char *ns, const char *name, struct tu_strv *out)
{
	if (strcmp(ns, "internal") == 0) {
		bool ok = false;
		for (size_t j = 0; j < ELEMENTSOF(internal_traits); j++)
			if (strcmp(internal_traits[j], name) == 0)
				ok = true;
		if (!ok)
			return tu_err_set(p->err, -EBADMSG, "unsupported variable 'internal.%s'", name);
	}
	/* "external" and, as Teleport's legacy parser does, any other namespace: a trait. */
	if (!p->eval)
		return 0;
	const struct tu_strv *v = labels_find(p->traits, name);
	if (!v || v->n == 0)
		return tu_err_set(p->err, -ENOENT, "trait '%s' not found", name);
	if (v->n > VALUES_MAX)
		return tu_err_set(p->err, -EMSGSIZE, "trait '%s' has more than %d values", name, VALUES_MAX);
	for (size_t j = 0; j < v->n; j++) {
		int k = strv_add(out, v->v[j]);
		if (k < 0)
			return k;
	}
	return 0;
}

/* Skips blanks, then requires the punctuation ch and steps over it; why names the rule. */
static int tp_punct(struct tparse *p, char ch, const char *why)
{
	tp_ws(p);
	if (p->i >= p->n || p->s[p->i] != ch)
		return tu_err_set(p->err, -EBADMSG, "%s", why);
	p->i++;
	return 0;
}

/* Skips blanks, then requires a string literal ("..." or `...`) and reads it. */
static int tp_literal(struct tparse *p, const char *why, char **ret)
{
	tp_ws(p);
	if (p->i >= p->n || (p->s[p->i] != '"' && p->s[p->i] != '`'))
		return tu_err_set(p->err, -EBADMSG, "%s", why);
	return tp_string(p, ret);
}

static int tp_expr(struct tparse *p, struct tu_strv *out);

static int tp_call(struct tparse *p, const char *ns, const char *fn, struct tu_strv *out)
{
	_cleanup_free_ char *re = NULL, *repl = NULL;
	struct tu_strv arg = { 0 };
	int k;

	p->i++; /* '(' */
	if (strcmp(ns, "email") == 0 && strcmp(fn, "local") == 0) {
		k = tp_expr(p, &arg);
		if (k < 0)
			goto out;
		k = tp_punct(p, ')', "email.local takes one argument");
		if (k < 0)
			goto out;
		for (size_t j = 0; p->eval && j < arg.n; j++) {
			char *local = NULL;
			k = email_local(arg.v[j], &local, p->err);
			if (k < 0)
				goto out;
			k = local[0] ? strv_add(out, local) : 0;
			free(local);
			if (k < 0)
				goto out;
		}
		k = 0;
		goto out;
	}
	if (strcmp(ns, "regexp") == 0 && strcmp(fn, "replace") == 0) {
		k = tp_expr(p, &arg);
		if (k >= 0)
			k = tp_punct(p, ',', "regexp.replace takes three arguments");
		if (k >= 0)
			k = tp_literal(p, "regexp.replace: the pattern must be a string literal", &re);
		if (k >= 0)
			k = tp_punct(p, ',', "regexp.replace takes three arguments");
		if (k >= 0)
			k = tp_literal(p, "regexp.replace: the replacement must be a string literal", &repl);
		if (k >= 0)
			k = tp_punct(p, ')', "regexp.replace takes three arguments");
		if (k < 0)
			goto out;
		struct rx_ref r;
		k = rx_acquire(p->rx, re, &r, p->err); /* also validates when !eval */
		if (k < 0)
			goto out;
		for (size_t j = 0; p->eval && j < arg.n; j++) {
			char *res = NULL;
			bool matched = false;
			k = rx_replace_all(r.rx, arg.v[j], repl, &res, &matched, p->err);
			if (k < 0)
				break;
			/* Non-matching inputs and empty results are dropped (parse.RegexpReplace). */
			if (matched && res[0])
				k = strv_add(out, res);
			free(res);
			if (k < 0)
				break;
		}
		rx_release(&r);
		if (k < 0)
			goto out;
		k = 0;
		goto out;
	}
	if (strcmp(ns, "regexp") == 0 && (strcmp(fn, "match") == 0 || strcmp(fn, "not_match") == 0))
		k = tu_err_set(p->err, -EBADMSG, "regexp.%s does not evaluate to a string", fn);
	else
		k = tu_err_set(p->err, -EBADMSG, "unsupported function '%s.%s'", ns, fn);
out:
	tu_strv_done(&arg);
	return k;
}

static int tp_expr(struct tparse *p, struct tu_strv *out)
{
	char ns[64], name[256];
	int k;

	if (++p->depth > EXPR_DEPTH_MAX)
		return tu_err_set(p->err, -EBADMSG, "expression nested too deeply");
	tp_ws(p);
	if (p->i < p->n && (p->s[p->i] == '"' || p->s[p->i] == '`')) {
		_cleanup_free_ char *lit = NULL;
		k = tp_string(p, &lit);
		if (k >= 0 && p->eval)
			k = strv_add(out, lit);
		p->depth--;
		return k;
	}
	k = tp_ident(p, ns, sizeof(ns));
	if (k < 0)
		return k;
	tp_ws(p);
	if (p->i < p->n && p->s[p->i] == '[') {
		_cleanup_free_ char *key = NULL;
		p->i++;
		tp_ws(p);
		k = tp_string(p, &key);
		if (k < 0)
			return k;
		tp_ws(p);
		if (p->i >= p->n || p->s[p->i] != ']')
			return tu_err_set(p->err, -EBADMSG, "expected ']' at offset %zu", p->i);
		p->i++;
		if (!key[0])
			return tu_err_set(p->err, -EBADMSG, "empty variable name in '%s[...]'", ns);
		k = tp_var(p, ns, key, out);
		p->depth--;
		return k;
	}
	if (p->i >= p->n || p->s[p->i] != '.')
		return tu_err_set(p->err, -EBADMSG, "expected '.' or '[' after '%s'", ns);
	p->i++;
	tp_ws(p);
	k = tp_ident(p, name, sizeof(name));
	if (k < 0)
		return k;
	tp_ws(p);
	if (p->i < p->n && p->s[p->i] == '(')
		k = tp_call(p, ns, name, out);
	else
		k = tp_var(p, ns, name, out);
	p->depth--;
	return k;
}

/* Splits "prefix{{expr}}suffix"; returns 1 when templated, 0 for a literal, -EBADMSG. */
static int split_template(const char *t, const char **ret_pre, size_t *ret_pre_len, const char **ret_expr,
			  size_t *ret_expr_len, const char **ret_suf, size_t *ret_suf_len, struct tu_err *reterr)
{
	const char *open = strstr(t, "{{");
	const char *close = open ? strstr(open + 2, "}}") : NULL;
	bool bad = false;

	if (!open || !close) {
		if (open || strstr(t, "}}"))
			return tu_err_set(reterr, -EBADMSG, "'%s' uses template brackets but does not parse, make sure the format is {{expression}}", t);
		return 0;
	}
	for (const char *c = t; c < open; c++)
		if (*c == '{' || *c == '}')
			bad = true;
	for (const char *c = open + 2; c < close; c++)
		if (*c == '{' || *c == '}')
			bad = true;
	for (const char *c = close + 2; *c; c++)
		if (*c == '{' || *c == '}')
			bad = true;
	if (bad)
		return tu_err_set(reterr, -EBADMSG, "'%s' uses template brackets but does not parse, make sure the format is {{expression}}", t);
	const char *ps = t, *se = close + 2 + strlen(close + 2);
	while (ps < open && is_space(*ps))
		ps++;
	while (se > close + 2 && is_space(se[-1]))
		se--;
	*ret_pre = ps;
	*ret_pre_len = (size_t) (open - ps);
	*ret_expr = open + 2;
	*ret_expr_len = (size_t) (close - open - 2);
	*ret_suf = close + 2;
	*ret_suf_len = (size_t) (se - (close + 2));
	return 1;
}

static int interpolate(struct rx_cache *rx, const char *tmpl, const struct tu_labels *traits, struct tu_strv *out,
		       struct tu_err *reterr)
{
	const char *pre = NULL, *expr = NULL, *suf = NULL;
	size_t pre_len = 0, expr_len = 0, suf_len = 0;
	struct tu_strv vals = { 0 };
	int k;

	if (!tmpl)
		return 0;
	if (strlen(tmpl) > TEMPLATE_MAX)
		return tu_err_set(reterr, -EBADMSG, "template longer than %d bytes", TEMPLATE_MAX);
	k = split_template(tmpl, &pre, &pre_len, &expr, &expr_len, &suf, &suf_len, reterr);
	if (k < 0)
		return k;
	if (k == 0)
		return tmpl[0] ? strv_add(out, tmpl) : 0;

	struct tparse p = { .s = expr, .n = expr_len, .traits = traits, .rx = rx, .err = reterr };
	for (int pass = 0; pass < 2; pass++) {
		p.i = 0;
		p.depth = 0;
		p.eval = pass == 1;
		k = tp_expr(&p, &vals);
		if (k >= 0) {
			tp_ws(&p);
			if (p.i != p.n)
				k = tu_err_set(reterr, -EBADMSG, "unexpected '%.*s' in '%s'", (int) (p.n - p.i), p.s + p.i, tmpl);
		}
		if (k < 0)
			break;
	}
	if (k == -ENOENT) {
		/* A missing trait contributes nothing (Teleport: NotFound, value skipped). */
		tu_err_clear(reterr);
		tu_strv_done(&vals);
		return 0;
	}
	if (k < 0) {
		tu_strv_done(&vals);
		return k;
	}
	for (size_t j = 0; j < vals.n && k >= 0; j++) {
		if (!vals.v[j][0])
			continue;
		size_t vl = strlen(vals.v[j]);
		char *s = malloc(pre_len + vl + suf_len + 1);
		if (!s) {
			k = -ENOMEM;
			break;
		}
		memcpy(s, pre, pre_len);
		memcpy(s + pre_len, vals.v[j], vl);
		memcpy(s + pre_len + vl, suf, suf_len);
		s[pre_len + vl + suf_len] = '\0';
		k = strv_add(out, s);
		free(s);
	}
	tu_strv_done(&vals);
	return k < 0 ? k : 0;
}

int tu_rbac_interpolate(const char *tmpl, const struct tu_labels *traits, struct tu_strv *out, struct tu_err *reterr)
{
	return interpolate(NULL, tmpl, traits, out, reterr);
}

static bool is_literal(const char *s)
{
	const char *b = strpbrk(s, "{}");
	if (!b)
		return true;
	return !strstr(b, "{{") && !strstr(b, "}}");
}

/* ---- login names ---- */

bool tu_rbac_valid_login(const char *login)
{
	size_t n;

	if (!login)
		return false;
	n = strlen(login);
	if (n < 1 || n > LOGIN_MAX || login[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) login[i];
		if (c <= 0x20 || c == 0x7f || c == ':' || c == '/')
			return false;
		/* Go's unicode.IsSpace / IsControl beyond ASCII, in UTF-8. */
		unsigned char c1 = i + 1 < n ? (unsigned char) login[i + 1] : 0;
		unsigned char c2 = i + 2 < n ? (unsigned char) login[i + 2] : 0;
		if (c == 0xc2 && c1 >= 0x80 && (c1 <= 0x9f || c1 == 0xa0))
			return false; /* U+0080..U+009F controls, U+0085, U+00A0 */
		if (c == 0xe1 && c1 == 0x9a && c2 == 0x80)
			return false; /* U+1680 */
		if (c == 0xe2 && c1 == 0x80 && ((c2 >= 0x80 && c2 <= 0x8a) || c2 == 0xa8 || c2 == 0xa9 || c2 == 0xaf))
			return false; /* U+2000..U+200A, U+2028, U+2029, U+202F */
		if (c == 0xe2 && c1 == 0x81 && c2 == 0x9f)
			return false; /* U+205F */
		if (c == 0xe3 && c1 == 0x80 && c2 == 0x80)
			return false; /* U+3000 */
	}
	return true;
}

/* ---- label matching ---- */

/* Interpolates one label key or value: failures become "" (matches only an empty label). */
static int interp_label(struct rx_cache *rx, const char *s, const struct tu_labels *traits, struct tu_strv *out,
			bool first_only)
{
	struct tu_strv v = { 0 };
	int k = interpolate(rx, s, traits, &v, NULL);
	if (k == -ENOMEM) {
		tu_strv_done(&v);
		return k;
	}
	if (k < 0 || v.n == 0)
		k = strv_add(out, "");
	else if (first_only)
		k = strv_add(out, v.v[0]);
	else
		for (size_t j = 0; j < v.n && k >= 0; j++)
			k = strv_add(out, v.v[j]);
	tu_strv_done(&v);
	return k;
}

/* MatchLabelGetter on one selector; *ret_why names the failing key. */
static int match_labels(struct rx_cache *rx, const struct tu_labels *sel, const struct tu_labels *traits,
			const struct tu_labels *host, bool *ret, struct tu_err *reterr)
{
	int k = 0;

	if (sel->n == 0) {
		*ret = false;
		return 0;
	}
	const struct tu_strv *w = labels_find(sel, "*");
	if (w && w->n == 1 && w->v[0] && strcmp(w->v[0], "*") == 0) {
		*ret = true;
		return 0;
	}
	for (size_t i = 0; i < sel->n; i++) {
		const struct tu_kv *e = &sel->e[i];
		const char *key = e->key ? e->key : "";
		struct tu_strv kv = { 0 }, vals = { 0 };
		const struct tu_strv *hv;
		bool any = false, wildcard = false;

		if (!is_literal(key)) {
			k = interp_label(rx, key, traits, &kv, true);
			if (k < 0)
				return k;
			key = kv.v[0];
		}
		hv = labels_find(host, key);
		if (!hv) {
			tu_strv_done(&kv);
			*ret = false;
			return 0;
		}
		const char *hval = hv->n > 0 && hv->v[0] ? hv->v[0] : "";
		/* Any "*" among the values: the key existing is enough. */
		for (size_t j = 0; j < e->values.n && !wildcard; j++)
			if (e->values.v[j] && strcmp(e->values.v[j], "*") == 0)
				wildcard = true;
		/* Like utils.SliceMatchesRegex: first error or first match wins, in order. */
		for (size_t j = 0; !wildcard && j < e->values.n && !any && k >= 0; j++) {
			const char *pat = e->values.v[j] ? e->values.v[j] : "";
			if (is_literal(pat)) {
				k = match_value(rx, pat, hval, &any, reterr);
				continue;
			}
			k = interp_label(rx, pat, traits, &vals, false);
			for (size_t x = 0; k >= 0 && x < vals.n && !wildcard && !any; x++) {
				if (strcmp(vals.v[x], "*") == 0)
					wildcard = true;
				else
					k = match_value(rx, vals.v[x], hval, &any, reterr);
			}
			tu_strv_done(&vals);
		}
		tu_strv_done(&kv);
		tu_strv_done(&vals);
		if (k < 0)
			return k;
		if (!wildcard && !any) {
			*ret = false;
			return 0;
		}
	}
	*ret = true;
	return 0;
}

/* ---- node_labels_expression (a subset of Teleport's predicate language) ---- */

enum ev_type { EV_BOOL, EV_STR, EV_LIST };

struct ev {
	enum ev_type t;
	bool b;
	char *s;
	struct tu_strv l;
};

static void ev_done(struct ev *v)
{
	free(v->s);
	v->s = NULL;
	tu_strv_done(&v->l);
}

struct eparse {
	const char *s;
	size_t i, n;
	const struct tu_labels *traits;
	const struct tu_labels *host;
	struct rx_cache *rx;
	struct tu_err *err;
	int depth;
};

static void ep_ws(struct eparse *p)
{
	while (p->i < p->n && is_space(p->s[p->i]))
		p->i++;
}

static bool ep_eat(struct eparse *p, const char *tok)
{
	size_t l = strlen(tok);
	ep_ws(p);
	if (p->n - p->i >= l && memcmp(p->s + p->i, tok, l) == 0) {
		p->i += l;
		return true;
	}
	return false;
}

/* Reuses the template string-literal reader. */
static int ep_string(struct eparse *p, char **ret)
{
	struct tparse tp = { .s = p->s, .i = p->i, .n = p->n, .err = p->err };
	int k = tp_string(&tp, ret);
	p->i = tp.i;
	return k;
}

static int ep_or(struct eparse *p, struct ev *out);

/*
 * Arguments are typed as in Teleport's parser (typical): functions taking a
 * list do not take a string (labels["k"] is a string), and a type error
 * fails the expression, which fails closed.
 */
static int ev_as_list(struct ev *v, struct tu_err *err, const char *fn)
{
	if (v->t == EV_LIST)
		return 0;
	return tu_err_set(err, -EBADMSG, "%s: expected a list", fn);
}

static int ep_args(struct eparse *p, struct ev *args, size_t max, size_t *ret_n, const char *fn)
{
	size_t n = 0;
	int k;

	ep_ws(p);
	if (ep_eat(p, ")")) {
		*ret_n = 0;
		return 0;
	}
	for (;;) {
		if (n >= max)
			return tu_err_set(p->err, -EBADMSG, "%s: too many arguments", fn);
		k = ep_or(p, &args[n]);
		if (k < 0)
			return k;
		n++;
		*ret_n = n;
		if (ep_eat(p, ","))
			continue;
		if (ep_eat(p, ")"))
			return 0;
		return tu_err_set(p->err, -EBADMSG, "%s: expected ',' or ')' at offset %zu", fn, p->i);
	}
}

static int ep_call(struct eparse *p, const char *fn, struct ev *out)
{
	struct ev a[3] = { 0 };
	size_t n = 0;
	int k;

	k = ep_args(p, a, 3, &n, fn);
	if (k < 0)
		goto out;
	if (strcmp(fn, "contains") == 0 || strcmp(fn, "contains_any") == 0 || strcmp(fn, "contains_all") == 0) {
		if (n != 2) {
			k = tu_err_set(p->err, -EBADMSG, "%s takes two arguments", fn);
			goto out;
		}
		k = ev_as_list(&a[0], p->err, fn);
		if (k < 0)
			goto out;
		out->t = EV_BOOL;
		if (strcmp(fn, "contains") == 0) {
			if (a[1].t != EV_STR) {
				k = tu_err_set(p->err, -EBADMSG, "contains: second argument must be a string");
				goto out;
			}
			out->b = strv_has(&a[0].l, a[1].s);
		} else if ((k = ev_as_list(&a[1], p->err, fn)) < 0) {
			goto out;
		} else if (strcmp(fn, "contains_any") == 0) {
			out->b = false;
			for (size_t j = 0; j < a[1].l.n; j++)
				if (strv_has(&a[0].l, a[1].l.v[j]))
					out->b = true;
		} else {
			out->b = a[1].l.n > 0;
			for (size_t j = 0; j < a[1].l.n; j++)
				if (!strv_has(&a[0].l, a[1].l.v[j]))
					out->b = false;
		}
		k = 0;
	} else if (strcmp(fn, "regexp.match") == 0) {
		if (n != 2 || a[1].t != EV_STR) {
			k = tu_err_set(p->err, -EBADMSG, "regexp.match takes a list and a pattern string");
			goto out;
		}
		k = ev_as_list(&a[0], p->err, fn);
		if (k < 0)
			goto out;
		out->t = EV_BOOL;
		out->b = false;
		for (size_t j = 0; j < a[0].l.n && !out->b; j++) {
			k = match_value(p->rx, a[1].s, a[0].l.v[j], &out->b, p->err);
			if (k < 0)
				goto out;
		}
	} else if (strcmp(fn, "email.local") == 0 || strcmp(fn, "strings.upper") == 0 ||
		   strcmp(fn, "strings.lower") == 0 || strcmp(fn, "regexp.replace") == 0) {
		bool repl = strcmp(fn, "regexp.replace") == 0;
		if (n != (repl ? 3u : 1u) || (repl && (a[1].t != EV_STR || a[2].t != EV_STR))) {
			k = tu_err_set(p->err, -EBADMSG, "%s: wrong arguments", fn);
			goto out;
		}
		k = ev_as_list(&a[0], p->err, fn);
		if (k < 0)
			goto out;
		struct rx_ref r = { 0 };
		if (repl) {
			k = rx_acquire(p->rx, a[1].s, &r, p->err);
			if (k < 0)
				goto out;
		}
		out->t = EV_LIST;
		for (size_t j = 0; j < a[0].l.n && k >= 0; j++) {
			char *res = NULL;
			bool matched = true;
			if (repl) {
				k = rx_replace_all(r.rx, a[0].l.v[j], a[2].s, &res, &matched, p->err);
			} else if (fn[0] == 'e') {
				k = email_local(a[0].l.v[j], &res, p->err);
			} else {
				res = strdup(a[0].l.v[j]);
				k = res ? 0 : -ENOMEM;
				for (char *c = res; k >= 0 && *c; c++)
					if (fn[8] == 'u' && *c >= 'a' && *c <= 'z')
						*c = (char) (*c - 'a' + 'A');
					else if (fn[8] == 'l' && *c >= 'A' && *c <= 'Z')
						*c = (char) (*c - 'A' + 'a');
			}
			if (k >= 0 && matched)
				k = strv_add(&out->l, res);
			free(res);
		}
		if (repl)
			rx_release(&r);
	} else if (strcmp(fn, "labels_matching") == 0) {
		if (n != 1 || a[0].t != EV_STR) {
			k = tu_err_set(p->err, -EBADMSG, "labels_matching takes one pattern string");
			goto out;
		}
		out->t = EV_LIST;
		for (size_t j = 0; p->host && j < p->host->n && k >= 0; j++) {
			bool m = false;
			k = match_value(p->rx, a[0].s, p->host->e[j].key ? p->host->e[j].key : "", &m, p->err);
			if (k >= 0 && m && p->host->e[j].values.n > 0)
				k = strv_add(&out->l, p->host->e[j].values.v[0]);
		}
	} else {
		k = tu_err_set(p->err, -EOPNOTSUPP, "function '%s' is not supported", fn);
	}
out:
	for (size_t j = 0; j < 3; j++)
		ev_done(&a[j]);
	return k;
}

static int ep_primary(struct eparse *p, struct ev *out)
{
	char name[64], path[160];
	int k;

	ep_ws(p);
	if (p->i >= p->n)
		return tu_err_set(p->err, -EBADMSG, "unexpected end of expression");
	if (p->s[p->i] == '(') {
		p->i++;
		k = ep_or(p, out);
		if (k < 0)
			return k;
		if (!ep_eat(p, ")"))
			return tu_err_set(p->err, -EBADMSG, "expected ')' at offset %zu", p->i);
		return 0;
	}
	if (p->s[p->i] == '"' || p->s[p->i] == '`') {
		out->t = EV_STR;
		return ep_string(p, &out->s);
	}
	/* A dotted path: labels, user.spec.traits, a function name, true/false. */
	struct tparse tp = { .s = p->s, .i = p->i, .n = p->n, .err = p->err };
	k = tp_ident(&tp, name, sizeof(name));
	if (k < 0)
		return k;
	p->i = tp.i;
	snprintf(path, sizeof(path), "%s", name);
	for (;;) {
		size_t save = p->i;
		ep_ws(p);
		if (p->i < p->n && p->s[p->i] == '.' && !(strcmp(path, "labels") == 0) &&
		    !(strcmp(path, "user.spec.traits") == 0)) {
			p->i++;
			tp.i = p->i;
			k = tp_ident(&tp, name, sizeof(name));
			if (k < 0)
				return k;
			p->i = tp.i;
			if (strlen(path) + strlen(name) + 2 > sizeof(path))
				return tu_err_set(p->err, -EBADMSG, "name too long");
			strcat(path, ".");
			strcat(path, name);
			continue;
		}
		p->i = save;
		break;
	}
	ep_ws(p);
	if (p->i < p->n && p->s[p->i] == '(')
		return p->i++, ep_call(p, path, out);
	if (strcmp(path, "true") == 0 || strcmp(path, "false") == 0) {
		out->t = EV_BOOL;
		out->b = path[0] == 't';
		return 0;
	}
	if (strcmp(path, "labels") == 0 || strcmp(path, "user.spec.traits") == 0) {
		_cleanup_free_ char *key = NULL;
		if (ep_eat(p, "[")) {
			ep_ws(p);
			k = ep_string(p, &key);
			if (k < 0)
				return k;
			if (!ep_eat(p, "]"))
				return tu_err_set(p->err, -EBADMSG, "expected ']' at offset %zu", p->i);
		} else if (ep_eat(p, ".")) {
			tp.i = p->i;
			k = tp_ident(&tp, name, sizeof(name));
			if (k < 0)
				return k;
			p->i = tp.i;
			key = strdup(name);
			if (!key)
				return -ENOMEM;
		} else {
			return tu_err_set(p->err, -EOPNOTSUPP, "'%s' without a key is not supported", path);
		}
		if (path[0] == 'l') {
			const struct tu_strv *v = labels_find(p->host, key);
			out->t = EV_STR;
			out->s = strdup(v && v->n > 0 && v->v[0] ? v->v[0] : "");
			return out->s ? 0 : -ENOMEM;
		}
		const struct tu_strv *v = labels_find(p->traits, key);
		out->t = EV_LIST;
		for (size_t j = 0; v && j < v->n; j++) {
			k = strv_add(&out->l, v->v[j]);
			if (k < 0)
				return k;
		}
		return 0;
	}
	return tu_err_set(p->err, -EOPNOTSUPP, "'%s' is not supported", path);
}

static int ep_cmp(struct eparse *p, struct ev *out)
{
	struct ev r = { 0 };
	bool neq;
	int k = ep_primary(p, out);
	if (k < 0)
		return k;
	ep_ws(p);
	if (ep_eat(p, "=="))
		neq = false;
	else if (ep_eat(p, "!="))
		neq = true;
	else
		return 0;
	k = ep_primary(p, &r);
	if (k >= 0) {
		if (out->t == EV_STR && r.t == EV_STR) {
			bool eq = strcmp(out->s, r.s) == 0;
			ev_done(out);
			out->t = EV_BOOL;
			out->b = neq ? !eq : eq;
		} else if (out->t == EV_BOOL && r.t == EV_BOOL) {
			out->b = neq ? out->b != r.b : out->b == r.b;
		} else {
			k = tu_err_set(p->err, -EOPNOTSUPP, "comparing lists is not supported");
		}
	}
	ev_done(&r);
	return k;
}

static int ep_unary(struct eparse *p, struct ev *out)
{
	int k;
	if (++p->depth > EXPR_DEPTH_MAX)
		return tu_err_set(p->err, -EBADMSG, "expression nested too deeply");
	ep_ws(p);
	if (p->i < p->n && p->s[p->i] == '!' && !(p->i + 1 < p->n && p->s[p->i + 1] == '=')) {
		p->i++;
		k = ep_unary(p, out);
		if (k >= 0 && out->t != EV_BOOL)
			k = tu_err_set(p->err, -EBADMSG, "'!' needs a boolean");
		if (k >= 0)
			out->b = !out->b;
	} else {
		k = ep_cmp(p, out);
	}
	p->depth--;
	return k;
}

static int ep_binary(struct eparse *p, struct ev *out, bool is_or)
{
	int k = is_or ? ep_binary(p, out, false) : ep_unary(p, out);
	if (k < 0)
		return k;
	for (;;) {
		struct ev r = { 0 };
		if (!ep_eat(p, is_or ? "||" : "&&"))
			return 0;
		k = is_or ? ep_binary(p, &r, false) : ep_unary(p, &r);
		if (k >= 0 && (out->t != EV_BOOL || r.t != EV_BOOL))
			k = tu_err_set(p->err, -EBADMSG, "'%s' needs booleans", is_or ? "||" : "&&");
		if (k >= 0)
			out->b = is_or ? (out->b || r.b) : (out->b && r.b);
		ev_done(&r);
		if (k < 0)
			return k;
	}
}

static int ep_or(struct eparse *p, struct ev *out)
{
	int k;
	if (++p->depth > EXPR_DEPTH_MAX)
		return tu_err_set(p->err, -EBADMSG, "expression nested too deeply");
	k = ep_binary(p, out, true);
	p->depth--;
	return k;
}

/* Evaluates expr: -EBADMSG (malformed), -EOPNOTSUPP (beyond our subset). */
static int eval_expression(struct rx_cache *rx, const char *expr, const struct tu_labels *traits,
			   const struct tu_labels *host, bool *ret, struct tu_err *reterr)
{
	struct ev v = { 0 };
	struct eparse p = { .s = expr, .n = strlen(expr), .traits = traits, .host = host, .rx = rx, .err = reterr };
	int k;

	if (p.n > TEMPLATE_MAX)
		return tu_err_set(reterr, -EBADMSG, "expression longer than %d bytes", TEMPLATE_MAX);
	k = ep_or(&p, &v);
	if (k >= 0) {
		ep_ws(&p);
		if (p.i != p.n)
			k = tu_err_set(reterr, -EBADMSG, "unexpected text at offset %zu", p.i);
		else if (v.t != EV_BOOL)
			k = tu_err_set(reterr, -EBADMSG, "expression does not evaluate to a boolean");
	}
	if (k >= 0)
		*ret = v.b;
	ev_done(&v);
	return k;
}

/* ---- roles against the host ---- */

static const struct tu_labels wildcard_labels = {
	.e = (struct tu_kv[]){ { .key = (char *) "*", .values = { .v = (char *[]){ (char *) "*", NULL }, .n = 1 } } },
	.n = 1,
};

static int role_matches_host(struct rx_cache *rx, const struct tu_role *role, bool deny, const struct tu_user *u,
			     const struct tu_host *h, bool *ret_match, const char **ret_why, struct tu_err *reterr)
{
	const struct tu_role_cond *c = deny ? &role->deny : &role->allow;
	const struct tu_labels *sel = &c->node_labels;
	const struct tu_labels *traits = u ? &u->traits : NULL;
	const char *expr = c->node_labels_expression && c->node_labels_expression[0] ? c->node_labels_expression : NULL;
	bool lm = false, em = false;
	int k;

	/*
	 * v3 default (api/types/role.go): allow.node_labels unset -> {*: [*]}
	 * when allow.logins is non-empty.  The wire cannot tell unset from {},
	 * but Teleport's own nodes re-apply this default when their cache
	 * reads a role back, so a v3 role with logins and no labels grants
	 * every node there too.
	 */
	if (!deny && sel->n == 0 && role->version && strcmp(role->version, "v3") == 0 && c->logins.n > 0)
		sel = &wildcard_labels;

	if (ret_why)
		*ret_why = NULL;
	if (!deny && sel->n == 0 && !expr) {
		*ret_match = false;
		return 0;
	}
	if (sel->n > 0) {
		k = match_labels(rx, sel, traits, h ? h->labels : NULL, &lm, reterr);
		if (k < 0)
			return k;
		if (deny && lm) {
			*ret_match = true;
			return 0;
		}
		if (!deny && !lm) {
			*ret_match = false;
			return 0;
		}
	}
	if (!expr) {
		*ret_match = !deny && lm;
		return 0;
	}
	k = eval_expression(rx, expr, traits, h ? h->labels : NULL, &em, reterr);
	if (k == -EOPNOTSUPP || k == -EBADMSG) {
		/* Fail closed: no allow, and a deny that applies. */
		if (ret_why)
			*ret_why = deny ? "node_labels_expression could not be evaluated, treated as matching (deny)"
					: "node_labels_expression could not be evaluated, treated as not matching (allow)";
		*ret_match = deny;
		return 0;
	}
	if (k < 0)
		return k;
	*ret_match = em;
	return 0;
}

int tu_rbac_role_matches_host(const struct tu_role *role, bool deny, const struct tu_user *u, const struct tu_host *h,
			      bool *ret_match, const char **ret_why, struct tu_err *reterr)
{
	bool m = false;
	const char *why = NULL;
	int k = role_matches_host(NULL, role, deny, u, h, &m, &why, reterr);
	if (k < 0)
		return k;
	*ret_match = m;
	if (ret_why)
		*ret_why = why;
	return 0;
}

/*
 * Whether a role's labels match with errors folded in, fail-closed: an
 * error in allow is "no match", in deny "match".  *why set for the reason.
 */
static int role_matches_safe(struct rx_cache *rx, const struct tu_role *role, bool deny, const struct tu_user *u,
			     const struct tu_host *h, bool *ret, char *why, size_t why_size)
{
	struct tu_err e = { 0 };
	const char *w = NULL;
	int k = role_matches_host(rx, role, deny, u, h, ret, &w, &e);
	if (k == -ENOMEM)
		return k;
	if (k < 0) {
		*ret = deny;
		if (why)
			snprintf(why, why_size, "%s", e.msg[0] ? e.msg : "invalid node_labels");
		return 0;
	}
	if (why && w)
		snprintf(why, why_size, "%s", w);
	else if (why)
		why[0] = '\0';
	return 0;
}

/* Appends the interpolated, valid logins of one condition (duplicates possible). */
static int cond_logins(struct rx_cache *rx, const struct tu_role_cond *c, const struct tu_user *u, struct tu_strv *out)
{
	for (size_t j = 0; j < c->logins.n; j++) {
		struct tu_strv v = { 0 };
		const char *t = c->logins.v[j];
		int k;
		if (!t)
			continue;
		if (is_literal(t)) {
			if (tu_rbac_valid_login(t) && (k = strv_add(out, t)) < 0)
				return k;
			continue;
		}
		k = interpolate(rx, t, u ? &u->traits : NULL, &v, NULL);
		if (k == -ENOMEM) {
			tu_strv_done(&v);
			return k;
		}
		for (size_t x = 0; k >= 0 && x < v.n; x++)
			if (tu_rbac_valid_login(v.v[x]))
				k = strv_add(out, v.v[x]);
		tu_strv_done(&v);
		if (k == -ENOMEM)
			return k;
	}
	return 0;
}

/*
 * Whether the condition's logins hold login after interpolation.  Allow
 * lists only count valid Unix names (Teleport filters them); deny lists are
 * compared as they are.
 */
static int cond_has_login(struct rx_cache *rx, const struct tu_role_cond *c, const struct tu_user *u, const char *login,
			  bool *ret)
{
	*ret = false;
	if (c == NULL)
		return 0;
	for (size_t j = 0; j < c->logins.n && !*ret; j++) {
		const char *t = c->logins.v[j];
		if (!t)
			continue;
		if (is_literal(t)) {
			if (strcmp(t, login) == 0)
				*ret = true;
			continue;
		}
		struct tu_strv v = { 0 };
		int k = interpolate(rx, t, u ? &u->traits : NULL, &v, NULL);
		if (k == -ENOMEM) {
			tu_strv_done(&v);
			return k;
		}
		if (k >= 0 && strv_has(&v, login))
			*ret = true;
		tu_strv_done(&v);
	}
	return 0;
}

/* ---- the role set of a user ---- */

/* Per-role data the index precomputes: the valid literal allow logins, sorted. */
struct role_info {
	const struct tu_role *r;
	const char **lit;     /* borrowed from r */
	size_t n_lit;
	bool tmpl;            /* some allow login is a template */
};

struct roleset {
	const struct tu_role **r;
	const struct role_info **info; /* parallel to r; NULL without an index */
	size_t n;
	const char *missing;           /* the first of the user's roles not in the data, or NULL */
};

struct tu_rbac_index {
	const struct tu_dataset *d;
	struct role_info *roles;      /* sorted by name */
	const struct tu_user **users; /* sorted by name */
	struct rx_cache rx;
};

static int cmp_role(const void *a, const void *b)
{
	const struct role_info *x = a, *y = b;
	return strcmp(x->r->name ? x->r->name : "", y->r->name ? y->r->name : "");
}

static int cmp_user(const void *a, const void *b)
{
	const struct tu_user *x = *(const struct tu_user *const *) a, *y = *(const struct tu_user *const *) b;
	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

int tu_rbac_index_new(const struct tu_dataset *d, struct tu_rbac_index **ret, struct tu_err *reterr)
{
	struct tu_rbac_index *ix = calloc(1, sizeof(*ix));
	if (!ix)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	ix->d = d;
	ix->roles = calloc(d->n_roles + 1, sizeof(*ix->roles));
	ix->users = calloc(d->n_users + 1, sizeof(*ix->users));
	if (!ix->roles || !ix->users) {
		free(ix->roles);
		free(ix->users);
		free(ix);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < d->n_roles; i++) {
		struct role_info *ri = &ix->roles[i];
		const struct tu_strv *l = &d->roles[i].allow.logins;
		ri->r = &d->roles[i];
		ri->lit = calloc(l->n + 1, sizeof(char *));
		if (!ri->lit) {
			ix->d = d;
			rx_cache_init(&ix->rx);
			tu_rbac_index_free(ix);
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		for (size_t j = 0; j < l->n; j++) {
			if (!l->v[j])
				continue;
			if (!is_literal(l->v[j]))
				ri->tmpl = true;
			else if (tu_rbac_valid_login(l->v[j]))
				ri->lit[ri->n_lit++] = l->v[j];
		}
		qsort(ri->lit, ri->n_lit, sizeof(char *), cmp_strp);
	}
	for (size_t i = 0; i < d->n_users; i++)
		ix->users[i] = &d->users[i];
	qsort(ix->roles, d->n_roles, sizeof(*ix->roles), cmp_role);
	qsort(ix->users, d->n_users, sizeof(*ix->users), cmp_user);
	rx_cache_init(&ix->rx);
	*ret = ix;
	return 0;
}

struct tu_rbac_index *tu_rbac_index_free(struct tu_rbac_index *ix)
{
	if (!ix)
		return NULL;
	rx_cache_done(&ix->rx);
	for (size_t i = 0; ix->roles && i < ix->d->n_roles; i++)
		free(ix->roles[i].lit);
	free(ix->roles);
	free(ix->users);
	free(ix);
	return NULL;
}

const struct tu_dataset *tu_rbac_index_dataset(const struct tu_rbac_index *ix)
{
	return ix->d;
}

static const struct role_info *index_role(const struct tu_rbac_index *ix, const char *name)
{
	size_t lo = 0, hi = ix->d->n_roles;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->roles[mid].r->name ? ix->roles[mid].r->name : "", name);
		if (c == 0)
			return &ix->roles[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct tu_role *tu_rbac_index_role(const struct tu_rbac_index *ix, const char *name)
{
	const struct role_info *ri = index_role(ix, name);
	return ri ? ri->r : NULL;
}

const struct tu_user *tu_rbac_index_user(const struct tu_rbac_index *ix, const char *name)
{
	size_t lo = 0, hi = ix->d->n_users;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->users[mid]->name ? ix->users[mid]->name : "", name);
		if (c == 0)
			return ix->users[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct tu_role *find_role_linear(const struct tu_dataset *d, const char *name)
{
	for (size_t i = 0; i < d->n_roles; i++)
		if (d->roles[i].name && strcmp(d->roles[i].name, name) == 0)
			return &d->roles[i];
	return NULL;
}

/*
 * The user's roles present in the dataset, in the user's order, without
 * duplicates.  A role that is not there (it does not exist, or its record
 * could not be used) is noted in ret->missing: Teleport's FetchRoles fails
 * when any role of the user cannot be fetched, and the login with it.
 */
static int roleset_build(const struct tu_dataset *d, const struct tu_rbac_index *ix, const struct tu_user *u,
			 struct roleset *ret)
{
	ret->n = 0;
	ret->missing = NULL;
	ret->r = calloc(u->roles.n + 1, sizeof(*ret->r));
	ret->info = ix ? calloc(u->roles.n + 1, sizeof(*ret->info)) : NULL;
	if (!ret->r || (ix && !ret->info)) {
		free(ret->r);
		free(ret->info);
		ret->r = NULL; /* callers free both again on every path */
		ret->info = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < u->roles.n; i++) {
		const char *name = u->roles.v[i];
		const struct role_info *ri = NULL;
		const struct tu_role *r;
		bool dup = false;
		if (!name)
			continue;
		if (ix) {
			ri = index_role(ix, name);
			r = ri ? ri->r : NULL;
		} else {
			r = find_role_linear(d, name);
		}
		if (!r || r->unusable) {
			if (!ret->missing)
				ret->missing = name;
			continue;
		}
		for (size_t j = 0; j < ret->n; j++)
			if (ret->r[j] == r)
				dup = true;
		if (dup)
			continue;
		if (ix)
			ret->info[ret->n] = ri;
		ret->r[ret->n++] = r;
	}
	return 0;
}

/* ---- the decisions ---- */

static void access_set(struct tu_access *a, bool allowed, const char *role, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void access_set(struct tu_access *a, bool allowed, const char *role, const char *fmt, ...)
{
	va_list ap;
	a->allowed = allowed;
	snprintf(a->role, sizeof(a->role), "%s", role ? role : "");
	va_start(ap, fmt);
	vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
	va_end(ap);
}

static int check_login(struct rx_cache *rx, const struct roleset *rs, const struct tu_user *u, const char *login,
		       const struct tu_host *h, struct tu_access *ret)
{
	char why[TU_ERR_MSG_MAX];
	char slogin[128];
	int k;

	tu_sanitize(login, slogin, sizeof(slogin));
	if (rs->missing) {
		char srole[128];
		tu_sanitize(rs->missing, srole, sizeof(srole));
		access_set(ret, false, rs->missing,
			   "role '%s' does not exist or cannot be used (Teleport refuses every login of a user whose roles cannot all be fetched)",
			   srole);
		return 0;
	}
	/* Deny pass: any role whose deny labels match, or whose deny logins hold login. */
	for (size_t i = 0; i < rs->n; i++) {
		const struct tu_role *r = rs->r[i];
		bool m = false;
		k = role_matches_safe(rx, r, true, u, h, &m, why, sizeof(why));
		if (k < 0)
			return k;
		if (m) {
			if (why[0])
				access_set(ret, false, r->name, "denied by role '%s' (deny node_labels: %s)", r->name, why);
			else
				access_set(ret, false, r->name, "denied by role '%s' (deny node_labels match this host)", r->name);
			return 0;
		}
		k = cond_has_login(rx, &r->deny, u, login, &m);
		if (k < 0)
			return k;
		if (m) {
			access_set(ret, false, r->name, "denied by role '%s' (deny logins '%s')", r->name, slogin);
			return 0;
		}
	}
	/* Allow pass. */
	const char *last_why_role = NULL;
	char last_why[TU_ERR_MSG_MAX] = "";
	for (size_t i = 0; i < rs->n; i++) {
		const struct tu_role *r = rs->r[i];
		bool m = false;
		k = role_matches_safe(rx, r, false, u, h, &m, why, sizeof(why));
		if (k < 0)
			return k;
		if (m) {
			m = false;
		} else {
			if (why[0]) {
				last_why_role = r->name;
				snprintf(last_why, sizeof(last_why), "%s", why);
			}
			continue;
		}
		if (!tu_rbac_valid_login(login)) {
			k = 0;
		} else if (rs->info) {
			m = bsearch(&login, rs->info[i]->lit, rs->info[i]->n_lit, sizeof(char *), cmp_strp) != NULL;
			k = !m && rs->info[i]->tmpl ? cond_has_login(rx, &r->allow, u, login, &m) : 0;
		} else {
			k = cond_has_login(rx, &r->allow, u, login, &m);
		}
		if (k < 0)
			return k;
		if (m) {
			access_set(ret, true, r->name, "allowed by role '%s' (logins '%s')", r->name, slogin);
			return 0;
		}
	}
	if (last_why_role)
		access_set(ret, false, "", "no role allows login '%s' on this host (role '%s': %s)", slogin,
			   last_why_role, last_why);
	else
		access_set(ret, false, "", "no role allows login '%s' on this host", slogin);
	return 0;
}

static int check_login_common(const struct tu_dataset *d, const struct tu_rbac_index *ix, struct rx_cache *rx,
			      const struct tu_user *u, const char *login, const struct tu_host *h,
			      struct tu_access *ret, struct tu_err *reterr)
{
	struct roleset rs = { 0 };
	struct tu_access a = { 0 };
	int k;

	if (!u || !login) {
		access_set(ret, false, "", "no user or login");
		return tu_err_set(reterr, -EINVAL, "no user or login");
	}
	k = roleset_build(d, ix, u, &rs);
	if (k >= 0)
		k = check_login(rx, &rs, u, login, h, &a);
	free(rs.r);
	free(rs.info);
	if (k < 0) {
		access_set(ret, false, "", "internal error: %s", strerror(-k));
		return tu_err_set(reterr, k, "checking login: %s", strerror(-k));
	}
	*ret = a;
	return 0;
}

int tu_rbac_check_login(const struct tu_dataset *d, const struct tu_user *u, const char *login, const struct tu_host *h,
			struct tu_access *ret, struct tu_err *reterr)
{
	struct rx_cache rx;
	int k;
	rx_cache_init(&rx);
	k = check_login_common(d, NULL, &rx, u, login, h, ret, reterr);
	rx_cache_done(&rx);
	return k;
}

int tu_rbac_check_login_ix(const struct tu_rbac_index *ix, const struct tu_user *u, const char *login,
			   const struct tu_host *h, struct tu_access *ret, struct tu_err *reterr)
{
	return check_login_common(ix->d, ix, (struct rx_cache *) &ix->rx, u, login, h, ret, reterr);
}

static int user_logins(const struct tu_dataset *d, const struct tu_rbac_index *ix, struct rx_cache *rx,
		       const struct tu_user *u, const struct tu_host *h, struct tu_strv *ret, struct tu_err *reterr)
{
	struct roleset rs = { 0 };
	struct tu_strv allow = { 0 }, deny = { 0 };
	bool denied_all = false;
	int k;

	k = roleset_build(d, ix, u, &rs);
	if (rs.missing)
		denied_all = true; /* a role that cannot be fetched: no login at all */
	for (size_t i = 0; k >= 0 && i < rs.n && !denied_all; i++) {
		bool m = false;
		k = role_matches_safe(rx, rs.r[i], true, u, h, &m, NULL, 0);
		if (k >= 0 && m)
			denied_all = true;
		else if (k >= 0)
			for (size_t j = 0; j < rs.r[i]->deny.logins.n && k >= 0; j++) {
				const char *t = rs.r[i]->deny.logins.v[j];
				if (!t)
					continue;
				k = is_literal(t) ? strv_add(&deny, t) : interpolate(rx, t, &u->traits, &deny, NULL);
				if (k < 0 && k != -ENOMEM)
					k = 0;
			}
	}
	for (size_t i = 0; k >= 0 && !denied_all && i < rs.n; i++) {
		bool m = false;
		k = role_matches_safe(rx, rs.r[i], false, u, h, &m, NULL, 0);
		if (k >= 0 && m)
			k = cond_logins(rx, &rs.r[i]->allow, u, &allow);
	}
	free(rs.r);
	free(rs.info);
	if (k < 0) {
		tu_strv_done(&allow);
		tu_strv_done(&deny);
		return tu_err_set(reterr, k, "computing logins: %s", strerror(-k));
	}
	/* allow minus deny */
	size_t w = 0;
	strv_sort_uniq(&deny);
	for (size_t i = 0; i < allow.n; i++) {
		if (deny.n > 0 && bsearch(&allow.v[i], deny.v, deny.n, sizeof(char *), cmp_strp)) {
			free(allow.v[i]);
			continue;
		}
		allow.v[w++] = allow.v[i];
	}
	allow.n = w;
	if (allow.v)
		allow.v[w] = NULL;
	strv_sort_uniq(&allow);
	tu_strv_done(&deny);
	*ret = allow;
	return 0;
}

int tu_rbac_user_logins(const struct tu_dataset *d, const struct tu_user *u, const struct tu_host *h,
			struct tu_strv *ret, struct tu_err *reterr)
{
	struct rx_cache rx;
	int k;
	rx_cache_init(&rx);
	k = user_logins(d, NULL, &rx, u, h, ret, reterr);
	rx_cache_done(&rx);
	return k;
}

int tu_rbac_user_logins_ix(const struct tu_rbac_index *ix, const struct tu_user *u, const struct tu_host *h,
			   struct tu_strv *ret, struct tu_err *reterr)
{
	return user_logins(ix->d, ix, (struct rx_cache *) &ix->rx, u, h, ret, reterr);
}

/* ---- host user creation (access_checker.go HostUsers) ---- */

static int32_t role_host_user_mode(const struct tu_role *r)
{
	int32_t m = r->create_host_user_mode;
	if (m == TU_HOST_USER_MODE_UNSPECIFIED)
		m = r->create_host_user == TU_BOOL_TRUE ? TU_HOST_USER_MODE_KEEP : TU_HOST_USER_MODE_OFF;
	return m;
}

static int host_user(const struct tu_dataset *d, const struct tu_rbac_index *ix, struct rx_cache *rx,
		     const struct tu_user *u, const struct tu_host *h, struct tu_host_user *ret, struct tu_err *reterr)
{
	struct roleset rs = { 0 };
	struct tu_host_user hu = { 0 };
	struct tu_strv deny = { 0 };
	bool off = false, any = false;
	int32_t mode = TU_HOST_USER_MODE_UNSPECIFIED;
	const char *shell = NULL;
	int k;

	k = roleset_build(d, ix, u, &rs);
	if (rs.missing)
		rs.n = 0; /* a role that cannot be fetched: no host user (and no login) */
	for (size_t i = 0; k >= 0 && i < rs.n; i++) {
		const struct tu_role *r = rs.r[i];
		bool m = false;
		k = role_matches_safe(rx, r, false, u, h, &m, NULL, 0);
		if (k < 0 || !m)
			continue;
		any = true;
		int32_t rm = role_host_user_mode(r);
		if (rm == TU_HOST_USER_MODE_OFF)
			off = true;
		if (mode == TU_HOST_USER_MODE_UNSPECIFIED)
			mode = rm;
		if (mode == TU_HOST_USER_MODE_INSECURE_DROP && rm == TU_HOST_USER_MODE_KEEP)
			mode = TU_HOST_USER_MODE_KEEP;
		for (size_t j = 0; j < r->allow.host_groups.n && k >= 0; j++) {
			const char *g = r->allow.host_groups.v[j];
			if (!g)
				continue;
			k = is_literal(g) ? strv_add(&hu.groups, g) : interpolate(rx, g, &u->traits, &hu.groups, NULL);
			if (k < 0 && k != -ENOMEM)
				k = 0;
		}
		if (!shell && r->create_host_user_default_shell && r->create_host_user_default_shell[0])
			shell = r->create_host_user_default_shell;
	}
	for (size_t i = 0; k >= 0 && i < rs.n; i++) {
		const struct tu_role *r = rs.r[i];
		bool m = false;
		k = role_matches_safe(rx, r, true, u, h, &m, NULL, 0);
		if (k < 0 || !m)
			continue;
		for (size_t j = 0; j < r->deny.host_groups.n && k >= 0; j++) {
			const char *g = r->deny.host_groups.v[j];
			if (!g)
				continue;
			k = is_literal(g) ? strv_add(&deny, g) : interpolate(rx, g, &u->traits, &deny, NULL);
			if (k < 0 && k != -ENOMEM)
				k = 0;
		}
	}
	free(rs.r);
	free(rs.info);
	if (k >= 0 && shell) {
		hu.shell = strdup(shell);
		if (!hu.shell)
			k = -ENOMEM;
	}
	if (k < 0) {
		tu_strv_done(&deny);
		tu_host_user_done(&hu);
		return tu_err_set(reterr, k, "host user creation: %s", strerror(-k));
	}
	size_t w = 0;
	for (size_t i = 0; i < hu.groups.n; i++) {
		if (!hu.groups.v[i][0] || strv_has(&deny, hu.groups.v[i])) {
			free(hu.groups.v[i]);
			continue;
		}
		hu.groups.v[w++] = hu.groups.v[i];
	}
	hu.groups.n = w;
	if (hu.groups.v)
		hu.groups.v[w] = NULL;
	strv_sort_uniq(&hu.groups);
	tu_strv_done(&deny);
	/* Any matching role with OFF denies; DROP (deprecated) and unknown modes create nothing. */
	hu.mode = off ? TU_HOST_USER_MODE_OFF : mode;
	hu.enabled = any && !off && (mode == TU_HOST_USER_MODE_KEEP || mode == TU_HOST_USER_MODE_INSECURE_DROP);
	*ret = hu;
	return 0;
}

int tu_rbac_host_user(const struct tu_dataset *d, const struct tu_user *u, const struct tu_host *h,
		      struct tu_host_user *ret, struct tu_err *reterr)
{
	struct rx_cache rx;
	int k;
	rx_cache_init(&rx);
	k = host_user(d, NULL, &rx, u, h, ret, reterr);
	rx_cache_done(&rx);
	return k;
}

int tu_rbac_host_user_ix(const struct tu_rbac_index *ix, const struct tu_user *u, const struct tu_host *h,
			 struct tu_host_user *ret, struct tu_err *reterr)
{
	return host_user(ix->d, ix, (struct rx_cache *) &ix->rx, u, h, ret, reterr);
}

void tu_host_user_done(struct tu_host_user *hu)
{
	if (!hu)
		return;
	tu_strv_done(&hu->groups);
	free(hu->shell);
	hu->shell = NULL;
	hu->enabled = false;
}
