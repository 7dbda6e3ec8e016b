/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor-parse.c - the parsers and judges behind `teleport-unix doctor`
 * (see doctor.h): nsswitch.conf lines, PAM stacks, sshd configuration.
 * Layer: cli.  The rules written here follow the documented behaviour of
 * glibc's NSS (nsswitch.conf(5)), Linux-PAM (pam.conf(5)) and OpenSSH
 * (sshd_config(5), sshd(8) -T); the code is our own.
 */
/* Messages, places and fixes are composed into fixed buffers and cut when a path is absurdly
 * long: a shortened message is acceptable, an unbounded one is not. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "doctor.h"
#include "err.h"

const char *doctor_status_name(enum doctor_status s)
{
	switch (s) {
	case DOCTOR_OK:
		return "ok";
	case DOCTOR_SKIPPED:
		return "skipped";
	case DOCTOR_WARNING:
		return "warning";
	case DOCTOR_ERROR:
		return "error";
	}
	return "?";
}

int doctor_path(const char *root, const char *p, char *buf, size_t size)
{
	int n;

	if (!root || !*root || strcmp(root, "/") == 0)
		n = snprintf(buf, size, "%s", p);
	else
		n = snprintf(buf, size, "%s%s%s", root, p[0] == '/' ? "" : "/", p);
	if (n < 0 || (size_t) n >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* Reads a whole regular file (symlinks followed: /etc files often are links) of at most
 * DOCTOR_MAX_FILE bytes into a new NUL-terminated buffer. */
