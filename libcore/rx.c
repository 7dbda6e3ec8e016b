/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rx.c - regular expressions for rbac.c and its languages (rx.h).
 * Layer: libcore.  No clock, no I/O, no environment, no logging.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "err.h"
#include "rbac-internal.h"
#include "rbac.h"
#include "rx.h"
#include "strbuf.h"

/* ---- regular expressions ---- */



static void rx_free(struct tu_rx *r)
{
	if (!r)
		return;
	regfree(&r->re);
	for (size_t i = 0; i <= TU_RX_GROUPS_MAX; i++)
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
static int re2_to_posix(const char *in, struct tu_rx *r, struct tu_strbuf *out, struct tu_err *reterr)
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
			if (posix_groups >= TU_RX_GROUPS_MAX)
				return tu_err_set(reterr, -EBADMSG, "regular expression '%s': more than %d groups", in, TU_RX_GROUPS_MAX);
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

static int rx_compile(const char *pattern, struct tu_rx **ret, struct tu_err *reterr)
{
	struct tu_strbuf b;
	struct tu_rx *r;
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
		for (size_t i = 0; i <= TU_RX_GROUPS_MAX; i++)
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
		for (size_t i = 0; i <= TU_RX_GROUPS_MAX; i++)
			free(r->group_names[i]);
		free(r->pattern);
		free(r);
		return tu_err_set(reterr, -EBADMSG, "invalid regular expression '%s': %s", pattern, msg);
	}
	*ret = r;
	return 0;
}

/* A compiled expression: from the cache (owned=false) or compiled for this use. */

int tu_rx_acquire(struct tu_rx_cache *c, const char *pattern, struct tu_rx_ref *ret, struct tu_err *reterr)
{
	struct tu_rx *r = NULL;
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
			*ret = (struct tu_rx_ref){ r, false };
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
			struct tu_rx **ne = realloc(c->e, (c->n + 1) * sizeof(*ne));
			if (ne) {
				c->e = ne;
				c->e[c->n++] = r;
				cached = true;
			}
		}
		pthread_mutex_unlock(&c->lock);
		if (cached) {
			*ret = (struct tu_rx_ref){ r, false };
			return 0;
		}
	}
	*ret = (struct tu_rx_ref){ r, true };
	return 0;
}

void tu_rx_release(struct tu_rx_ref *r)
{
	if (r->owned)
		rx_free(r->rx);
	r->rx = NULL;
}

void tu_rx_cache_init(struct tu_rx_cache *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
}

void tu_rx_cache_done(struct tu_rx_cache *c)
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

int tu_rx_match_value(struct tu_rx_cache *c, const char *pattern, const char *value, bool *ret, struct tu_err *reterr)
{
	if (!is_regex_value(pattern)) {
		*ret = glob_match(pattern, value);
		return 0;
	}
	if (simple_regex_match(pattern, value, ret))
		return 0;
	struct tu_rx_ref r;
	int k = tu_rx_acquire(c, pattern, &r, reterr);
	if (k < 0)
		return k;
	*ret = regexec(&r.rx->re, value, 0, NULL, 0) == 0;
	tu_rx_release(&r);
	return 0;
}

int tu_rbac_match_value(const char *pattern, const char *value, bool *ret_match, struct tu_err *reterr)
{
	bool m;
	int k = tu_rx_match_value(NULL, pattern, value, &m, reterr);
	if (k < 0)
		return k;
	*ret_match = m;
	return 0;
}

/* ---- regexp.replace ---- */

/* Go's Regexp.Expand: $1, ${1}, $name, ${name}, $$. */
static int expand_repl(const struct tu_rx *r, const char *repl, const char *src, const regmatch_t *m,
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
			for (size_t j = s; j < e && num <= TU_RX_GROUPS_MAX; j++)
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
int tu_rx_replace_all(const struct tu_rx *r, const char *s, const char *repl, char **ret, bool *ret_matched,
			  struct tu_err *reterr)
{
	regmatch_t m[TU_RX_GROUPS_MAX + 1];
	struct tu_strbuf out;
	size_t len = strlen(s), pos = 0;
	ssize_t last_end = -1;
	bool any = false;
	int k = 0;

	tu_strbuf_init(&out, RESULT_MAX);
	while (pos <= len) {
		if (regexec(&r->re, s + pos, TU_RX_GROUPS_MAX + 1, m, pos > 0 ? REG_NOTBOL : 0) != 0)
			break;
		size_t ms = pos + (size_t) m[0].rm_so, me = pos + (size_t) m[0].rm_eo;
		/* Make the offsets absolute for expand_repl. */
		for (size_t g = 0; g <= TU_RX_GROUPS_MAX; g++)
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
