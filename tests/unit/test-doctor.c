/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-doctor.c - table tests for the parsers and judges of `teleport-unix
 * doctor` (cli/doctor-parse.c): nsswitch.conf lines, PAM control fields, PAM
 * stacks flattened through @include / include / substack, the placement and
 * control judges, `sshd -T` output and sshd_config with Include and Match.
 * The PAM stacks are written into a temporary root shaped like Debian 12's
 * /etc/pam.d (common-account with pam_unix's jump) and RHEL's
 * (password-auth with pam_localuser "sufficient").
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
/* clang-format off */
#include <cmocka.h>
/* clang-format on */

#include "doctor.h"
#include "err.h"

/* ------------------------------------------------------------ helpers */

static char root[256];

static void put(const char *rel, const char *text)
{
	char p[512], dir[512];

	snprintf(p, sizeof(p), "%s%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", p);
	for (char *s = dir + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(dir, 0755);
		*s = '/';
	}
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup_root(void **state)
{
	(void) state;
	snprintf(root, sizeof(root), "/tmp/test-doctor-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown_root(void **state)
{
	char cmd[400];
	(void) state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* ------------------------------------------------------------ nsswitch */

static void test_nss_parse(void **state)
{
	struct doctor_nss_line l;
	struct tu_err e;
	(void) state;

	assert_int_equal(doctor_nss_parse_line("# comment\n", 1, &l, NULL), 0);
	assert_int_equal(doctor_nss_parse_line("   \n", 1, &l, NULL), 0);
	assert_int_equal(doctor_nss_parse_line("passwd:   files teleport # x\n", 3, &l, NULL), 1);
	assert_string_equal(l.db, "passwd");
	assert_int_equal(l.line, 3);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[1].text, "teleport");
	assert_false(l.items[1].is_action);

	assert_int_equal(
	    doctor_nss_parse_line("group: files [ NOTFOUND = return ] teleport\n", 1, &l, NULL), 1);
	assert_int_equal(l.n, 3);
	assert_true(l.items[1].is_action);
	assert_string_equal(l.items[1].text, "[NOTFOUND=return]");
	/* An action glued to a service name. */
	assert_int_equal(doctor_nss_parse_line("hosts: files[!UNAVAIL=return] dns\n", 1, &l, NULL),
			 1);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0].text, "files");
	assert_string_equal(l.items[1].text, "[!UNAVAIL=return]");

	tu_err_clear(&e);
	assert_int_equal(doctor_nss_parse_line("passwd files\n", 9, &l, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "line 9"));
	tu_err_clear(&e);
	assert_int_equal(doctor_nss_parse_line("passwd: files [NOTFOUND=return\n", 2, &l, &e),
			 -EBADMSG);
	assert_non_null(strstr(e.msg, "without ']'"));
	char big[2048] = "passwd:";
	for (int i = 0; i < 40; i++)
		strcat(big, " files");
	tu_err_clear(&e);
	assert_int_equal(doctor_nss_parse_line(big, 1, &l, &e), -EMSGSIZE);
}

struct nss_case {
	const char *line; /* NULL: no line */
	bool required;
	enum doctor_status st;
	const char *msg; /* substring */
	const char *fix; /* substring or NULL */
};

static void test_nss_judge(void **state)
{
	static const struct nss_case cases[] = {
	    {"passwd: files teleport", true, DOCTOR_OK, "files teleport", NULL},
	    {"passwd: files systemd teleport", true, DOCTOR_OK, "", NULL},
	    {"passwd: compat teleport", true, DOCTOR_OK, "", NULL},
	    {"passwd: files [UNAVAIL=return] teleport", true, DOCTOR_OK, "", NULL},
	    {"passwd: files systemd", true, DOCTOR_ERROR, "'teleport' is missing",
	     "'passwd: files teleport systemd'"},
	    {"passwd: teleport files", true, DOCTOR_ERROR, "comes before 'files'",
	     "'passwd: files teleport'"},
	    {"passwd: teleport", true, DOCTOR_ERROR, "no 'files'", "'passwd: files teleport'"},
	    {"passwd: files teleport teleport", true, DOCTOR_WARNING, "listed 2 times",
	     "'passwd: files teleport'"},
	    {"passwd: files [NOTFOUND=return] teleport", true, DOCTOR_ERROR, "stops the lookup",
	     "remove '[NOTFOUND=return]'"},
	    {"passwd: files [!SUCCESS=return] teleport", true, DOCTOR_ERROR, "stops the lookup",
	     NULL},
	    {"passwd: files [!NOTFOUND=return] teleport", true, DOCTOR_OK, "", NULL},
	    {"passwd: files teleport [NOTFOUND=return] systemd", true, DOCTOR_OK, "", NULL},
	    {NULL, true, DOCTOR_ERROR, "no 'passwd:' line", "'passwd: files teleport'"},
	    {NULL, false, DOCTOR_OK, "takes the group line", NULL},
	    {"passwd: files", false, DOCTOR_WARNING, "supplementary groups", NULL},
	};
	(void) state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct doctor_nss_line l;
		struct doctor_finding f;
		if (cases[i].line)
			assert_int_equal(doctor_nss_parse_line(cases[i].line, 7, &l, NULL), 1);
		doctor_nss_judge("passwd", cases[i].line ? &l : NULL, cases[i].required,
				 "/etc/nsswitch.conf", &f);
		if (f.status != cases[i].st || !strstr(f.msg, cases[i].msg) ||
		    (cases[i].fix && !strstr(f.fix, cases[i].fix)))
			fail_msg("case %zu '%s': status %s msg '%s' fix '%s'", i,
				 cases[i].line ? cases[i].line : "(none)",
				 doctor_status_name(f.status), f.msg, f.fix);
		if (cases[i].line)
			assert_string_equal(f.where, "/etc/nsswitch.conf:7");
	}
}

/* ------------------------------------------------------------------ PAM */

static void test_pam_control(void **state)
{
	struct doctor_pam_control c;
	struct tu_err e;
	(void) state;

	assert_int_equal(doctor_pam_control_parse("required", &c, NULL), 0);
	assert_int_equal(c.action[DOCTOR_RC_SUCCESS], DOCTOR_PAM_OK);
	assert_int_equal(c.action[DOCTOR_RC_PERM_DENIED], DOCTOR_PAM_BAD);
	assert_int_equal(c.action[DOCTOR_RC_USER_UNKNOWN], DOCTOR_PAM_BAD);
	assert_int_equal(doctor_pam_control_parse("Requisite", &c, NULL), 0);
	assert_int_equal(c.action[DOCTOR_RC_PERM_DENIED], DOCTOR_PAM_DIE);
	assert_int_equal(doctor_pam_control_parse("sufficient", &c, NULL), 0);
	assert_int_equal(c.action[DOCTOR_RC_SUCCESS], DOCTOR_PAM_DONE);
	assert_int_equal(c.action[DOCTOR_RC_NEW_AUTHTOK_REQD], DOCTOR_PAM_DONE);
	assert_int_equal(c.action[DOCTOR_RC_PERM_DENIED], DOCTOR_PAM_IGNORE);
	assert_int_equal(doctor_pam_control_parse("optional", &c, NULL), 0);
	assert_int_equal(c.action[DOCTOR_RC_SYSTEM_ERR], DOCTOR_PAM_IGNORE);

	assert_int_equal(
	    doctor_pam_control_parse("[success=ok user_unknown=ignore default=bad]", &c, NULL), 0);
	assert_int_equal(c.action[DOCTOR_RC_SUCCESS], DOCTOR_PAM_OK);
	assert_int_equal(c.action[DOCTOR_RC_USER_UNKNOWN], DOCTOR_PAM_IGNORE);
	assert_int_equal(c.action[DOCTOR_RC_PERM_DENIED], DOCTOR_PAM_BAD);
	assert_int_equal(c.action[DOCTOR_RC_MODULE_UNKNOWN], DOCTOR_PAM_BAD);
	/* Without default= the default is bad; jumps; case-insensitive; unknown values ignored. */
	assert_int_equal(
	    doctor_pam_control_parse("[SUCCESS=2 new_authtok_reqd=done bogus=ok]", &c, NULL), 0);
	assert_int_equal(c.action[DOCTOR_RC_SUCCESS], DOCTOR_PAM_JUMP);
	assert_int_equal(c.jump[DOCTOR_RC_SUCCESS], 2);
	assert_int_equal(c.action[DOCTOR_RC_NEW_AUTHTOK_REQD], DOCTOR_PAM_DONE);
	assert_int_equal(c.action[DOCTOR_RC_AUTHINFO_UNAVAIL], DOCTOR_PAM_BAD);
	assert_int_equal(doctor_pam_control_parse("[default=ignore success=ok]", &c, NULL), 0);
	assert_int_equal(c.action[DOCTOR_RC_PERM_DENIED], DOCTOR_PAM_IGNORE);

	static const char *const bad[] = {"requried",        "[success=ok", "[success]",
					  "[success=maybe]", "[success=0]", "[success=-1]",
					  "include"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_err_clear(&e);
		if (doctor_pam_control_parse(bad[i], &c, &e) != -EBADMSG || e.msg[0] == '\0')
			fail_msg("'%s' was accepted", bad[i]);
	}
}

static const char common_account[] =
    "# Debian 12 shape\n"
    "account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so \n"
    "account\trequisite\t\t\tpam_deny.so\n"
    "account\trequired\t\t\tpam_permit.so\n";

static const char teleport_include[] =
    "# our include\n"
    "account [success=ok user_unknown=ignore default=bad] pam_teleport.so\n"
    "session [success=ok ignore=ignore default=bad] pam_teleport.so\n";

static void test_pam_load_include(void **state)
{
	struct doctor_pam_stack *s = calloc(1, sizeof(*s));
	struct tu_err e;
	(void) state;

	assert_non_null(s);
	put("/etc/pam.d/common-account", common_account);
	put("/etc/pam.d/teleport", teleport_include);
	put("/etc/pam.d/sshd", "@include common-auth\n"
			       "account    required     pam_nologin.so\n"
			       "@include teleport\n"
			       "@include common-account\n"
			       "session required pam_limits.so \\\n   conf=/x\n"
			       "-session optional pam_systemd.so\n");
	put("/etc/pam.d/common-auth", "auth required pam_unix.so\n");
	tu_err_clear(&e);
	assert_int_equal(doctor_pam_load(root, "sshd", "account", s, &e), 0);
	assert_int_equal(s->n, 5);
	assert_string_equal(doctor_pam_module_base(&s->entries[0]), "pam_nologin.so");
	assert_string_equal(doctor_pam_module_base(&s->entries[1]), "pam_teleport.so");
	assert_string_equal(s->entries[1].file, "/etc/pam.d/teleport");
	assert_int_equal(s->entries[1].line, 2);
	assert_string_equal(s->entries[1].via, "included from /etc/pam.d/sshd:3");
	assert_string_equal(s->entries[1].top, "'@include teleport' (/etc/pam.d/sshd:3)");
	assert_string_equal(s->entries[2].control,
			    "[success=1 new_authtok_reqd=done default=ignore]");
	assert_string_equal(s->entries[0].top,
			    "'account    required     pam_nologin.so' (/etc/pam.d/sshd:2)");
	assert_string_equal(s->problem, "");

	/* The session phase, with a continued line and a "-" type. */
	assert_int_equal(doctor_pam_load(root, "sshd", "session", s, &e), 0);
	assert_int_equal(s->n, 3);
	assert_string_equal(s->entries[1].args, "conf=/x");
	assert_string_equal(doctor_pam_module_base(&s->entries[2]), "pam_systemd.so");

	struct doctor_finding f;
	assert_int_equal(doctor_pam_load(root, "sshd", "account", s, &e), 0);
	doctor_pam_judge_account(s, &f);
	assert_int_equal(f.status, DOCTOR_OK);
	assert_string_equal(f.where, "/etc/pam.d/teleport:2 (included from /etc/pam.d/sshd:3)");
	doctor_pam_judge_control(&s->entries[1], "account", &f);
	assert_int_equal(f.status, DOCTOR_OK);

	/* A missing service file; a missing include is a problem, not a failure. */
	assert_int_equal(doctor_pam_load(root, "nope", "account", s, &e), -ENOENT);
	put("/etc/pam.d/login", "@include common-nothing\naccount include common-account\n");
	assert_int_equal(doctor_pam_load(root, "login", "account", s, &e), 0);
	assert_non_null(strstr(s->problem, "/etc/pam.d/login:1: @include common-nothing"));
	assert_int_equal(s->n, 3);
	/* Include loops stop at the depth limit. */
	put("/etc/pam.d/loop", "@include loop\naccount required pam_permit.so\n");
	assert_int_equal(doctor_pam_load(root, "loop", "account", s, &e), 0);
	assert_non_null(strstr(s->problem, "nested deeper"));
	free(s);
}

struct placement_case {
	const char *sshd;
	const char *common;
	enum doctor_status st;
	const char *msg;
	const char *fix;
};

static void test_pam_judge_account(void **state)
{
	static const struct placement_case cases[] = {
	    /* The documented layout. */
	    {"@include teleport\n@include common-account\n", common_account, DOCTOR_OK,
	     "before pam_unix.so", NULL},
	    /* Not there at all: the fix names the include that brings in pam_unix. */
	    {"account required pam_nologin.so\n@include common-account\n", common_account,
	     DOCTOR_ERROR, "not in the account phase of sshd",
	     "right before '@include common-account' (/etc/pam.d/sshd:2)"},
	    /* After Debian's common-account: pam_unix's new_authtok_reqd=done skips it (expired
	     * local passwords only: a warning). */
	    {"@include common-account\n@include teleport\n", common_account, DOCTOR_WARNING,
	     "skipped in the account phase of sshd whenever pam_unix.so",
	     "move '@include teleport' (/etc/pam.d/sshd:2) before '@include common-account' (/etc/pam.d/sshd:1)"},
	    /* pam-auth-update "Additional" block: same, inside common-account. */
	    {"@include common-account\n",
	     "account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so\n"
	     "account requisite pam_deny.so\naccount required pam_permit.so\n"
	     "account [success=ok user_unknown=ignore default=bad] pam_teleport.so\n",
	     DOCTOR_WARNING, "new_authtok_reqd", "move the pam_teleport.so line (4) above line 1"},
	    /* pam_unix "sufficient": skipped on success, an error (even after an aging skip). */
	    {"account [success=ok new_authtok_reqd=done default=bad] pam_nologin.so\naccount sufficient pam_unix.so\n@include teleport\n",
	     "", DOCTOR_ERROR, "whenever pam_unix.so", NULL},
	    /* After a plain required pam_unix: reached, but a warning. */
	    {"account required pam_unix.so\n@include teleport\n", "", DOCTOR_WARNING,
	     "runs after pam_unix.so",
	     "move '@include teleport' (/etc/pam.d/sshd:2) so that it comes before 'account required pam_unix.so' (/etc/pam.d/sshd:1)"},
	    /* RHEL: pam_localuser sufficient before it. */
	    {"account sufficient pam_localuser.so\n@include teleport\naccount required pam_unix.so\n",
	     "", DOCTOR_ERROR, "whenever pam_localuser.so", NULL},
	    /* A jump over it. */
	    {"account [success=2 default=ignore] pam_succeed_if.so uid < 1000\naccount required pam_permit.so\n@include teleport\n",
	     "", DOCTOR_ERROR, "pam_succeed_if.so", NULL},
	    /* "sufficient" inside a substack ends only the substack: reached (after pam_unix). */
	    {"account substack common-account\n@include teleport\n",
	     "account required pam_unix.so\naccount sufficient pam_localuser.so\n", DOCTOR_WARNING,
	     "runs after pam_unix.so", NULL},
	    /* The same lines included: skipped. */
	    {"account include common-account\n@include teleport\n",
	     "account required pam_unix.so\naccount sufficient pam_localuser.so\n", DOCTOR_ERROR,
	     "whenever pam_localuser.so", NULL},
	    /* Both in the same substack: skipped there. */
	    {"account substack common-account\n",
	     "account sufficient pam_localuser.so\naccount [success=ok user_unknown=ignore default=bad] pam_teleport.so\n",
	     DOCTOR_ERROR, "whenever pam_localuser.so", NULL},
	    /* A jump that lands on it is fine. */
	    {"account [success=1 default=ignore] pam_succeed_if.so uid < 1000\naccount required pam_permit.so\n@include teleport\n",
	     "", DOCTOR_OK, "", NULL},
	    /* Twice: include and pam-auth-update. */
	    {"@include teleport\n@include common-account\n",
	     "account [success=ok user_unknown=ignore default=bad] pam_teleport.so\n"
	     "account required pam_unix.so\n",
	     DOCTOR_WARNING, "2 times", NULL},
	};
	struct doctor_pam_stack *s = calloc(1, sizeof(*s));
	(void) state;

	assert_non_null(s);
	put("/etc/pam.d/teleport", teleport_include);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct doctor_finding f;
		put("/etc/pam.d/sshd", cases[i].sshd);
		put("/etc/pam.d/common-account", cases[i].common);
		assert_int_equal(doctor_pam_load(root, "sshd", "account", s, NULL), 0);
		doctor_pam_judge_account(s, &f);
		if (f.status != cases[i].st || !strstr(f.msg, cases[i].msg) ||
		    (cases[i].fix && !strstr(f.fix, cases[i].fix)))
			fail_msg("case %zu: status %s msg '%s' fix '%s'", i,
				 doctor_status_name(f.status), f.msg, f.fix);
	}
	free(s);
}