static int read_text(const char *path, char **ret, struct tu_err *reterr)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return tu_err_set(reterr, -errno, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return tu_err_set(reterr, -errno, "cannot stat %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return tu_err_set(reterr, -EINVAL, "%s is not a regular file", path);
	if (st.st_size > DOCTOR_MAX_FILE)
		return tu_err_set(reterr, -EMSGSIZE, "%s is larger than %d bytes", path,
				  DOCTOR_MAX_FILE);
	buf = malloc((size_t) DOCTOR_MAX_FILE + 1);
	if (!buf)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	for (;;) {
		ssize_t k = read(fd, buf + len, (size_t) DOCTOR_MAX_FILE - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return tu_err_set(reterr, -errno, "cannot read %s: %s", path,
					  strerror(errno));
		if (k == 0)
			break;
		len += (size_t) k;
		if (len == DOCTOR_MAX_FILE)
			return tu_err_set(reterr, -EMSGSIZE, "%s is larger than %d bytes", path,
					  DOCTOR_MAX_FILE);
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

static void copy(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

/* ------------------------------------------------------------ nsswitch */

int doctor_nss_parse_line(const char *line, unsigned lineno, struct doctor_nss_line *ret,
			  struct tu_err *reterr)
{
	struct doctor_nss_line l = {.line = lineno};
	const char *p = skip_ws(line), *colon;
	size_t dblen;

	if (*p == '\0' || *p == '\n' || *p == '#')
		return 0;
	colon = strchr(p, ':');
	const char *hash = strchr(p, '#');
	if (!colon || (hash && hash < colon))
		return tu_err_set(reterr, -EBADMSG, "line %u: no ':' after the database name",
				  lineno);
	dblen = (size_t) (colon - p);
	while (dblen > 0 && (p[dblen - 1] == ' ' || p[dblen - 1] == '\t'))
		dblen--;
	if (dblen == 0 || dblen >= sizeof(l.db))
		return tu_err_set(reterr, -EBADMSG, "line %u: bad database name", lineno);
	copy(l.db, sizeof(l.db), p, dblen);
	p = colon + 1;
	for (;;) {
		p = skip_ws(p);
		if (*p == '\0' || *p == '\n' || *p == '#')
			break;
		if (l.n >= DOCTOR_MAX_NSS_ITEMS)
			return tu_err_set(reterr, -EMSGSIZE, "line %u: more than %d items", lineno,
					  DOCTOR_MAX_NSS_ITEMS);
		struct doctor_nss_item *it = &l.items[l.n];
		size_t k = 0;
		if (*p == '[') {
			/* An action: keep it without blanks so "[ NOTFOUND = return ]" reads like
			 * "[NOTFOUND=return]". */
			for (; *p && *p != ']' && *p != '\n'; p++) {
				if (*p == ' ' || *p == '\t')
					continue;
				if (k + 2 >= sizeof(it->text))
					return tu_err_set(reterr, -EMSGSIZE,
							  "line %u: action too long", lineno);
				it->text[k++] = *p;
			}
			if (*p != ']')
				return tu_err_set(reterr, -EBADMSG, "line %u: '[' without ']'",
						  lineno);
			it->text[k++] = *p++;
			it->is_action = true;
		} else {
			for (; *p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' &&
			       *p != '[' && *p != '#';
			     p++) {
				if (k + 1 >= sizeof(it->text))
					return tu_err_set(reterr, -EMSGSIZE,
							  "line %u: service name too long", lineno);
				it->text[k++] = *p;
			}
		}
		it->text[k] = '\0';
		l.n++;
	}
	*ret = l;
	return 1;
}

/* Whether action text a ("[!UNAVAIL=return NOTFOUND=continue]") makes a NOTFOUND answer return. */
static bool action_returns_on_notfound(const char *a)
{
	char buf[64];
	const char *p;
	bool ret = false;

	copy(buf, sizeof(buf), a + 1, strlen(a) >= 2 ? strlen(a) - 2 : 0);
	/* Items are "[!]STATUS=ACTION", separated by blanks in the file: the blanks were removed,
	 * so split on the '=' boundaries instead: STATUS is one of 4 words. */
	p = buf;
	while (*p) {
		bool neg = false;
		if (*p == '!') {
			neg = true;
			p++;
		}
		const char *eq = strchr(p, '=');
		if (!eq)
			break;
		size_t slen = (size_t) (eq - p);
		const char *act = eq + 1;
		bool is_return = strncasecmp(act, "return", 6) == 0;
		size_t alen = is_return                              ? 6
			      : strncasecmp(act, "continue", 8) == 0 ? 8
			      : strncasecmp(act, "merge", 5) == 0    ? 5
								     : 0;
		if (alen == 0)
			break;
		bool notfound = slen == 8 && strncasecmp(p, "NOTFOUND", 8) == 0;
		/* "!X=return" returns on every status but X: NOTFOUND included unless X is
		 * NOTFOUND. */
		if (is_return && (neg ? !notfound : notfound))
			ret = true;
		p = act + alen;
	}
	return ret;
}

void doctor_nss_judge(const char *db, const struct doctor_nss_line *l, bool required,
		      const char *path, struct doctor_finding *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!l) {
		if (!required) {
			ret->status = DOCTOR_OK;
			snprintf(ret->msg, sizeof(ret->msg),
				 "no '%s:' line: glibc takes the group line for it", db);
			snprintf(ret->where, sizeof(ret->where), "%s", path);
			return;
		}
		ret->status = DOCTOR_ERROR;
		snprintf(ret->msg, sizeof(ret->msg),
			 "no '%s:' line: glibc uses its built-in default and never asks teleport",
			 db);
		snprintf(ret->where, sizeof(ret->where), "%s", path);
		snprintf(ret->fix, sizeof(ret->fix), "add the line '%s: files teleport' to %s", db,
			 path);
		return;
	}
	snprintf(ret->where, sizeof(ret->where), "%s:%u", path, l->line);

	/* The line as the admin would write it, for fixes. */
	char now[512] = "", want[512] = "";
	size_t ifiles = SIZE_MAX, itele = SIZE_MAX, nteleport = 0;
	for (size_t i = 0; i < l->n; i++) {
		const char *t = l->items[i].text;
		snprintf(now + strlen(now), sizeof(now) - strlen(now), " %s", t);
		if (l->items[i].is_action)
			continue;
		if (strcmp(t, "teleport") == 0) {
			nteleport++;
			if (itele == SIZE_MAX)
				itele = i;
		} else if ((strcmp(t, "files") == 0 || strcmp(t, "compat") == 0) &&
			   ifiles == SIZE_MAX) {
			ifiles = i;
		}
	}
	/* The wanted line: everything as it is, teleport removed, then added once right after
	 * files/compat and the actions that belong to it. */
	bool added = false;
	for (size_t i = 0; i < l->n; i++) {
		const char *t = l->items[i].text;
		if (!l->items[i].is_action && strcmp(t, "teleport") == 0)
			continue;
		snprintf(want + strlen(want), sizeof(want) - strlen(want), " %s", t);
		bool next_is_action = i + 1 < l->n && l->items[i + 1].is_action;
		if (!added && ifiles != SIZE_MAX && i >= ifiles && !next_is_action) {
			snprintf(want + strlen(want), sizeof(want) - strlen(want), " teleport");
			added = true;
		}
	}
	if (!added)
		snprintf(want, sizeof(want), " files teleport");

	if (nteleport == 0) {
		ret->status = required ? DOCTOR_ERROR : DOCTOR_WARNING;
		snprintf(
		    ret->msg, sizeof(ret->msg),
		    required
			? "'teleport' is missing from the %s line: Teleport accounts do not exist on this host"
			: "'teleport' is missing from the %s line: Teleport users get no supplementary groups at login",
		    db);
		snprintf(ret->fix, sizeof(ret->fix), "change line %u of %s to '%s:%s'", l->line,
			 path, db, want);
		return;
	}
	if (ifiles == SIZE_MAX) {
		ret->status = DOCTOR_ERROR;
		snprintf(
		    ret->msg, sizeof(ret->msg),
		    "the %s line has no 'files' before 'teleport': local accounts (root included) are not looked up first",
		    db);
		snprintf(ret->fix, sizeof(ret->fix), "change line %u of %s to '%s:%s'", l->line,
			 path, db, want);
		return;
	}
	if (itele < ifiles) {
		ret->status = DOCTOR_ERROR;
		snprintf(
		    ret->msg, sizeof(ret->msg),
		    "'teleport' comes before '%s' on the %s line: a Teleport login would shadow a local account of the same name",
		    l->items[ifiles].text, db);
		snprintf(ret->fix, sizeof(ret->fix), "change line %u of %s to '%s:%s'", l->line,
			 path, db, want);
		return;
	}
	for (size_t i = 0; i < itele; i++) {
		if (l->items[i].is_action && action_returns_on_notfound(l->items[i].text)) {
			ret->status = DOCTOR_ERROR;
			snprintf(
			    ret->msg, sizeof(ret->msg),
			    "'%s' on the %s line stops the lookup before 'teleport' for every name the services before it do not know",
			    l->items[i].text, db);
			snprintf(ret->fix, sizeof(ret->fix),
				 "remove '%s' or move 'teleport' before it on line %u of %s",
				 l->items[i].text, l->line, path);
			return;
		}
	}
	if (nteleport > 1) {
		ret->status = DOCTOR_WARNING;
		snprintf(ret->msg, sizeof(ret->msg),
			 "'teleport' is listed %zu times on the %s line: every miss asks it again",
			 nteleport, db);
		snprintf(ret->fix, sizeof(ret->fix), "change line %u of %s to '%s:%s'", l->line,
			 path, db, want);
		return;
	}
	ret->status = DOCTOR_OK;
	snprintf(ret->msg, sizeof(ret->msg), "%s:%s", db, now);
}

/* ------------------------------------------------------------------ PAM */

static const struct {
	const char *name;
	int rc; /* enum doctor_pam_rc, or -1 for a value we do not track */
} pam_values[] = {
    {"success", DOCTOR_RC_SUCCESS},
    {"perm_denied", DOCTOR_RC_PERM_DENIED},
    {"user_unknown", DOCTOR_RC_USER_UNKNOWN},
    {"authinfo_unavail", DOCTOR_RC_AUTHINFO_UNAVAIL},
    {"system_err", DOCTOR_RC_SYSTEM_ERR},
    {"module_unknown", DOCTOR_RC_MODULE_UNKNOWN},
    {"session_err", DOCTOR_RC_SESSION_ERR},
    {"new_authtok_reqd", DOCTOR_RC_NEW_AUTHTOK_REQD},
    /* The rest of Linux-PAM's list: known, not tracked. */
    {"open_err", -1},
    {"symbol_err", -1},
    {"service_err", -1},
    {"buf_err", -1},
    {"auth_err", -1},
    {"cred_insufficient", -1},
    {"maxtries", -1},
    {"acct_expired", -1},
    {"cred_unavail", -1},
    {"cred_expired", -1},
    {"cred_err", -1},
    {"no_module_data", -1},
    {"conv_err", -1},
    {"authtok_err", -1},
    {"authtok_recover_err", -1},
    {"authtok_lock_busy", -1},
    {"authtok_disable_aging", -1},
    {"try_again", -1},
    {"ignore", -1},
    {"abort", -1},
    {"authtok_expired", -1},
    {"bad_item", -1},
    {"conv_again", -1},
    {"incomplete", -1},
};

static int parse_action(const char *a, size_t len, enum doctor_pam_action *ret_act,
			unsigned *ret_jump)
{
	static const struct {
		const char *name;
		enum doctor_pam_action act;
	} acts[] = {
	    {"ignore", DOCTOR_PAM_IGNORE}, {"ok", DOCTOR_PAM_OK},   {"done", DOCTOR_PAM_DONE},
	    {"bad", DOCTOR_PAM_BAD},       {"die", DOCTOR_PAM_DIE}, {"reset", DOCTOR_PAM_RESET},
	};

	for (size_t i = 0; i < ELEMENTSOF(acts); i++) {
		if (strlen(acts[i].name) == len && strncasecmp(a, acts[i].name, len) == 0) {
			*ret_act = acts[i].act;
			*ret_jump = 0;
			return 0;
		}
	}
	unsigned n = 0;
	if (len == 0 || len > 3)
		return -EBADMSG;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char) a[i]))
			return -EBADMSG;
		n = n * 10 + (unsigned) (a[i] - '0');
	}
	if (n == 0)
		return -EBADMSG;
	*ret_act = DOCTOR_PAM_JUMP;
	*ret_jump = n;
	return 0;
}

