/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor.h - the parsers and judges behind `teleport-unix doctor`: the
 * nsswitch.conf database lines, PAM service stacks (with @include, include,
 * substack and the [value=action ...] control syntax) and sshd's
 * configuration (`sshd -T` output, or sshd_config with its Include'd
 * drop-ins).  Layer: cli (only the doctor uses them; no libcore state).
 *
 * Everything here reads files below a root directory ("" or "/" = the
 * real host; another directory for tests and chroots: every absolute path
 * found in a file is looked up below it), never follows more than
 * DOCTOR_MAX_DEPTH includes and holds at most DOCTOR_MAX_ENTRIES lines per
 * stack.  Pure functions besides the file reads; thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct tu_err;

#define DOCTOR_MAX_DEPTH     8   /* nested includes */
#define DOCTOR_MAX_ENTRIES   256 /* PAM lines in one flattened stack, sshd keywords */
#define DOCTOR_MAX_FILE      (256 * 1024)
#define DOCTOR_MAX_NSS_ITEMS 32

enum doctor_status {
	DOCTOR_OK = 0,
	DOCTOR_SKIPPED,
	DOCTOR_WARNING,
	DOCTOR_ERROR,
};

/* "ok", "skipped", "warning", "error". */
const char *doctor_status_name(enum doctor_status s);

/* One finding: what is wrong (msg), where (file:line, may be ""), the exact fix (may be ""). */
struct doctor_finding {
	enum doctor_status status;
	char msg[768];
	char where[512];
	char fix[768];
};

/* ------------------------------------------------------------ nsswitch */

struct doctor_nss_item {
	char text[64]; /* a service name, or an action without spaces, e.g. "[NOTFOUND=return]" */
	bool is_action;
};

struct doctor_nss_line {
	unsigned line; /* 1-based */
	char db[32];
	size_t n;
	struct doctor_nss_item items[DOCTOR_MAX_NSS_ITEMS];
};

/*
 * Parses one line of nsswitch.conf ("db: service [STATUS=action] ..."; '#'
 * starts a comment).  Returns 1 and fills *ret for a database line, 0 for a
 * blank or comment line, -EBADMSG for a line without ':' or with an
 * unterminated '[', -EMSGSIZE for more than DOCTOR_MAX_NSS_ITEMS items or an
 * item over 63 bytes (reterr says which).
 */
int doctor_nss_parse_line(const char *line, unsigned lineno, struct doctor_nss_line *ret,
			  struct tu_err *reterr);

/*
 * Judges the line of database db (l may be NULL: the line is missing) for
 * the module "teleport": present once, after "files" (or "compat"), not
 * cut off by a [NOTFOUND=return]-style action of an earlier service.
 * required: whether a missing line/entry is an error (passwd, group) or
 * acceptable (initgroups: glibc then uses the group line).  path names the
 * file in messages.
 */
void doctor_nss_judge(const char *db, const struct doctor_nss_line *l, bool required,
		      const char *path, struct doctor_finding *ret);

/* ------------------------------------------------------------------ PAM */

enum doctor_pam_action {
	DOCTOR_PAM_IGNORE = 0,
	DOCTOR_PAM_OK,
	DOCTOR_PAM_DONE,
	DOCTOR_PAM_BAD,
	DOCTOR_PAM_DIE,
	DOCTOR_PAM_RESET,
	DOCTOR_PAM_JUMP, /* skip the next `jump` modules */
};

/* The PAM return values a pam_teleport.so line has to handle. */
enum doctor_pam_rc {
	DOCTOR_RC_SUCCESS = 0,
	DOCTOR_RC_PERM_DENIED,
	DOCTOR_RC_USER_UNKNOWN,
	DOCTOR_RC_AUTHINFO_UNAVAIL,
	DOCTOR_RC_SYSTEM_ERR,     /* and the other errors that fall under "default" */
	DOCTOR_RC_MODULE_UNKNOWN, /* what libpam reports when the module cannot be loaded */
	DOCTOR_RC_SESSION_ERR,
	DOCTOR_RC_NEW_AUTHTOK_REQD, /* pam_unix: the password has expired */
	DOCTOR_RC_N,
};

struct doctor_pam_control {
	enum doctor_pam_action action[DOCTOR_RC_N];
	unsigned jump[DOCTOR_RC_N];
};

/*
 * Parses a control field: required, requisite, sufficient, optional or
 * "[value=action ...]" (action: ignore ok done bad die reset or a positive
 * number; unknown values are ignored as libpam does, every other return
 * value follows "default", whose own default is bad).  include and substack
 * are not controls (doctor_pam_load resolves them).
 * Errors: -EBADMSG (unknown keyword, '[' without ']', an action libpam
 * does not know), reterr says which.
 */
int doctor_pam_control_parse(const char *control, struct doctor_pam_control *ret,
			     struct tu_err *reterr);