struct control_case {
	const char *control;
	const char *type;
	enum doctor_status st;
	const char *msg;
};

static void test_pam_judge_control(void **state)
{
	static const struct control_case cases[] = {
	    {"[success=ok user_unknown=ignore default=bad]", "account", DOCTOR_OK, "fails closed"},
	    {"[success=ok user_unknown=ignore default=die]", "account", DOCTOR_OK, ""},
	    {"requisite", "account", DOCTOR_WARNING, "user_unknown is die"},
	    {"required", "account", DOCTOR_WARNING, "root and other local accounts"},
	    {"optional", "account", DOCTOR_ERROR, "fails open"},
	    {"sufficient", "account", DOCTOR_ERROR, "perm_denied is ignore"},
	    {"[success=ok user_unknown=ignore authinfo_unavail=ignore default=bad]", "account",
	     DOCTOR_WARNING, "authinfo_unavail is ignore"},
	    {"[success=ok user_unknown=ignore authinfo_unavail=ok default=bad]", "account",
	     DOCTOR_ERROR, "authinfo_unavail is ok"},
	    {"[success=ok user_unknown=ignore perm_denied=ignore default=bad]", "account",
	     DOCTOR_ERROR, "perm_denied is ignore"},
	    {"[success=ok user_unknown=ignore module_unknown=ignore default=bad]", "account",
	     DOCTOR_ERROR, "module_unknown"},
	    {"[success=ok user_unknown=ignore default=ignore]", "account", DOCTOR_ERROR,
	     "fails open"},
	    {"[success=bad user_unknown=ignore default=bad]", "account", DOCTOR_ERROR,
	     "every login Teleport allows"},
	    {"[success=ok ignore=ignore default=bad]", "session", DOCTOR_OK, ""},
	    {"[success=ok session_err=ignore default=bad]", "session", DOCTOR_ERROR, "session_err"},
	    {"[success=ok user_unknown=ignore default=bad", "account", DOCTOR_ERROR, "without ']'"},
	};
	(void) state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct doctor_pam_entry e;
		struct doctor_finding f;
		memset(&e, 0, sizeof(e));
		snprintf(e.control, sizeof(e.control), "%s", cases[i].control);
		snprintf(e.module, sizeof(e.module), "pam_teleport.so");
		snprintf(e.file, sizeof(e.file), "/etc/pam.d/teleport");
		e.line = 4;
		doctor_pam_judge_control(&e, cases[i].type, &f);
		if (f.status != cases[i].st || !strstr(f.msg, cases[i].msg))
			fail_msg("case %zu '%s': status %s msg '%s'", i, cases[i].control,
				 doctor_status_name(f.status), f.msg);
		if (f.status != DOCTOR_OK && !strstr(f.fix, "/etc/pam.d/teleport:4"))
			fail_msg("case %zu: fix '%s'", i, f.fix);
	}
}