int doctor_pam_control_parse(const char *control, struct doctor_pam_control *ret,
			     struct tu_err *reterr)
{
	struct doctor_pam_control c;
	enum doctor_pam_action def = DOCTOR_PAM_BAD;
	unsigned defjump = 0;
	bool set[DOCTOR_RC_N] = {false};

	memset(&c, 0, sizeof(c));
	if (control[0] != '[') {
		/* pam.conf(5): the historical keywords in terms of the bracket syntax. */
		enum doctor_pam_action succ, fail;
		if (strcasecmp(control, "required") == 0) {
			succ = DOCTOR_PAM_OK;
			fail = DOCTOR_PAM_BAD;
		} else if (strcasecmp(control, "requisite") == 0) {
			succ = DOCTOR_PAM_OK;
			fail = DOCTOR_PAM_DIE;
		} else if (strcasecmp(control, "sufficient") == 0) {
			succ = DOCTOR_PAM_DONE;
			fail = DOCTOR_PAM_IGNORE;
		} else if (strcasecmp(control, "optional") == 0) {
			succ = DOCTOR_PAM_OK;
			fail = DOCTOR_PAM_IGNORE;
		} else {
			return tu_err_set(reterr, -EBADMSG, "unknown control '%s'", control);
		}
		for (int i = 0; i < DOCTOR_RC_N; i++)
			c.action[i] = fail;
		c.action[DOCTOR_RC_SUCCESS] = succ;
		c.action[DOCTOR_RC_NEW_AUTHTOK_REQD] = succ;
		*ret = c;
		return 0;
	}
	size_t len = strlen(control);
	if (len < 2 || control[len - 1] != ']')
		return tu_err_set(reterr, -EBADMSG, "control '%s': '[' without ']'", control);
	const char *p = control + 1, *end = control + len - 1;
	while (p < end) {
		while (p < end && isspace((unsigned char) *p))
			p++;
		if (p >= end)
			break;
		const char *tok = p;
		while (p < end && !isspace((unsigned char) *p))
			p++;
		const char *eq = memchr(tok, '=', (size_t) (p - tok));
		if (!eq)
			return tu_err_set(reterr, -EBADMSG,
					  "control '%s': '%.*s' is not value=action", control,
					  (int) (p - tok), tok);
		size_t vlen = (size_t) (eq - tok);
		enum doctor_pam_action act;
		unsigned jump;
		if (parse_action(eq + 1, (size_t) (p - eq - 1), &act, &jump) < 0)
			return tu_err_set(reterr, -EBADMSG, "control '%s': unknown action '%.*s'",
					  control, (int) (p - eq - 1), eq + 1);
		if (vlen == 7 && strncasecmp(tok, "default", 7) == 0) {
			def = act;
			defjump = jump;
			continue;
		}
		for (size_t i = 0; i < ELEMENTSOF(pam_values); i++) {
			if (strlen(pam_values[i].name) == vlen &&
			    strncasecmp(tok, pam_values[i].name, vlen) == 0 &&
			    pam_values[i].rc >= 0) {
				c.action[pam_values[i].rc] = act;
				c.jump[pam_values[i].rc] = jump;
				set[pam_values[i].rc] = true;
			}
		}
		/* An unknown value is ignored by libpam (it logs it): so do we. */
	}
	for (int i = 0; i < DOCTOR_RC_N; i++) {
		if (!set[i]) {
			c.action[i] = def;
			c.jump[i] = defjump;
		}
	}
	*ret = c;
	return 0;
}

