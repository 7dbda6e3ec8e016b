/* SPDX-License-Identifier: Apache-2.0 */
/*
 * labelexpr.c - node_labels_expression (labelexpr.h).  Layer: libcore.  Pure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "err.h"
#include "labelexpr.h"
#include "rbac-internal.h"
#include "rbac.h"
#include "rx.h"
#include "template.h"

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
	const char *user_name;
	const struct tu_labels *traits;
	const struct tu_labels *host;
	struct tu_rx_cache *rx;
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
	struct tu_tparse tp = { .s = p->s, .i = p->i, .n = p->n, .err = p->err };
	int k = tu_tparse_string(&tp, ret);
	p->i = tp.i;
	return k;
}

static int ep_or(struct eparse *p, struct ev *out);

/*
 * Arguments are typed as in Teleport's parser (typical): functions taking a
 * list do not take a string (labels["k"] is a string), and a type error
 * fails the expression, which fails closed.
 */
/*
 * A list argument; a single string is taken as a list of one, as Teleport's
 * parser does (label_expressions_test.go: regexp.match(labels["owner"], ...),
 * strings.upper(labels["env"]), regexp.replace on a label).
 */
static int ev_as_list(struct ev *v, struct tu_err *err, const char *fn)
{
	if (v->t == EV_LIST)
		return 0;
	if (v->t == EV_STR) {
		struct tu_strv l = { 0 };
		if (strv_add(&l, v->s ? v->s : "") < 0)
			return tu_err_set(err, -ENOMEM, "out of memory");
		free(v->s);
		v->s = NULL;
		v->l = l;
		v->t = EV_LIST;
		return 0;
	}
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
			k = tu_rx_match_value(p->rx, a[1].s, a[0].l.v[j], &out->b, p->err);
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
		struct tu_rx_ref r = { 0 };
		if (repl) {
			k = tu_rx_acquire(p->rx, a[1].s, &r, p->err);
			if (k < 0)
				goto out;
		}
		out->t = EV_LIST;
		for (size_t j = 0; j < a[0].l.n && k >= 0; j++) {
			char *res = NULL;
			bool matched = true;
			if (repl) {
				k = tu_rx_replace_all(r.rx, a[0].l.v[j], a[2].s, &res, &matched, p->err);
			} else if (fn[0] == 'e') {
				k = tu_template_email_local(a[0].l.v[j], &res, p->err);
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
			tu_rx_release(&r);
	} else if (strcmp(fn, "labels_matching") == 0) {
		if (n != 1 || a[0].t != EV_STR) {
			k = tu_err_set(p->err, -EBADMSG, "labels_matching takes one pattern string");
			goto out;
		}
		out->t = EV_LIST;
		for (size_t j = 0; p->host && j < p->host->n && k >= 0; j++) {
			bool m = false;
			k = tu_rx_match_value(p->rx, a[0].s, p->host->e[j].key ? p->host->e[j].key : "", &m, p->err);
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
	struct tu_tparse tp = { .s = p->s, .i = p->i, .n = p->n, .err = p->err };
	k = tu_tparse_ident(&tp, name, sizeof(name));
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
			k = tu_tparse_ident(&tp, name, sizeof(name));
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
	if (strcmp(path, "user.metadata.name") == 0) {
		out->t = EV_STR;
		out->s = strdup(p->user_name ? p->user_name : "");
		return out->s ? 0 : -ENOMEM;
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
			k = tu_tparse_ident(&tp, name, sizeof(name));
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
int tu_labelexpr_eval(struct tu_rx_cache *rx, const char *expr, const char *user_name, const struct tu_labels *traits,
		      const struct tu_labels *host, bool *ret, struct tu_err *reterr)
{
	struct ev v = { 0 };
	struct eparse p = { .s = expr, .n = strlen(expr), .user_name = user_name, .traits = traits, .host = host,
			    .rx = rx, .err = reterr };
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