/* ---------------------------------------------------------------- sshd */

static void test_sshd_t(void **state)
{
	struct doctor_sshd_conf *c = calloc(1, sizeof(*c));
	(void) state;

	assert_non_null(c);
	assert_int_equal(
	    doctor_sshd_parse_t(
		"port 22\nusepam yes\nhostkey /a\nhostkey /b\n"
		"authorizedprincipalscommand /usr/bin/teleport-unix ssh-principals %u %t %k\n"
		"trustedusercakeys none\n\n",
		c, NULL),
	    0);
	assert_true(c->from_sshd_t);
	assert_string_equal(doctor_sshd_get(c, "usepam")->value, "yes");
	assert_string_equal(doctor_sshd_get(c, "hostkey")->value, "/a");
	assert_string_equal(doctor_sshd_get(c, "authorizedprincipalscommand")->value,
			    "/usr/bin/teleport-unix ssh-principals %u %t %k");
	assert_string_equal(doctor_sshd_get(c, "trustedusercakeys")->value, "none");
	assert_null(doctor_sshd_get(c, "exposeauthinfo"));
	free(c);
}

static void test_sshd_load(void **state)
{
	struct doctor_sshd_conf *c = calloc(1, sizeof(*c));
	struct tu_err e;
	(void) state;

	assert_non_null(c);
	put("/etc/ssh/sshd_config", "# stock\n"
				    "Include /etc/ssh/sshd_config.d/*.conf\n"
				    "UsePAM yes\n"
				    "ExposeAuthInfo no\n"
				    "TrustedUserCAKeys \"/etc/ssh/ca.pub\"\n"
				    "Match User bob\n"
				    "  AuthorizedPrincipalsCommand /bin/false\n");
	put("/etc/ssh/sshd_config.d/10-teleport.conf", "exposeauthinfo=yes\n"
						       "Match Group nobody\n"
						       "  UsePAM no\n");
	put("/etc/ssh/sshd_config.d/20-other.conf", "ExposeAuthInfo no\nUsePAM no\n");
	put("/etc/ssh/sshd_config.d/ignored.txt", "UsePAM no\n");
	tu_err_clear(&e);
	assert_int_equal(doctor_sshd_load(root, "/etc/ssh/sshd_config", c, &e), 0);
	assert_false(c->from_sshd_t);
	/* First value wins: the drop-in (included at the top) beats the main file. */
	const struct doctor_sshd_kv *kv = doctor_sshd_get(c, "exposeauthinfo");
	assert_non_null(kv);
	assert_string_equal(kv->value, "yes");
	assert_string_equal(kv->file, "/etc/ssh/sshd_config.d/10-teleport.conf");
	assert_int_equal(kv->line, 1);
	/* 20-other.conf sets UsePAM no first: a Match in 10-teleport.conf ends with that file. */
	kv = doctor_sshd_get(c, "usepam");
	assert_string_equal(kv->value, "no");
	assert_string_equal(kv->file, "/etc/ssh/sshd_config.d/20-other.conf");
	assert_string_equal(doctor_sshd_get(c, "trustedusercakeys")->value, "/etc/ssh/ca.pub");
	/* After Match: conditional, not global. */
	assert_null(doctor_sshd_get(c, "authorizedprincipalscommand"));
	assert_string_equal(c->problem, "");

	/* A relative Include is relative to /etc/ssh; a missing main file is -ENOENT. */
	put("/etc/ssh/sshd_config", "Include sshd_config.d/10-teleport.conf\n");
	assert_int_equal(doctor_sshd_load(root, "/etc/ssh/sshd_config", c, &e), 0);
	assert_string_equal(doctor_sshd_get(c, "exposeauthinfo")->value, "yes");
	assert_int_equal(doctor_sshd_load(root, "/etc/ssh/none", c, &e), -ENOENT);
	/* An Include loop stops at the depth limit. */
	put("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config\nUsePAM yes\n");
	assert_int_equal(doctor_sshd_load(root, "/etc/ssh/sshd_config", c, &e), 0);
	assert_non_null(strstr(c->problem, "nested deeper"));
	assert_string_equal(doctor_sshd_get(c, "usepam")->value, "yes");
	free(c);
}