const char *doctor_pam_module_base(const struct doctor_pam_entry *e)
{
	const char *s = strrchr(e->module, '/');
	return s ? s + 1 : e->module;
}

/* Splits off the next blank-separated token of *p (a "[...]" token may hold blanks). */
static size_t next_token(const char **p, const char **ret_tok)
{
	const char *s = skip_ws(*p), *q = s;

	if (*q == '[') {
		while (*q && *q != ']')
			q++;
		if (*q == ']')
			q++;
	} else {
		while (*q && *q != ' ' && *q != '\t' && *q != '\r')
			q++;
	}
	*ret_tok = s;
	*p = q;
	return (size_t) (q - s);
}

static void set_problem(char *problem, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_problem(char *problem, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (problem[0])
		return;
	va_start(ap, fmt);
	vsnprintf(problem, size, fmt, ap);
	va_end(ap);
}

static int pam_load_file(const char *root, const char *name, const char *type, const char *via,
			 const char *top, const char *scope, int depth, struct doctor_pam_stack *s,
			 struct tu_err *reterr)
{
	_cleanup_free_ char *text = NULL;
	char rel[256], full[4096];
	int r;

	if (name[0] == '/')
		snprintf(rel, sizeof(rel), "%s", name);
	else
		snprintf(rel, sizeof(rel), "/etc/pam.d/%s", name);
	r = doctor_path(root, rel, full, sizeof(full));
	if (r < 0)
		return tu_err_set(reterr, r, "path too long: %s", rel);
	r = read_text(full, &text, reterr);
	if (r < 0)
		return r;

	/* Join backslash-newline continuations in place. */
	for (char *q = text; (q = strstr(q, "\\\n"));) {
		q[0] = ' ';
		q[1] = ' ';
	}
	unsigned lineno = 0;
	char *save = NULL;
	for (char *ln = text; ln; ln = save) {
		char *nl = strchr(ln, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		char *hash = strchr(ln, '#');
		if (hash)
			*hash = '\0';
		const char *p = ln, *tok;
		/* What this line is, for fixes that say where to insert: "'@include common-account'
		 * (/etc/pam.d/sshd:15)", kept from the outermost file. */
		char mytop[400];
		if (depth == 0) {
			char txt[200];
			const char *b = skip_ws(ln);
			size_t bl = strlen(b);
			while (bl > 0 && isspace((unsigned char) b[bl - 1]))
				bl--;
			copy(txt, sizeof(txt), b, bl);
			for (char *c = txt; *c; c++)
				if (*c == '\t')
					*c = ' ';
			snprintf(mytop, sizeof(mytop), "'%s' (%s:%u)", txt, rel, lineno);
		} else {
			snprintf(mytop, sizeof(mytop), "%s", top);
		}
		size_t tlen = next_token(&p, &tok);
		if (tlen == 0)
			continue;
		char here[600];
		snprintf(here, sizeof(here), "%s:%u", rel, lineno);
		if (tlen == 8 && strncmp(tok, "@include", 8) == 0) {
			const char *inc;
			size_t ilen = next_token(&p, &inc);
			char incname[256], nvia[512];
			if (ilen == 0 || ilen >= sizeof(incname)) {
				set_problem(s->problem, sizeof(s->problem),
					    "%s: @include without a file", here);
				continue;
			}
			copy(incname, sizeof(incname), inc, ilen);
			if (depth + 1 >= DOCTOR_MAX_DEPTH) {
				set_problem(s->problem, sizeof(s->problem),
					    "%s: includes nested deeper than %d", here,
					    DOCTOR_MAX_DEPTH);
				continue;
			}
			snprintf(nvia, sizeof(nvia), "included from %s%s%s", here,
				 via[0] ? ", " : "", via);
			struct tu_err e2;
			tu_err_clear(&e2);
			r = pam_load_file(root, incname, type, nvia, mytop, scope, depth + 1, s,
					  &e2);
			if (r == -EMSGSIZE)
				return tu_err_set(reterr, r, "%s", e2.msg);
			if (r < 0)
				set_problem(s->problem, sizeof(s->problem), "%s: @include %s: %s",
					    here, incname, e2.msg);
			continue;
		}
		char t[16];
		const char *tp = tok;
		size_t tl = tlen;
		if (*tp == '-') {
			tp++;
			tl--;
		}
		if (tl == 0 || tl >= sizeof(t)) {
			set_problem(s->problem, sizeof(s->problem), "%s: unknown type '%.*s'", here,
				    (int) tlen, tok);
			continue;
		}
		copy(t, sizeof(t), tp, tl);
		for (char *c = t; *c; c++)
			*c = (char) tolower((unsigned char) *c);
		if (strcmp(t, "account") != 0 && strcmp(t, "auth") != 0 &&
		    strcmp(t, "password") != 0 && strcmp(t, "session") != 0) {
			set_problem(s->problem, sizeof(s->problem), "%s: unknown type '%.*s'", here,
				    (int) tlen, tok);
			continue;
		}
		const char *ctl, *mod;
		size_t clen = next_token(&p, &ctl);
		size_t mlen = next_token(&p, &mod);
		if (clen == 0 || mlen == 0) {
			set_problem(s->problem, sizeof(s->problem),
				    "%s: a '%s' line needs a control and a module", here, t);
			continue;
		}
		if (strcmp(t, type) != 0)
			continue;
		if ((clen == 7 && strncasecmp(ctl, "include", 7) == 0) ||
		    (clen == 8 && strncasecmp(ctl, "substack", 8) == 0)) {
			char incname[256], nvia[512];
			copy(incname, sizeof(incname), mod, mlen);
			if (depth + 1 >= DOCTOR_MAX_DEPTH) {
				set_problem(s->problem, sizeof(s->problem),
					    "%s: includes nested deeper than %d", here,
					    DOCTOR_MAX_DEPTH);
				continue;
			}
			snprintf(nvia, sizeof(nvia), "included from %s%s%s", here,
				 via[0] ? ", " : "", via);
			/* A substack is its own scope: what ends or jumps in it stays in it. */
			char nscope[64];
			if (clen == 8)
				snprintf(nscope, sizeof(nscope), "%s/%u", scope, ++s->n_scopes);
			else
				snprintf(nscope, sizeof(nscope), "%s", scope);
			struct tu_err e2;
			tu_err_clear(&e2);
			r = pam_load_file(root, incname, type, nvia, mytop, nscope, depth + 1, s,
					  &e2);
			if (r == -EMSGSIZE)
				return tu_err_set(reterr, r, "%s", e2.msg);
			if (r < 0)
				set_problem(s->problem, sizeof(s->problem), "%s: %s %s: %s", here,
					    t, incname, e2.msg);
			continue;
		}
		if (s->n >= DOCTOR_MAX_ENTRIES)
			return tu_err_set(reterr, -EMSGSIZE,
					  "more than %d %s lines in the %s stack",
					  DOCTOR_MAX_ENTRIES, type, s->service);
		struct doctor_pam_entry *e = &s->entries[s->n++];
		memset(e, 0, sizeof(*e));
		copy(e->type, sizeof(e->type), t, strlen(t));
		copy(e->control, sizeof(e->control), ctl, clen);
		copy(e->module, sizeof(e->module), mod, mlen);
		p = skip_ws(p);
		copy(e->args, sizeof(e->args), p, strlen(p));
		for (size_t k = strlen(e->args); k > 0 && isspace((unsigned char) e->args[k - 1]);
		     k--)
			e->args[k - 1] = '\0';
		copy(e->file, sizeof(e->file), rel, strlen(rel));
		e->line = lineno;
		copy(e->via, sizeof(e->via), via, strlen(via));
		copy(e->top, sizeof(e->top), mytop, strlen(mytop));
		copy(e->scope, sizeof(e->scope), scope, strlen(scope));
	}
	return 0;
}

int doctor_pam_load(const char *root, const char *service, const char *type,
		    struct doctor_pam_stack *ret, struct tu_err *reterr)
{
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->service, sizeof(ret->service), "%s", service);
	snprintf(ret->path, sizeof(ret->path), "/etc/pam.d/%s", service);
	return pam_load_file(root, service, type, "", "", "", 0, ret, reterr);
}

static void entry_where(const struct doctor_pam_entry *e, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%u%s%s%s", e->file, e->line, e->via[0] ? " (" : "", e->via,
		 e->via[0] ? ")" : "");
}

static bool is_teleport(const struct doctor_pam_entry *e)
{
	return strcmp(doctor_pam_module_base(e), "pam_teleport.so") == 0;
}

static const char *const rc_names[DOCTOR_RC_N] = {
    [DOCTOR_RC_SUCCESS] = "success",
    [DOCTOR_RC_PERM_DENIED] = "perm_denied",
    [DOCTOR_RC_USER_UNKNOWN] = "user_unknown",
    [DOCTOR_RC_AUTHINFO_UNAVAIL] = "authinfo_unavail",
    [DOCTOR_RC_SYSTEM_ERR] = "an error",
    [DOCTOR_RC_MODULE_UNKNOWN] = "module_unknown",
    [DOCTOR_RC_SESSION_ERR] = "session_err",
    [DOCTOR_RC_NEW_AUTHTOK_REQD] = "new_authtok_reqd (an expired password)",
};

void doctor_pam_judge_account(const struct doctor_pam_stack *s, struct doctor_finding *ret)
{
	size_t itele = SIZE_MAX, iunix = SIZE_MAX, nteleport = 0;
	char w1[700], w2[700];

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < s->n; i++) {
		if (is_teleport(&s->entries[i])) {
			nteleport++;
			if (itele == SIZE_MAX)
				itele = i;
		} else if (strcmp(doctor_pam_module_base(&s->entries[i]), "pam_unix.so") == 0 &&
			   iunix == SIZE_MAX) {
			iunix = i;
		}
	}
	/* Where the fix goes: right before the line of the service file that brings in pam_unix
	 * (Debian's "@include common-account", RHEL's "account include password-auth"). */
	const char *anchor = iunix != SIZE_MAX ? s->entries[iunix].top : "";

	if (itele == SIZE_MAX) {
		ret->status = DOCTOR_ERROR;
		snprintf(
		    ret->msg, sizeof(ret->msg),
		    "pam_teleport.so is not in the account phase of %s: Teleport's roles, locks and MFA rules are not enforced for this service",
		    s->service);
		snprintf(ret->where, sizeof(ret->where), "%s", s->path);
		if (anchor[0])
			snprintf(
			    ret->fix, sizeof(ret->fix),
			    "add the line '@include teleport' to %s right before %s, which brings in pam_unix.so; or run 'pam-auth-update --enable teleport'",
			    s->path, anchor);
		else
			snprintf(
			    ret->fix, sizeof(ret->fix),
			    "add the line '@include teleport' to %s before its other account lines, or run 'pam-auth-update --enable teleport'",
			    s->path);
		return;
	}
	const struct doctor_pam_entry *t = &s->entries[itele];
	entry_where(t, ret->where, sizeof(ret->where));
	/* Is pam_teleport.so reachable?  A line before it that ends the stack (done, sufficient) or
	 * jumps over it lets a login through without Teleport's verdict: an error, except when only
	 * new_authtok_reqd does it (Debian's pam_unix.so line): that concerns only accounts with an
	 * expired local password, which the NSS module never serves (no shadow entry), so a
	 * warning. */
	const struct doctor_pam_entry *skipper = NULL;
	int skip_rc = -1;
	for (size_t i = 0; i < itele && (skip_rc < 0 || skip_rc == DOCTOR_RC_NEW_AUTHTOK_REQD);
	     i++) {
		const struct doctor_pam_entry *e = &s->entries[i];
		struct doctor_pam_control c;
		if (doctor_pam_control_parse(e->control, &c, NULL) < 0)
			continue;
		/* e ends or jumps within its substack only: t must be in that scope (or deeper). */
		size_t sl = strlen(e->scope);
		if (strncmp(t->scope, e->scope, sl) != 0 || (t->scope[sl] && t->scope[sl] != '/'))
			continue;
		for (int rc = 0; rc < DOCTOR_RC_N; rc++) {
			bool skips = c.action[rc] == DOCTOR_PAM_DONE ||
				     (c.action[rc] == DOCTOR_PAM_JUMP && i + c.jump[rc] >= itele);
			if (!skips || (skip_rc >= 0 && rc == DOCTOR_RC_NEW_AUTHTOK_REQD))
				continue;
			skipper = e;
			skip_rc = rc;
			if (rc != DOCTOR_RC_NEW_AUTHTOK_REQD)
				break;
		}
	}
	if (skipper) {
		const struct doctor_pam_entry *e = skipper;
		bool aging = skip_rc == DOCTOR_RC_NEW_AUTHTOK_REQD;
		entry_where(e, w1, sizeof(w1));
		ret->status = aging ? DOCTOR_WARNING : DOCTOR_ERROR;
		snprintf(
		    ret->msg, sizeof(ret->msg),
		    "pam_teleport.so is skipped in the account phase of %s whenever %s (%s) returns %s (control '%s')%s",
		    s->service, doctor_pam_module_base(e), w1, rc_names[skip_rc], e->control,
		    aging ? ": local accounts whose password expired are not judged by Teleport"
			  : "");
		if (strcmp(t->top, e->top) == 0)
			snprintf(
			    ret->fix, sizeof(ret->fix),
			    "in %s, move the pam_teleport.so line (%u) above line %u, or change that line's control so it cannot end or jump over the stack",
			    t->file, t->line, e->line);
		else
			snprintf(
			    ret->fix, sizeof(ret->fix),
			    "move %s before %s, or change the control of %s:%u so it cannot end or jump over the stack",
			    t->top, e->top, e->file, e->line);
		return;
	}
	if (iunix != SIZE_MAX && iunix < itele) {
		entry_where(&s->entries[iunix], w2, sizeof(w2));
		const char *tline = t->top;
		ret->status = DOCTOR_WARNING;
		snprintf(
		    ret->msg, sizeof(ret->msg),
		    "pam_teleport.so runs after pam_unix.so (%s) in the account phase of %s: it is reached today, but pam_unix.so's line decides whether it runs, so keep it before",
		    w2, s->service);
		if (strcmp(tline, anchor) == 0)
			snprintf(
			    ret->fix, sizeof(ret->fix),
			    "in %s, move the pam_teleport.so line (%u) above the pam_unix.so line (%u); with pam-auth-update, give the teleport profile a higher Priority than unix",
			    t->file, t->line, s->entries[iunix].line);
		else
			snprintf(ret->fix, sizeof(ret->fix), "move %s so that it comes before %s",
				 tline, anchor);
		return;
	}
	if (nteleport > 1) {
		ret->status = DOCTOR_WARNING;
		const struct doctor_pam_entry *t2 = NULL;
		for (size_t i = itele + 1; i < s->n && !t2; i++)
			if (is_teleport(&s->entries[i]))
				t2 = &s->entries[i];
		entry_where(t2, w2, sizeof(w2));
		snprintf(
		    ret->msg, sizeof(ret->msg),
		    "pam_teleport.so is in the account phase of %s %zu times (again at %s): every login is decided twice",
		    s->service, nteleport, w2);
		snprintf(
		    ret->fix, sizeof(ret->fix),
		    "keep one: either '@include teleport' in %s or the pam-auth-update profile in common-account",
		    s->path);
		return;
	}
	ret->status = DOCTOR_OK;
	if (iunix != SIZE_MAX)
		snprintf(ret->msg, sizeof(ret->msg),
			 "pam_teleport.so runs in the account phase of %s before pam_unix.so",
			 s->service);
	else
		snprintf(ret->msg, sizeof(ret->msg),
			 "pam_teleport.so runs in the account phase of %s", s->service);
}

