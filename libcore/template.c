/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template.c - trait templates (template.h), written from the behaviour of
 * Teleport's lib/utils/parse (API.md §4.5).  Layer: libcore.  Pure.
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
#include "template.h"

/* ---- e-mail local part (a small subset of Go's net/mail.ParseAddress) ---- */

int tu_template_email_local(const char *in, char **ret, struct tu_err *reterr)
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


static void tp_ws(struct tu_tparse *p)
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

int tu_tparse_ident(struct tu_tparse *p, char *buf, size_t size)
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
int tu_tparse_string(struct tu_tparse *p, char **ret)
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
static int tp_var(struct tu_tparse *p, const char *ns, const char *name, struct tu_strv *out)
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
static int tp_punct(struct tu_tparse *p, char ch, const char *why)
{
	tp_ws(p);
	if (p->i >= p->n || p->s[p->i] != ch)
		return tu_err_set(p->err, -EBADMSG, "%s", why);
	p->i++;
	return 0;
}

/* Skips blanks, then requires a string literal ("..." or `...`) and reads it. */
static int tp_literal(struct tu_tparse *p, const char *why, char **ret)
{
	tp_ws(p);
	if (p->i >= p->n || (p->s[p->i] != '"' && p->s[p->i] != '`'))
		return tu_err_set(p->err, -EBADMSG, "%s", why);
	return tu_tparse_string(p, ret);
}

static int tp_expr(struct tu_tparse *p, struct tu_strv *out);

static int tp_call(struct tu_tparse *p, const char *ns, const char *fn, struct tu_strv *out)
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
			k = tu_template_email_local(arg.v[j], &local, p->err);
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
		struct tu_rx_ref r;
		k = tu_rx_acquire(p->rx, re, &r, p->err); /* also validates when !eval */
		if (k < 0)
			goto out;
		for (size_t j = 0; p->eval && j < arg.n; j++) {
			char *res = NULL;
			bool matched = false;
			k = tu_rx_replace_all(r.rx, arg.v[j], repl, &res, &matched, p->err);
			if (k < 0)
				break;
			/* Non-matching inputs and empty results are dropped (parse.RegexpReplace). */
			if (matched && res[0])
				k = strv_add(out, res);
			free(res);
			if (k < 0)
				break;
		}
		tu_rx_release(&r);
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

static int tp_expr(struct tu_tparse *p, struct tu_strv *out)
{
	char ns[64], name[256];
	int k;

	if (++p->depth > EXPR_DEPTH_MAX)
		return tu_err_set(p->err, -EBADMSG, "expression nested too deeply");
	tp_ws(p);
	if (p->i < p->n && (p->s[p->i] == '"' || p->s[p->i] == '`')) {
		_cleanup_free_ char *lit = NULL;
		k = tu_tparse_string(p, &lit);
		if (k >= 0 && p->eval)
			k = strv_add(out, lit);
		p->depth--;
		return k;
	}
	k = tu_tparse_ident(p, ns, sizeof(ns));
	if (k < 0)
		return k;
	tp_ws(p);
	if (p->i < p->n && p->s[p->i] == '[') {
		_cleanup_free_ char *key = NULL;
		p->i++;
		tp_ws(p);
		k = tu_tparse_string(p, &key);
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
	k = tu_tparse_ident(p, name, sizeof(name));
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

int tu_template_interpolate(struct tu_rx_cache *rx, const char *tmpl, const struct tu_labels *traits, struct tu_strv *out,
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

	struct tu_tparse p = { .s = expr, .n = expr_len, .traits = traits, .rx = rx, .err = reterr };
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
	return tu_template_interpolate(NULL, tmpl, traits, out, reterr);
}

bool tu_template_is_literal(const char *s)
{
	const char *b = strpbrk(s, "{}");
	if (!b)
		return true;
	return !strstr(b, "{{") && !strstr(b, "}}");
}