/* Hostile files: random bytes, long lines, unterminated brackets and quotes, NULs.  Every
 * parser must return (an error or a result), never crash or read out of bounds (run under
 * ASan/valgrind by the suite). */
static void test_garbage(void **state)
{
	static const char *const pieces[] = {
	    "@include ",
	    "account ",
	    "-session ",
	    "[",
	    "]",
	    "success=",
	    "default=bad ",
	    "1 ",
	    "pam_teleport.so ",
	    "\\\n",
	    "\n",
	    "#",
	    " ",
	    "\t",
	    "Include ",
	    "Match ",
	    "=",
	    "\"",
	    "UsePAM yes",
	    "passwd:",
	    "files",
	    "[NOTFOUND=return",
	    "teleport",
	    "*",
	    "/etc/ssh/sshd_config",
	    "common-account",
	    "include ",
	    "substack ",
	    "\x01\xff",
	};
	struct doctor_pam_stack *s = calloc(1, sizeof(*s));
	struct doctor_sshd_conf *c = calloc(1, sizeof(*c));
	unsigned seed = 12345;
	char *buf = malloc(70000);
	(void) state;

	assert_non_null(s);
	assert_non_null(c);
	assert_non_null(buf);
	for (int round = 0; round < 300; round++) {
		size_t len = 0;
		int n = (int) ((seed = seed * 1103515245u + 12345u) >> 16) % 200;
		for (int i = 0; i < n && len < 60000; i++) {
			seed = seed * 1103515245u + 12345u;
			const char *p = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
			size_t l = strlen(p);
			memcpy(buf + len, p, l);
			len += l;
			if ((seed >> 8) % 17 == 0) { /* a run of junk bytes or a very long token */
				size_t k = (seed >> 4) % 5000;
				for (size_t j = 0; j < k && len < 65000; j++)
					buf[len++] = (char) ('a' + (j % 26));
			}
		}
		buf[len] = '\0';
		put("/etc/pam.d/g", buf);
		put("/etc/pam.d/common-account", buf);
		put("/etc/ssh/sshd_config", buf);
		(void) doctor_pam_load(root, "g", "account", s, NULL);
		struct doctor_finding f;
		doctor_pam_judge_account(s, &f);
		for (size_t i = 0; i < s->n; i++)
			doctor_pam_judge_control(&s->entries[i], "account", &f);
		(void) doctor_sshd_load(root, "/etc/ssh/sshd_config", c, NULL);
		(void) doctor_sshd_parse_t(buf, c, NULL);
		struct doctor_nss_line l;
		if (doctor_nss_parse_line(buf, 1, &l, NULL) == 1)
			doctor_nss_judge("passwd", &l, true, "/etc/nsswitch.conf", &f);
	}
	free(buf);
	free(s);
	free(c);
}

static void test_path(void **state)
{
	char b[16];
	(void) state;

	assert_int_equal(doctor_path("", "/etc/x", b, sizeof(b)), 0);
	assert_string_equal(b, "/etc/x");
	assert_int_equal(doctor_path("/", "/etc/x", b, sizeof(b)), 0);
	assert_string_equal(b, "/etc/x");
	assert_int_equal(doctor_path("/r", "/etc/x", b, sizeof(b)), 0);
	assert_string_equal(b, "/r/etc/x");
	assert_int_equal(doctor_path("/rrrrrrrrrrrr", "/etc/x", b, sizeof(b)), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nss_parse),
	    cmocka_unit_test(test_nss_judge),
	    cmocka_unit_test(test_pam_control),
	    cmocka_unit_test(test_pam_load_include),
	    cmocka_unit_test(test_pam_judge_account),
	    cmocka_unit_test(test_pam_judge_control),
	    cmocka_unit_test(test_sshd_t),
	    cmocka_unit_test(test_sshd_load),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_path),
	};
	return cmocka_run_group_tests(tests, setup_root, teardown_root);
}