static const char *action_name(enum doctor_pam_action a)
{
	switch (a) {
	case DOCTOR_PAM_IGNORE:
		return "ignore";
	case DOCTOR_PAM_OK:
		return "ok";
	case DOCTOR_PAM_DONE:
		return "done";
	case DOCTOR_PAM_BAD:
		return "bad";
	case DOCTOR_PAM_DIE:
		return "die";
	case DOCTOR_PAM_RESET:
		return "reset";
	case DOCTOR_PAM_JUMP:
		return "a jump";
	}
	return "?";
}

static bool fails(enum doctor_pam_action a)
{
	return a == DOCTOR_PAM_BAD || a == DOCTOR_PAM_DIE;
}

void doctor_pam_judge_control(const struct doctor_pam_entry *e, const char *type,
			      struct doctor_finding *ret)
{
	struct doctor_pam_control c;
	struct tu_err err;
	bool account = strcmp(type, "account") == 0;
	const char *good = account ? "[success=ok user_unknown=ignore default=bad]"
				   : "[success=ok ignore=ignore default=bad]";

	memset(ret, 0, sizeof(*ret));
	tu_err_clear(&err);
	entry_where(e, ret->where, sizeof(ret->where));
	snprintf(ret->fix, sizeof(ret->fix), "write the control of %s:%u as '%s'", e->file, e->line,
		 good);
	if (doctor_pam_control_parse(e->control, &c, &err) < 0) {
		ret->status = DOCTOR_ERROR;
		snprintf(ret->msg, sizeof(ret->msg), "%s", err.msg);
		return;
	}