struct doctor_pam_entry {
	char type[16];     /* account, auth, password, session (no leading '-') */
	char control[256]; /* as written */
	char module[256];  /* as written: a name or an absolute path */
	char args[512];
	char file[256]; /* the file the line is in (the root prefix removed) */
	unsigned line;
	char via[512];  /* "" or "included from /etc/pam.d/sshd:15" (innermost first) */
	char top[400];  /* the line of the service file that brings this one in:
			 * "'@include common-account' (/etc/pam.d/sshd:15)" */
	char scope[64]; /* "" at the top, "/1", "/1/2" inside substacks: done, die and jumps
			 * end or skip only within their own substack */
};

struct doctor_pam_stack {
	char service[64];
	char path[256]; /* /etc/pam.d/<service> (without the root) */
	size_t n;
	struct doctor_pam_entry entries[DOCTOR_MAX_ENTRIES];
	char problem[512]; /* "" or the first include or syntax problem met (with file:line) */
	unsigned n_scopes; /* substacks met so far */
};

/*
 * Reads <root>/etc/pam.d/<service> and flattens the lines of phase type
 * ("account", "session", ...) in the order libpam runs them: "@include
 * NAME" and "TYPE include|substack NAME" are inlined (NAME relative to
 * /etc/pam.d unless absolute), up to DOCTOR_MAX_DEPTH deep; backslash-newline
 * continues a line.  An unreadable included file or a malformed line is
 * recorded in ret->problem and skipped.  ret is large: allocate it.
 * Errors: -ENOENT (<service> file missing), -EMSGSIZE (over
 * DOCTOR_MAX_ENTRIES lines), other -errno reading the service file.
 */
int doctor_pam_load(const char *root, const char *service, const char *type,
		    struct doctor_pam_stack *ret, struct tu_err *reterr);

/* The module file name of e ("pam_unix.so" for "/lib/x86_64-linux-gnu/security/pam_unix.so"). */
const char *doctor_pam_module_base(const struct doctor_pam_entry *e);

/*
 * Judges where pam_teleport.so sits in the flattened account phase s:
 * present (error), not skipped by an earlier line's "done" or jump for any
 * result (error: e.g. Debian's pam_unix.so new_authtok_reqd=done), before
 * pam_unix.so (warning otherwise), once (warning).  Fills ret.
 */
void doctor_pam_judge_account(const struct doctor_pam_stack *s, struct doctor_finding *ret);

/*
 * Judges the control flags of pam_teleport.so line e in phase type: a
 * refusal, an error or an unloadable module must fail the stack (bad or
 * die), success must not, user_unknown should be ignored (account) so local
 * accounts keep working; authinfo_unavail=ignore is a warning.
 */
void doctor_pam_judge_control(const struct doctor_pam_entry *e, const char *type,
			      struct doctor_finding *ret);

/* ---------------------------------------------------------------- sshd */

struct doctor_sshd_kv {
	char key[48];     /* lower case */
	char value[1024]; /* the rest of the line, one level of surrounding quotes removed */
	char file[256];   /* "" for `sshd -T` */
	unsigned line;
};

struct doctor_sshd_conf {
	size_t n;
	struct doctor_sshd_kv kv[DOCTOR_MAX_ENTRIES];
	bool from_sshd_t;  /* read from `sshd -T` (complete, with defaults) */
	char problem[512]; /* "" or the first unreadable Include or bad line */
};

/*
 * Parses `sshd -T` output (lower-case "keyword value" lines) into ret.
 * Repeated keywords (e.g. several hostkey lines) keep the first.
 * Errors: -EMSGSIZE (over DOCTOR_MAX_ENTRIES keywords).
 */
int doctor_sshd_parse_t(const char *text, struct doctor_sshd_conf *ret, struct tu_err *reterr);

/*
 * Reads <root><path> like sshd does for its global settings: keywords are
 * case-insensitive, "Keyword value" or "Keyword=value", the first value
 * obtained for a keyword wins, "Include" (globs, relative to /etc/ssh) is
 * inlined where it stands, and everything after the first "Match" line is
 * conditional and not taken.  Unreadable includes go to ret->problem.
 * Errors: -ENOENT (path missing), other -errno reading it.
 */
int doctor_sshd_load(const char *root, const char *path, struct doctor_sshd_conf *ret,
		     struct tu_err *reterr);

/* The entry for keyword key (lower case), or NULL. */
const struct doctor_sshd_kv *doctor_sshd_get(const struct doctor_sshd_conf *c, const char *key);

/* ---------------------------------------------------------------- util */

/* Joins root and an absolute path p into buf: "/r" + "/etc/x" -> "/r/etc/x"; root "" or "/" gives
 * p. -ENAMETOOLONG when it does not fit. */
int doctor_path(const char *root, const char *p, char *buf, size_t size);