	static const struct {
		int rc;
		const char *name, *why;
	} must_fail[] = {
	    {DOCTOR_RC_PERM_DENIED, "perm_denied",
	     "a refusal by Teleport (role, lock, MFA) lets the login through"},
	    {DOCTOR_RC_SYSTEM_ERR, "system_err",
	     "an internal error (e.g. a broken configuration) lets the login through"},
	    {DOCTOR_RC_MODULE_UNKNOWN, "module_unknown",
	     "a missing or unloadable pam_teleport.so lets every login through"},
	    {DOCTOR_RC_SESSION_ERR, "session_err", "a refused session opens anyway"},
	};

	for (size_t i = 0; i < ELEMENTSOF(must_fail); i++) {
		if (must_fail[i].rc == DOCTOR_RC_SESSION_ERR && account)
			continue;
		if (!fails(c.action[must_fail[i].rc])) {
			ret->status = DOCTOR_ERROR;
			snprintf(ret->msg, sizeof(ret->msg),
				 "pam_teleport.so fails open: with control '%s' %s is %s, so %s",
				 e->control, must_fail[i].name,
				 action_name(c.action[must_fail[i].rc]), must_fail[i].why);
			return;
		}
	}
	if (!fails(c.action[DOCTOR_RC_AUTHINFO_UNAVAIL])) {
		bool ign = c.action[DOCTOR_RC_AUTHINFO_UNAVAIL] == DOCTOR_PAM_IGNORE;
		ret->status = ign ? DOCTOR_WARNING : DOCTOR_ERROR;
		snprintf(
		    ret->msg, sizeof(ret->msg),
		    "with control '%s' authinfo_unavail is %s: Teleport logins are %s while Auth and the cache are both unusable",
		    e->control, action_name(c.action[DOCTOR_RC_AUTHINFO_UNAVAIL]),
		    ign ? "left to the rest of the stack" : "accepted");
		return;
	}
	if (fails(c.action[DOCTOR_RC_SUCCESS])) {
		ret->status = DOCTOR_ERROR;
		snprintf(ret->msg, sizeof(ret->msg),
			 "with control '%s' success is %s: every login Teleport allows is refused",
			 e->control, action_name(c.action[DOCTOR_RC_SUCCESS]));
		return;
	}
	if (account && fails(c.action[DOCTOR_RC_USER_UNKNOWN])) {
		ret->status = DOCTOR_WARNING;
		snprintf(
		    ret->msg, sizeof(ret->msg),
		    "with control '%s' user_unknown is %s: every account that is not a Teleport login (root and other local accounts) is refused",
		    e->control, action_name(c.action[DOCTOR_RC_USER_UNKNOWN]));
		return;
	}
	ret->status = DOCTOR_OK;
	ret->fix[0] = '\0';
	snprintf(ret->msg, sizeof(ret->msg), "control '%s' fails closed", e->control);
}

/* ---------------------------------------------------------------- sshd */

const struct doctor_sshd_kv *doctor_sshd_get(const struct doctor_sshd_conf *c, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->kv[i].key, key) == 0)
			return &c->kv[i];
	return NULL;
}

/* Adds key=value unless key is already there (sshd: the first value wins). */
static int sshd_add(struct doctor_sshd_conf *c, const char *key, size_t klen, const char *val,
		    const char *file, unsigned line, struct tu_err *reterr)
{
	char k[48];

	if (klen == 0 || klen >= sizeof(k))
		return 0;
	for (size_t i = 0; i < klen; i++)
		k[i] = (char) tolower((unsigned char) key[i]);
	k[klen] = '\0';
	if (doctor_sshd_get(c, k))
		return 0;
	if (c->n >= DOCTOR_MAX_ENTRIES)
		return tu_err_set(reterr, -EMSGSIZE, "more than %d sshd keywords",
				  DOCTOR_MAX_ENTRIES);
	struct doctor_sshd_kv *kv = &c->kv[c->n++];
	memset(kv, 0, sizeof(*kv));
	memcpy(kv->key, k, klen + 1);
	val = skip_ws(val);
	size_t vlen = strlen(val);
	while (vlen > 0 && isspace((unsigned char) val[vlen - 1]))
		vlen--;
	if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"' && !memchr(val + 1, '"', vlen - 2)) {
		val++;
		vlen -= 2;
	}
	copy(kv->value, sizeof(kv->value), val, vlen);
	copy(kv->file, sizeof(kv->file), file ? file : "", file ? strlen(file) : 0);
	kv->line = line;
	return 0;
}

int doctor_sshd_parse_t(const char *text, struct doctor_sshd_conf *ret, struct tu_err *reterr)
{
	memset(ret, 0, sizeof(*ret));
	ret->from_sshd_t = true;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t) (nl - p) : strlen(p);
		char line[1200];
		copy(line, sizeof(line), p, len);
		p += len + (nl ? 1 : 0);
		const char *k = skip_ws(line);
		size_t klen = strcspn(k, " \t\r");
		if (klen == 0)
			continue;
		int r = sshd_add(ret, k, klen, k + klen, NULL, 0, reterr);
		if (r < 0)
			return r;
	}
	return 0;
}

/* in_match: whether the includer is inside a Match block.  A Match in an included file ends
 * with that file (it does not leak into the includer, as in OpenSSH since 8.x). */
static int sshd_load_file(const char *root, const char *path, int depth, bool in_match,
			  struct doctor_sshd_conf *c, struct tu_err *reterr)
{
	_cleanup_free_ char *text = NULL;
	char full[4096];
	int r;

	r = doctor_path(root, path, full, sizeof(full));
	if (r < 0)
		return tu_err_set(reterr, r, "path too long: %s", path);
	r = read_text(full, &text, reterr);
	if (r < 0)
		return r;
	unsigned lineno = 0;
	char *save = NULL;
	for (char *ln = text; ln; ln = save) {
		char *nl = strchr(ln, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		const char *k = skip_ws(ln);
		if (*k == '\0' || *k == '#')
			continue;
		size_t klen = strcspn(k, " \t\r=");
		const char *v = skip_ws(k + klen);
		if (*v == '=')
			v = skip_ws(v + 1);
		if (klen == 5 && strncasecmp(k, "match", 5) == 0) {
			in_match = true;
			continue;
		}
		if (klen == 7 && strncasecmp(k, "include", 7) == 0) {
			/* Several blank-separated patterns, each a glob; relative to /etc/ssh. */
			for (const char *q = v;;) {
				char pat[1024], rel[1100], g[4200];
				q = skip_ws(q);
				size_t plen = strcspn(q, " \t\r");
				if (plen == 0)
					break;
				copy(pat, sizeof(pat), q, plen);
				q += plen;
				if (pat[0] == '/')
					snprintf(rel, sizeof(rel), "%s", pat);
				else
					snprintf(rel, sizeof(rel), "/etc/ssh/%s", pat);
				if (doctor_path(root, rel, g, sizeof(g)) < 0)
					continue;
				if (depth + 1 >= DOCTOR_MAX_DEPTH) {
					set_problem(c->problem, sizeof(c->problem),
						    "%s:%u: Include nested deeper than %d", path,
						    lineno, DOCTOR_MAX_DEPTH);
					continue;
				}
				glob_t gl;
				memset(&gl, 0, sizeof(gl));
				if (glob(g, 0, NULL, &gl) != 0) {
					globfree(&gl);
					continue; /* sshd: a pattern that matches nothing is fine */
				}
				size_t rootlen = strlen(g) - strlen(rel);
				for (size_t i = 0; i < gl.gl_pathc; i++) {
					struct tu_err e2;
					tu_err_clear(&e2);
					r = sshd_load_file(root, gl.gl_pathv[i] + rootlen,
							   depth + 1, in_match, c, &e2);
					if (r == -EMSGSIZE) {
						globfree(&gl);
						return tu_err_set(reterr, r, "%s", e2.msg);
					}
					if (r < 0)
						set_problem(c->problem, sizeof(c->problem),
							    "%s:%u: Include %s: %s", path, lineno,
							    gl.gl_pathv[i] + rootlen, e2.msg);
				}
				globfree(&gl);
			}
			continue;
		}
		if (in_match)
			continue;
		r = sshd_add(c, k, klen, v, path, lineno, reterr);
		if (r < 0)
			return r;
	}
	return 0;
}

int doctor_sshd_load(const char *root, const char *path, struct doctor_sshd_conf *ret,
		     struct tu_err *reterr)
{
	memset(ret, 0, sizeof(*ret));
	return sshd_load_file(root, path, 0, false, ret, reterr);
}
