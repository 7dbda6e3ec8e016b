/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-doctor.c - `teleport-unix doctor`: checks how this host is wired to
 * teleport-unix and prints, for every problem, what is wrong, where and the
 * exact fix.  In the spirit of `sssctl config-check`, but beyond the config
 * file: nsswitch.conf, the NSS and PAM modules where glibc and libpam load
 * them, the PAM stacks of sshd, login and su, sshd's configuration, file
 * permissions, the cache and Auth.  Exit 0 all ok, 1 warnings only, 2 errors.
 *
 * --root DIR reads DIR/etc/... instead of /etc/... (tests, chroots, images):
 * every absolute path found in the files read (credentials, cache.dir,
 * TrustedUserCAKeys, includes) is looked up below DIR too; `sshd -T` is not
 * run then (it would read the host's files).
 */
/* Messages, places and fixes are composed into fixed buffers and cut when a path is absurdly
 * long: a shortened message is acceptable, an unbounded one is not. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "cleanup.h"
#include "cli.h"
#include "conf.h"
#include "creds.h"
#include "ctx.h"
#include "doctor.h"
#include "err.h"
#include "fsutil.h"
#include "snapshot.h"

#define SSHD_T_TIMEOUT_MS 5000
#define SSHD_T_MAX_OUTPUT (256 * 1024)

struct check {
	char *id;
	enum doctor_status status;
	char *msg, *where, *fix;
};

struct doc {
	const char *root; /* "" = the host */
	bool offline;
	bool insecure_perms;
	struct check *v;
	size_t n, cap;
	char libdir[256]; /* where glibc loaded libc from, e.g. /lib/x86_64-linux-gnu */
	const struct doctor_sshd_conf *sshd_files; /* sshd_config as read by us, beside `sshd -T` */
	const char *sshd;                          /* --sshd: the sshd whose -T output to use */
	char **seen; /* files whose owner and mode were checked (check_system_file) */
	size_t n_seen;
	bool oom;
};

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static void add(struct doc *d, const char *id, enum doctor_status st, const char *where,
		const char *fix, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void add(struct doc *d, const char *id, enum doctor_status st, const char *where,
		const char *fix, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 32;
		struct check *nv = reallocarray(d->v, ncap, sizeof(*nv));
		if (!nv) {
			d->oom = true;
			return;
		}
		d->v = nv;
		d->cap = ncap;
	}
	struct check *c = &d->v[d->n++];
	c->id = strdup(id);
	c->status = st;
	c->msg = strdup(msg);
	c->where = dup_or_null(where);
	c->fix = st == DOCTOR_OK || st == DOCTOR_SKIPPED ? NULL : dup_or_null(fix);
	if (!c->id || !c->msg)
		d->oom = true;
}

static void add_finding(struct doc *d, const char *id, const struct doctor_finding *f)
{
	add(d, id, f->status, f->where, f->fix, "%s", f->msg);
}

static void doc_done(struct doc *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].id);
		free(d->v[i].msg);
		free(d->v[i].where);
		free(d->v[i].fix);
	}
	free(d->v);
	for (size_t i = 0; i < d->n_seen; i++)
		free(d->seen[i]);
	free(d->seen);
}

/* root + p (p absolute) into buf; on overflow buf holds "" (every later open then fails). */
static const char *rooted(const struct doc *d, const char *p, char *buf, size_t size)
{
	if (doctor_path(d->root, p, buf, size) < 0)
		buf[0] = '\0';
	return buf;
}

/* ------------------------------------------------------- file trust */

/* Checks that the file at p (a host path: shown in messages, opened below the root) passes the
 * config loader's trust rules (base/fsutil.h: root-owned, not group/other-writable, and for
 * secrets not readable by others).  Adds a check only on a problem; returns 0 when trusted. */
static int check_trusted(struct doc *d, const char *id, const char *p, bool secret)
{
	char full[4096], fix[1024], buf[1024];
	struct tu_err e;
	struct stat st;

	rooted(d, p, full, sizeof(full));
	_cleanup_close_ int fd =
	    open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int r = -errno;
		if (r == -ELOOP)
			add(d, id, DOCTOR_ERROR, p,
			    "replace the symlink by the file itself (teleport-unix opens it with O_NOFOLLOW)",
			    "%s is a symbolic link: teleport-unix refuses to follow it", p);
		else
			add(d, id, DOCTOR_ERROR, p,
			    r == -ENOENT
				? "create the file, or correct the path in the configuration"
				: "",
			    "cannot open %s: %s", p, strerror(-r));
		return r;
	}
	if (d->insecure_perms)
		return 0;
	tu_err_clear(&e);
	int r = tu_fs_check_trusted(fd, p, secret ? TU_FS_SECRET : 0, &e);
	if (r >= 0)
		return 0;
	if (fstat(fd, &st) < 0)
		st.st_mode = 0;
	if (r == -EPERM)
		snprintf(fix, sizeof(fix), "chown root:root %s", p);
	else if (secret)
		snprintf(fix, sizeof(fix), "chmod %04o %s", (unsigned) (st.st_mode & 0750 & ~0022u),
			 p);
	else
		snprintf(fix, sizeof(fix), "chmod go-w %s", p);
	add(d, id, DOCTOR_ERROR, p, fix, "%s", tu_err_format(&e, buf, sizeof(buf)));
	return r;
}

/* A file that decides who logs in (nsswitch.conf, a PAM stack, sshd_config, a module): whoever
 * may write it owns the host.  Checked once per path; adds a check only on a problem. */
static void check_system_file(struct doc *d, const char *p)
{
	char full[4200], fix[1200];
	struct stat st;

	if (d->insecure_perms || !p || p[0] != '/')
		return;
	for (size_t i = 0; i < d->n_seen; i++)
		if (strcmp(d->seen[i], p) == 0)
			return;
	char **ns = reallocarray(d->seen, d->n_seen + 1, sizeof(*ns));
	if (!ns) {
		d->oom = true;
		return;
	}
	d->seen = ns;
	d->seen[d->n_seen] = strdup(p);
	if (!d->seen[d->n_seen]) {
		d->oom = true;
		return;
	}
	d->n_seen++;
	if (stat(rooted(d, p, full, sizeof(full)), &st) < 0)
		return;
	if (st.st_uid == 0 && !(st.st_mode & 0022))
		return;
	if (st.st_uid != 0)
		snprintf(fix, sizeof(fix), "chown root:root %s", p);
	else
		snprintf(fix, sizeof(fix), "chmod go-w %s", p);
	add(d, "files.perms", DOCTOR_ERROR, p, fix,
	    "%s is %s (mode %04o): whoever can change it decides who logs in here", p,
	    st.st_uid != 0 ? "not owned by root" : "writable by group or others",
	    (unsigned) (st.st_mode & 07777));
}

/* ------------------------------------------------------------ config */

static void conf_freep(struct tu_conf **p)
{
	tu_conf_free(*p);
}

static struct tu_conf *check_config(struct doc *d, const char *path, const char *shown)
{
	struct tu_conf *conf = NULL;
	struct tu_err e;
	char buf[1200], fix[1200], where[600];
	int r;

	tu_err_clear(&e);
	r = tu_conf_load(path, TU_CONF_RELAXED_PERMS, &conf, &e);
	if (r == -ENOENT) {
		add(d, "config.file", DOCTOR_ERROR, shown,
		    "write the file from the example teleport-unix.yaml shipped with teleport-unix (auth.addresses and auth.credentials are required), owned by root, mode 0644",
		    "%s does not exist: the NSS and PAM modules have no configuration", shown);
		return NULL;
	}
	if (r < 0) {
		if (e.line)
			snprintf(where, sizeof(where), "%s:%u", shown, e.line);
		else
			snprintf(where, sizeof(where), "%s", shown);
		if (r == -ELOOP)
			snprintf(
			    fix, sizeof(fix),
			    "replace the symlink %s by the file itself (the modules open it with O_NOFOLLOW)",
			    shown);
		else if (e.key[0])
			snprintf(
			    fix, sizeof(fix),
			    "correct '%s' at %s (every key, its type and default are described in the example teleport-unix.yaml)",
			    e.key, where);
		else
			snprintf(fix, sizeof(fix),
				 "correct %s (see the example teleport-unix.yaml)", where);
		add(d, "config.file", DOCTOR_ERROR, where, fix, "%s",
		    tu_err_format(&e, buf, sizeof(buf)));
		return NULL;
	}
	/* The owner and mode with the loader's own rule (what PAM and NSS enforce). */
	if (d->insecure_perms) {
		add(d, "config.file", DOCTOR_OK, shown, NULL,
		    "%s is valid (owner and mode not checked: --insecure-perms)", shown);
		return conf;
	}
	struct tu_err e2;
	tu_err_clear(&e2);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		add(d, "config.file", DOCTOR_ERROR, shown,
		    "replace the symlink by the file itself (the modules open it with O_NOFOLLOW)",
		    "cannot open %s without following links: %s", shown, strerror(errno));
		return conf;
	}
	r = tu_fs_check_trusted(fd, shown, 0, &e2);
	if (r < 0) {
		snprintf(fix, sizeof(fix), r == -EPERM ? "chown root:root %s" : "chmod go-w %s",
			 shown);
		add(d, "config.file", DOCTOR_ERROR, shown, fix,
		    "%s (the PAM module and every command refuse it)",
		    tu_err_format(&e2, buf, sizeof(buf)));
		return conf;
	}
	add(d, "config.file", DOCTOR_OK, shown, NULL,
	    "%s is valid, owned by root and not writable by others", shown);
	return conf;
}

/* ------------------------------------------------------- credentials */

static struct tu_creds *check_creds(struct doc *d, const struct tu_conf *conf, int64_t now)
{
	struct tu_creds *creds = NULL;
	struct tu_err e;
	char buf[1200], a[4096], b[4096], c[4096];
	int r, bad = 0;

	if (conf->identity_file) {
		if (check_trusted(d, "credentials.perms", conf->identity_file, true) < 0)
			bad++;
	} else {
		if (check_trusted(d, "credentials.perms", conf->cert_path, false) < 0)
			bad++;
		if (check_trusted(d, "credentials.perms", conf->key_path, true) < 0)
			bad++;
		if (check_trusted(d, "credentials.perms", conf->ca_path, false) < 0)
			bad++;
	}
	if (bad == 0)
		add(d, "credentials.perms", d->insecure_perms ? DOCTOR_SKIPPED : DOCTOR_OK,
		    conf->identity_file ? conf->identity_file : conf->key_path, NULL,
		    d->insecure_perms
			? "owner and mode not checked (--insecure-perms)"
			: "credential files are owned by root, not writable by others, the key not readable by others");

	tu_err_clear(&e);
	if (conf->identity_file)
		r = tu_creds_load_identity(rooted(d, conf->identity_file, a, sizeof(a)), now,
					   TU_CREDS_RELAXED_PERMS, &creds, &e);
	else
		r = tu_creds_load_key_pair(rooted(d, conf->cert_path, a, sizeof(a)),
					   rooted(d, conf->key_path, b, sizeof(b)),
					   rooted(d, conf->ca_path, c, sizeof(c)), now,
					   TU_CREDS_RELAXED_PERMS, &creds, &e);
	const char *src = conf->identity_file ? conf->identity_file : conf->cert_path;
	if (r == -EKEYEXPIRED) {
		add(d, "credentials.valid", DOCTOR_ERROR, src,
		    "issue a new credential (e.g. tctl auth sign --format=tls ...) and replace the files",
		    "%s", tu_err_format(&e, buf, sizeof(buf)));
		return NULL;
	}
	if (r < 0) {
		if (r != -ENOENT && r != -ELOOP)
			add(d, "credentials.valid", DOCTOR_ERROR, src,
			    "replace the credential files with a matching key, certificate and CA (tctl auth sign --format=tls, or --format=file for auth.credentials.identity_file)",
			    "%s", tu_err_format(&e, buf, sizeof(buf)));
		return NULL;
	}
	char t[64];
	time_t na = (time_t) (tu_creds_not_after_usec(creds) / 1000000);
	struct tm tm;
	if (!gmtime_r(&na, &tm) || strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(t, sizeof(t), "?");
	if (tu_creds_expiring_soon(creds, now))
		add(d, "credentials.valid", DOCTOR_WARNING, src,
		    "issue a new credential (tctl auth sign) before it expires and replace the files",
		    "the credential of %s expires at %s, in less than 7 days",
		    tu_creds_subject_cn(creds), t);
	else
		add(d, "credentials.valid", DOCTOR_OK, src, NULL,
		    "credential of %s, valid until %s", tu_creds_subject_cn(creds), t);
	return creds;
}

/* -------------------------------------------------------------- cache */

static void fmt_dur(int64_t usec, char *buf, size_t size)
{
	int64_t s = usec / 1000000;

	if (s < 120)
		snprintf(buf, size, "%llds", (long long) s);
	else if (s < 7200)
		snprintf(buf, size, "%lldm", (long long) (s / 60));
	else
		snprintf(buf, size, "%lldh", (long long) (s / 3600));
}

/* Returns whether the state snapshot can decide a login offline now. */
static bool check_cache(struct doc *d, struct tu_conf *conf, int64_t now)
{
	char full[4096], p[4096], fix[10000], a1[32], a2[32];
	struct stat st;
	const char *dir = conf->cache_dir;
	bool usable = false;

	rooted(d, dir, full, sizeof(full));
	if (stat(full, &st) < 0) {
		add(d, "cache.dir", DOCTOR_ERROR, dir,
		    "run 'teleport-unix sync' (it creates the directory and both snapshots), and enable the timer: systemctl enable --now teleport-unix-sync.timer",
		    "cache.dir %s does not exist: no sync has run, NSS serves no Teleport account and offline logins are impossible",
		    dir);
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		add(d, "cache.dir", DOCTOR_ERROR, dir, "remove it or point cache.dir elsewhere",
		    "cache.dir %s is not a directory", dir);
		return false;
	}
	if (!d->insecure_perms && st.st_uid != 0) {
		snprintf(fix, sizeof(fix), "chown root:root %s", dir);
		add(d, "cache.dir", DOCTOR_ERROR, dir, fix,
		    "cache.dir %s is owned by uid %u: whoever owns it can replace the snapshots",
		    dir, (unsigned) st.st_uid);
	} else if (!d->insecure_perms && (st.st_mode & 0022)) {
		snprintf(fix, sizeof(fix), "chmod 0755 %s", dir);
		add(d, "cache.dir", DOCTOR_ERROR, dir, fix,
		    "cache.dir %s is writable by group or others (mode %04o): anyone could replace the snapshots",
		    dir, (unsigned) (st.st_mode & 07777));
	} else {
		add(d, "cache.dir", DOCTOR_OK, dir, NULL, "cache.dir %s exists (mode %04o)", dir,
		    (unsigned) (st.st_mode & 07777));
	}

	/* The files' modes: the public one must be readable by every process (NSS runs in them),
	 * the private one by root only. */
	struct tu_cache_info ci = {0};
	struct tu_err e;
	char *saved = conf->cache_dir;
	conf->cache_dir = full;
	tu_err_clear(&e);
	int r = tu_cache_info(conf, &ci, &e);
	conf->cache_dir = saved;
	if (r < 0) {
		char buf[1200];
		add(d, "cache.accounts", DOCTOR_ERROR, dir, "", "%s",
		    tu_err_format(&e, buf, sizeof(buf)));
		return false;
	}
	snprintf(p, sizeof(p), "%s/%s", dir, TU_CACHE_PUBLIC_FILE);
	char fp[4200];
	rooted(d, p, fp, sizeof(fp));
	uint64_t stale = conf->refresh_after_usec * 2;
	if (stale < UINT64_C(600) * 1000000)
		stale = UINT64_C(600) * 1000000;
	if (!ci.has_public) {
		add(d, "cache.accounts", DOCTOR_ERROR, p,
		    "run 'teleport-unix sync', and enable the timer: systemctl enable --now teleport-unix-sync.timer",
		    "no public snapshot %s: NSS serves no Teleport account", p);
	} else if (stat(fp, &st) == 0 && (st.st_mode & 0444) != 0444) {
		snprintf(fix, sizeof(fix), "chmod 0644 %s", p);
		add(d, "cache.accounts", DOCTOR_ERROR, p, fix,
		    "%s is not readable by everyone (mode %04o): processes that are not root cannot resolve Teleport accounts",
		    p, (unsigned) (st.st_mode & 07777));
	} else if (!d->insecure_perms && stat(fp, &st) == 0 &&
		   (st.st_uid != 0 || (st.st_mode & 0022))) {
		snprintf(fix, sizeof(fix), "chown root:root %s && chmod 0644 %s", p, p);
		add(d, "cache.accounts", DOCTOR_ERROR, p, fix,
		    "%s is owned by uid %u with mode %04o: only root may write what NSS serves", p,
		    (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
	} else if (ci.public_error) {
		add(d, "cache.accounts", DOCTOR_ERROR, p, "run 'teleport-unix sync' to rewrite it",
		    "%s is unusable: %s", p, strerror(-ci.public_error));
	} else {
		fmt_dur(now - ci.public_created_usec, a1, sizeof(a1));
		add(d, "cache.accounts", DOCTOR_OK, p, NULL,
		    "%zu accounts, %zu groups, written %s ago", ci.n_accounts, ci.n_groups, a1);
	}

	snprintf(p, sizeof(p), "%s/%s", dir, TU_CACHE_STATE_FILE);
	rooted(d, p, fp, sizeof(fp));
	if (!ci.has_state) {
		add(d, "cache.state",
		    conf->pam_offline == TU_OFFLINE_CACHED ? DOCTOR_ERROR : DOCTOR_WARNING, p,
		    "run 'teleport-unix sync', and enable the timer: systemctl enable --now teleport-unix-sync.timer",
		    "no private snapshot %s: logins cannot be decided while Auth is unreachable",
		    p);
	} else if (stat(fp, &st) == 0 && (st.st_mode & 0077) && !d->insecure_perms) {
		snprintf(fix, sizeof(fix), "chmod 0600 %s", p);
		add(d, "cache.state", DOCTOR_ERROR, p, fix,
		    "%s is accessible by group or others (mode %04o): it holds every user, role and lock, and PAM refuses it",
		    p, (unsigned) (st.st_mode & 07777));
	} else if (ci.state_error) {
		add(d, "cache.state", DOCTOR_ERROR, p, "run 'teleport-unix sync' to rewrite it",
		    "%s is unusable: %s", p, strerror(-ci.state_error));
	} else {
		int64_t age = now - ci.state_created_usec;
		fmt_dur(age, a1, sizeof(a1));
		if (age > (int64_t) conf->offline_max_age_usec) {
			fmt_dur((int64_t) conf->offline_max_age_usec, a2, sizeof(a2));
			add(d, "cache.state", DOCTOR_ERROR, p,
			    "run 'teleport-unix sync' and make sure it keeps running: systemctl enable --now teleport-unix-sync.timer",
			    "the last sync was %s ago, more than cache.offline_max_age (%s): offline logins are refused and NSS serves old accounts",
			    a1, a2);
		} else if (age > (int64_t) stale) {
			fmt_dur((int64_t) conf->refresh_after_usec, a2, sizeof(a2));
			add(d, "cache.state", DOCTOR_WARNING, p,
			    "check the sync timer: systemctl status teleport-unix-sync.timer; journalctl -u teleport-unix-sync",
			    "the last sync was %s ago although cache.refresh_after is %s: syncs are failing or not running",
			    a1, a2);
			usable = true;
		} else {
			add(d, "cache.state", DOCTOR_OK, p, NULL,
			    "%zu users, %zu roles, %zu locks, synced %s ago", ci.n_users,
			    ci.n_roles, ci.n_locks, a1);
			usable = true;
		}
	}

	/* NSS reads the compiled-in directory; elsewhere a link made by sync must lead there. */
	if (strcmp(dir, TU_SNAPSHOT_DEFAULT_DIR) != 0) {
		char link[4200], want[4200], got[4200];
		snprintf(p, sizeof(p), "%s/%s", TU_SNAPSHOT_DEFAULT_DIR, TU_CACHE_PUBLIC_FILE);
		rooted(d, p, link, sizeof(link));
		snprintf(want, sizeof(want), "%s/%s", dir, TU_CACHE_PUBLIC_FILE);
		ssize_t k = readlink(link, got, sizeof(got) - 1);
		if (k >= 0)
			got[k] = '\0';
		if (k >= 0 && strcmp(got, want) == 0) {
			add(d, "cache.nss-link", DOCTOR_OK, p, NULL, "%s leads NSS to %s", p, want);
		} else {
			snprintf(fix, sizeof(fix),
				 "run 'teleport-unix sync' (it makes the link), or: ln -sfn %s %s",
				 want, p);
			add(d, "cache.nss-link", DOCTOR_ERROR, p, fix,
			    k >= 0
				? "%s points to '%s', not to cache.dir's snapshot: NSS serves other data"
				: "%s is not a link to cache.dir's snapshot: NSS reads only %s, so it serves no Teleport account",
			    p, k >= 0 ? got : TU_SNAPSHOT_DEFAULT_DIR);
		}
	}
	return usable;
}

/* --------------------------------------------------------------- Auth */

static void check_auth(struct doc *d, const struct tu_conf *conf, const char *shown,
		       const struct tu_creds *creds, bool offline_ok)
{
	struct tu_auth *auth = NULL;
	struct tu_ping ping = {0};
	struct tu_err e;
	char buf[1200], fix[1200], where[600];
	int r;

	snprintf(where, sizeof(where), "%s (%s)", shown,
		 conf->n_addresses ? "auth.addresses" : "auth.proxy");
	if (d->offline) {
		add(d, "auth.ping", DOCTOR_SKIPPED, where, NULL, "not tried (--offline)");
		return;
	}
	if (!creds) {
		add(d, "auth.ping", DOCTOR_SKIPPED, where, NULL, "not tried: no usable credential");
		return;
	}
	uint64_t budget = conf->connect_timeout_usec + conf->request_timeout_usec;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tu_err_clear(&e);
	r = tu_auth_new(conf, creds, &auth, &e);
	if (r >= 0) {
		tu_auth_set_budget(auth, budget);
		r = tu_auth_ping(auth, &ping, &e);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long long ms =
	    (long long) (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	if (r >= 0 && conf->cluster_name &&
	    (!ping.cluster_name || strcmp(ping.cluster_name, conf->cluster_name) != 0)) {
		snprintf(fix, sizeof(fix),
			 "point auth.addresses at cluster %s's Auth, or correct auth.cluster_name",
			 conf->cluster_name);
		add(d, "auth.ping", DOCTOR_ERROR, where, fix,
		    "Auth answered for cluster '%s', but auth.cluster_name is '%s': every online decision is refused",
		    ping.cluster_name ? ping.cluster_name : "", conf->cluster_name);
	} else if (r >= 0) {
		char via_addr[300];
		const char *via = tu_auth_via(auth, via_addr, sizeof(via_addr));
		add(d, "auth.ping", DOCTOR_OK, where, NULL,
		    "Auth answered in %lld ms: cluster %s, Teleport %s, via %s%s%s%s", ms,
		    ping.cluster_name ? ping.cluster_name : "?",
		    ping.server_version ? ping.server_version : "?", via ? via : "?",
		    via_addr[0] ? " (" : "", via_addr, via_addr[0] ? ")" : "");
	} else {
		char addrs[600] = "";
		for (size_t i = 0; i < conf->n_addresses; i++)
			snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs), "%s%s:%u",
				 i ? ", " : "", conf->addresses[i].host, conf->addresses[i].port);
		if (conf->proxy.host)
			snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs),
				 "%sauth.proxy %s:%u", conf->n_addresses ? ", " : "",
				 conf->proxy.host, conf->proxy.port);
		snprintf(
		    fix, sizeof(fix),
		    "check auth.addresses / auth.proxy (%s): Auth (or the Proxy's web port) must accept TLS from this host there; test with 'teleport-unix ping'",
		    addrs);
		add(d, "auth.ping", offline_ok ? DOCTOR_WARNING : DOCTOR_ERROR, where, fix,
		    "Auth did not answer within %lld ms (%s)%s", ms,
		    tu_err_format(&e, buf, sizeof(buf)),
		    offline_ok
			? ": logins are decided from the cache until it is older than cache.offline_max_age"
			: ": Teleport logins are refused (no usable cache to fall back on)");
	}
	tu_ping_done(&ping);
	tu_auth_free(auth);
}

/* ------------------------------------------------------------ modules */

/* Linux-PAM and glibc look in the directory libc itself was loaded from (Debian's multiarch
 * /lib/<triplet>, RHEL's /lib64). */
static void find_libdir(struct doc *d)
{
	Dl_info info;

	snprintf(d->libdir, sizeof(d->libdir), "/lib");
	if (dladdr((void *) &fopen, &info) && info.dli_fname && info.dli_fname[0] == '/') {
		snprintf(d->libdir, sizeof(d->libdir), "%s", info.dli_fname);
		char *s = strrchr(d->libdir, '/');
		if (s && s != d->libdir)
			*s = '\0';
	}
	/* /usr/lib/<triplet> and /lib/<triplet> are the same list of places for our purpose. */
	if (strncmp(d->libdir, "/usr/", 5) == 0)
		memmove(d->libdir, d->libdir + 4, strlen(d->libdir + 4) + 1);
}

/* Looks for file in libdir (and its /usr twin); returns the host path found in ret, or -ENOENT. */
static int find_module(struct doc *d, const char *sub, const char *file, char *ret, size_t size)
{
	const char *prefixes[] = {"", "/usr"};
	char p[600], full[4200];
	struct stat st;

	for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
		snprintf(p, sizeof(p), "%s%s%s/%s", prefixes[i], d->libdir, sub, file);
		if (stat(rooted(d, p, full, sizeof(full)), &st) == 0) {
			snprintf(ret, size, "%s", p);
			return 0;
		}
	}
	return -ENOENT;
}

/* dlopen()s the file (below the root) and looks for sym: what glibc / libpam will do. */
static int try_load(struct doc *d, const char *p, const char *sym, char *why, size_t size)
{
	char full[4200];
	void *h = dlopen(rooted(d, p, full, sizeof(full)), RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		const char *err = dlerror();
		snprintf(why, size, "%s", err ? err : "dlopen failed");
		return -EBADMSG;
	}
	bool ok = dlsym(h, sym) != NULL;
	dlclose(h);
	if (!ok) {
		snprintf(why, size, "it does not define %s", sym);
		return -EBADMSG;
	}
	return 0;
}

static void check_nss_module(struct doc *d)
{
	char p[600], why[600], fix[1200];
	const char *file = "libnss_teleport.so.2";

	if (find_module(d, "", file, p, sizeof(p)) < 0) {
		/* On the host itself, glibc also finds it through ld.so.cache (ldconfig's
		 * directories, e.g. /usr/local/lib): ask the loader the way NSS does, by name. */
		void *h = d->root[0] || secure_getenv("LD_LIBRARY_PATH")
			      ? NULL
			      : dlopen(file, RTLD_NOW | RTLD_LOCAL);
		if (h) {
			struct link_map *lm = NULL;
			bool sym = dlsym(h, "_nss_teleport_getpwnam_r") != NULL;
			if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name)
				snprintf(p, sizeof(p), "%s", lm->l_name);
			else
				snprintf(p, sizeof(p), "%s", file);
			dlclose(h);
			if (sym) {
				add(d, "nss.module", DOCTOR_OK, p, NULL,
				    "%s loads (found through ld.so.cache) and provides the passwd and group lookups",
				    p);
				return;
			}
		}
		snprintf(p, sizeof(p), "%s/%s", d->libdir, file);
		snprintf(
		    fix, sizeof(fix),
		    "install the module there (the Debian package does; from source: ./configure --with-nss-libdir=%s && make install)",
		    d->libdir);
		add(d, "nss.module", DOCTOR_ERROR, p, fix,
		    "%s is not in %s (nor /usr%s), where glibc loads NSS modules from: 'teleport' in nsswitch.conf does nothing",
		    file, d->libdir, d->libdir);
		return;
	}
	if (try_load(d, p, "_nss_teleport_getpwnam_r", why, sizeof(why)) < 0) {
		add(d, "nss.module", DOCTOR_ERROR, p,
		    "reinstall teleport-unix (the file is damaged or built for another system)",
		    "%s cannot be loaded: %s", p, why);
		return;
	}
	check_system_file(d, p);
	add(d, "nss.module", DOCTOR_OK, p, NULL,
	    "%s loads and provides the passwd and group lookups", p);
}

static void check_pam_module(struct doc *d)
{
	char p[600], why[600], fix[1200];
	const char *file = "pam_teleport.so";

	if (find_module(d, "/security", file, p, sizeof(p)) < 0) {
		snprintf(p, sizeof(p), "%s/security/%s", d->libdir, file);
		snprintf(
		    fix, sizeof(fix),
		    "install the module there (the Debian package does; from source: ./configure --with-pam-moduledir=%s/security && make install)",
		    d->libdir);
		add(d, "pam.module", DOCTOR_ERROR, p, fix,
		    "%s is not in %s/security, where libpam loads modules named without a path: every stack naming it fails",
		    file, d->libdir);
		return;
	}
	if (try_load(d, p, "pam_sm_acct_mgmt", why, sizeof(why)) < 0) {
		add(d, "pam.module", DOCTOR_ERROR, p,
		    "reinstall teleport-unix (the file is damaged or built for another system)",
		    "%s cannot be loaded: %s", p, why);
		return;
	}
	check_system_file(d, p);
	add(d, "pam.module", DOCTOR_OK, p, NULL, "%s loads", p);
}

/* ----------------------------------------------------------- nsswitch */

static void check_nsswitch(struct doc *d)
{
	static const struct {
		const char *db;
		bool required;
	} dbs[] = {{"passwd", true}, {"group", true}, {"initgroups", false}};

	const char *path = "/etc/nsswitch.conf";
	char full[4200], id[64], buf[1200];
	struct doctor_nss_line lines[ELEMENTSOF(dbs)];
	bool found[ELEMENTSOF(dbs)] = {false};
	struct stat st;

	rooted(d, path, full, sizeof(full));
	_cleanup_fclose_ FILE *f = fopen(full, "re");
	if (!f || fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > DOCTOR_MAX_FILE) {
		add(d, "nss.passwd", DOCTOR_ERROR, path,
		    "create /etc/nsswitch.conf with at least the lines 'passwd: files teleport' and 'group: files teleport'",
		    "cannot read %s: %s", path,
		    f ? "not a regular file of at most 256 KiB" : strerror(errno));
		return;
	}
	check_system_file(d, path);
	char line[4096];
	unsigned lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		struct doctor_nss_line l;
		struct tu_err e;
		lineno++;
		tu_err_clear(&e);
		int r = doctor_nss_parse_line(line, lineno, &l, &e);
		if (r < 0) {
			snprintf(buf, sizeof(buf), "%s:%u", path, lineno);
			add(d, "nss.syntax", DOCTOR_WARNING, buf, "correct or remove the line",
			    "%s: %s", path, e.msg);
			continue;
		}
		if (r == 0)
			continue;
		for (size_t i = 0; i < ELEMENTSOF(dbs); i++) {
			if (strcmp(l.db, dbs[i].db) != 0)
				continue;
			if (found[i]) {
				snprintf(id, sizeof(id), "nss.%s", dbs[i].db);
				snprintf(buf, sizeof(buf), "%s:%u", path, lineno);
				char fix[600];
				snprintf(fix, sizeof(fix),
					 "keep one '%s:' line in %s (lines %u and %u)", dbs[i].db,
					 path, lines[i].line, lineno);
				add(d, id, DOCTOR_WARNING, buf, fix,
				    "a second '%s:' line: glibc honours only one of them",
				    dbs[i].db);
				continue;
			}
			found[i] = true;
			lines[i] = l;
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(dbs); i++) {
		struct doctor_finding fd;
		snprintf(id, sizeof(id), "nss.%s", dbs[i].db);
		doctor_nss_judge(dbs[i].db, found[i] ? &lines[i] : NULL, dbs[i].required, path,
				 &fd);
		add_finding(d, id, &fd);
	}
}

/* ------------------------------------------------------------ systemd */

/* The sync timer keeps the cache fresh; without it the cache ages until a login goes online. */
static void check_timer(struct doc *d)
{
	const char *unit = "teleport-unix-sync.timer";
	const char *dirs[] = {"/etc/systemd/system/timers.target.wants",
			      "/etc/systemd/system/multi-user.target.wants"};
	char p[600], full[4200];
	struct stat st;

	if (stat(rooted(d, "/etc/systemd/system", full, sizeof(full)), &st) < 0) {
		add(d, "sync.timer", DOCTOR_SKIPPED, "/etc/systemd/system", NULL,
		    "no systemd here: run 'teleport-unix sync' regularly some other way (e.g. cron, every 5 minutes)");
		return;
	}
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		snprintf(p, sizeof(p), "%s/%s", dirs[i], unit);
		if (lstat(rooted(d, p, full, sizeof(full)), &st) == 0) {
			add(d, "sync.timer", DOCTOR_OK, p, NULL, "%s is enabled", unit);
			return;
		}
	}
	snprintf(p, sizeof(p), "%s/%s", dirs[0], unit);
	add(d, "sync.timer", DOCTOR_WARNING, p, "systemctl enable --now teleport-unix-sync.timer",
	    "%s is not enabled: the cache is refreshed only when a login or lookup goes online, and offline logins stop once it is older than cache.offline_max_age",
	    unit);
}

/* ---------------------------------------------------------------- PAM */

static void check_pam_service(struct doc *d, const char *svc)
{
	_cleanup_free_ struct doctor_pam_stack *s = calloc(1, sizeof(*s));
	struct doctor_finding f;
	struct tu_err e;
	char id[64], buf[1200], path[300];

	if (!s) {
		d->oom = true;
		return;
	}
	snprintf(id, sizeof(id), "pam.%s.account", svc);
	snprintf(path, sizeof(path), "/etc/pam.d/%s", svc);
	tu_err_clear(&e);
	int r = doctor_pam_load(d->root, svc, "account", s, &e);
	if (r == -ENOENT) {
		add(d, id, DOCTOR_SKIPPED, path, NULL, "no %s: the %s service is not installed",
		    path, svc);
		return;
	}
	if (r < 0) {
		add(d, id, DOCTOR_ERROR, path, "", "%s", tu_err_format(&e, buf, sizeof(buf)));
		return;
	}
	if (s->problem[0]) {
		snprintf(id, sizeof(id), "pam.%s.syntax", svc);
		add(d, id, DOCTOR_WARNING, s->problem,
		    "correct the line (libpam refuses or skips it)", "%s", s->problem);
		snprintf(id, sizeof(id), "pam.%s.account", svc);
	}
	check_system_file(d, s->path);
	for (size_t i = 0; i < s->n; i++)
		check_system_file(d, s->entries[i].file);
	doctor_pam_judge_account(s, &f);
	char inc[4200];
	struct stat ist;
	if (f.status == DOCTOR_ERROR && strstr(f.fix, "@include teleport") &&
	    stat(rooted(d, "/etc/pam.d/teleport", inc, sizeof(inc)), &ist) < 0) {
		char fix2[sizeof(f.fix)];
		snprintf(
		    fix2, sizeof(fix2),
		    "copy pam.d/teleport from the teleport-unix examples to /etc/pam.d/teleport, then %s",
		    f.fix);
		snprintf(f.fix, sizeof(f.fix), "%s", fix2);
	}
	/* A Teleport account has no password ('*'): login and su open it only for root or through
	 * another auth module, so there a missing pam_teleport.so is a warning; sshd (keys,
	 * certificates) is where it decides. */
	if (f.status == DOCTOR_ERROR && strcmp(svc, "sshd") != 0 &&
	    strstr(f.msg, "is not in the account phase")) {
		f.status = DOCTOR_WARNING;
		snprintf(
		    f.msg + strlen(f.msg), sizeof(f.msg) - strlen(f.msg),
		    " (Teleport accounts have no password, so only root or another auth module opens them here)");
	}
	add_finding(d, id, &f);

	snprintf(id, sizeof(id), "pam.%s.control", svc);
	bool any = false;
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(doctor_pam_module_base(&s->entries[i]), "pam_teleport.so") != 0)
			continue;
		any = true;
		/* A module named by absolute path is loaded from there, not from the module dir. */
		const struct doctor_pam_entry *m = &s->entries[i];
		char full[4200], w[700];
		struct stat st;
		if (m->module[0] == '/' &&
		    stat(rooted(d, m->module, full, sizeof(full)), &st) < 0) {
			snprintf(w, sizeof(w), "%s:%u", m->file, m->line);
			snprintf(buf, sizeof(buf),
				 "write 'pam_teleport.so' without a directory at %s", w);
			add(d, "pam.module", DOCTOR_ERROR, w, buf,
			    "%s names %s, which does not exist: libpam fails that line (module_unknown)",
			    w, m->module);
		}
		doctor_pam_judge_control(&s->entries[i], "account", &f);
		if (f.status != DOCTOR_OK) {
			add_finding(d, id, &f);
			return;
		}
	}
	if (any)
		add_finding(d, id, &f);
}

/* When the installed /etc/pam.d/teleport has a session line for pam_teleport.so (the check of
 * the certificate sshd verified: SSH_AUTH_INFO_0 is set only for the session), sshd's session
 * phase must run it, failing closed. */
static void check_pam_session(struct doc *d, const struct tu_conf *conf)
{
	_cleanup_free_ struct doctor_pam_stack *t = calloc(1, sizeof(*t));
	_cleanup_free_ struct doctor_pam_stack *s = calloc(1, sizeof(*s));
	struct doctor_finding f;
	bool shipped = false;
	int r;

	if (!t || !s) {
		d->oom = true;
		return;
	}
	r = doctor_pam_load(d->root, "teleport", "session", t, NULL);
	for (size_t i = 0; r >= 0 && i < t->n; i++)
		if (strcmp(doctor_pam_module_base(&t->entries[i]), "pam_teleport.so") == 0)
			shipped = true;
	/* With pam.trust_ssh_cert the session line is needed whatever brought it in (the include,
	 * or pam-auth-update's common-session). */
	if (!shipped && !(conf && conf->trust_ssh_cert))
		return;
	r = doctor_pam_load(d->root, "sshd", "session", s, NULL);
	if (r < 0)
		return; /* reported by the account check */
	const struct doctor_pam_entry *e = NULL;
	for (size_t i = 0; i < s->n && !e; i++)
		if (strcmp(doctor_pam_module_base(&s->entries[i]), "pam_teleport.so") == 0)
			e = &s->entries[i];
	if (!e) {
		bool need = conf && conf->trust_ssh_cert;
		add(d, "pam.sshd.session", need ? DOCTOR_ERROR : DOCTOR_WARNING, "/etc/pam.d/sshd",
		    "add '@include teleport' to /etc/pam.d/sshd before '@include common-session' (one include brings in the account and the session lines), or run 'pam-auth-update --enable teleport'",
		    "pam_teleport.so is not in the session phase of sshd%s",
		    need
			? ": with pam.trust_ssh_cert the certificate sshd verified is checked only there, so such logins are not judged by it"
			: "");
		return;
	}
	doctor_pam_judge_control(e, "session", &f);
	if (f.status == DOCTOR_OK) {
		/* A refused session must not have made a home or read the user's files first. */
		for (const struct doctor_pam_entry *b = s->entries; b < e; b++) {
			const char *m = doctor_pam_module_base(b);
			if (strcmp(m, "pam_mkhomedir.so") != 0 &&
			    !(strcmp(m, "pam_env.so") == 0 && strstr(b->args, "user_readenv=1")))
				continue;
			char where[700];
			snprintf(where, sizeof(where), "%s:%u", b->file, b->line);
			snprintf(f.fix, sizeof(f.fix), "move %s before %s", e->top, b->top);
			add(d, "pam.sshd.session", DOCTOR_WARNING, where, f.fix,
			    "%s runs before pam_teleport.so in the session phase of sshd: it acts for a login that pam_teleport.so may still refuse",
			    m);
			return;
		}
		snprintf(f.msg, sizeof(f.msg),
			 "pam_teleport.so runs in the session phase of sshd with control '%s'",
			 e->control);
	}
	add_finding(d, "pam.sshd.session", &f);
}

/* --------------------------------------------------------------- sshd */

/* Runs `sshd -T` (no network, reads the host's files) with a deadline; output into *ret. */
static int run_sshd_t(const char *sshd, char **ret, char *why, size_t size)
{
	int pfd[2];

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(why, size, "pipe: %s", strerror(errno));
		return -errno;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(pfd[0]);
		close(pfd[1]);
		snprintf(why, size, "fork: %s", strerror(-r));
		return r;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		execl(sshd, sshd, "-T", (char *) NULL);
		_exit(127);
	}
	close(pfd[1]);
	_cleanup_free_ char *buf = malloc(SSHD_T_MAX_OUTPUT + 1);
	size_t len = 0;
	int status = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bool timed_out = false;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long ms =
		    (long) ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (ms >= SSHD_T_TIMEOUT_MS) {
			timed_out = true;
			break;
		}
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int n = poll(&p, 1, (int) (SSHD_T_TIMEOUT_MS - ms));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			timed_out = n == 0;
			break;
		}
		char tmp[4096];
		ssize_t k = read(pfd[0], tmp, sizeof(tmp));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		if (buf && len + (size_t) k <= SSHD_T_MAX_OUTPUT) {
			memcpy(buf + len, tmp, (size_t) k);
			len += (size_t) k;
		}
	}
	close(pfd[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!buf) {
		snprintf(why, size, "out of memory");
		return -ENOMEM;
	}
	buf[len] = '\0';
	if (timed_out) {
		snprintf(why, size, "%s -T did not finish within %d ms", sshd, SSHD_T_TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *nl = strchr(buf, '\n');
		if (nl)
			*nl = '\0';
		snprintf(why, size, "%s -T failed: %s", sshd, buf[0] ? buf : "no output");
		return -EIO;
	}
	*ret = TAKE_PTR(buf);
	return 0;
}

/* Where kv was set: its file:line, or for `sshd -T` output the file:line found by reading the
 * files ourselves (d->sshd_files). */
static const char *kv_where(const struct doc *d, const struct doctor_sshd_kv *kv, char *buf,
			    size_t size)
{
	const struct doctor_sshd_kv *f =
	    kv && !kv->file[0] && d->sshd_files ? doctor_sshd_get(d->sshd_files, kv->key) : kv;
	if (f && f->file[0])
		snprintf(buf, size, "%s:%u", f->file, f->line);
	else
		snprintf(buf, size, "%s",
			 kv ? "sshd -T (the default)" : "/etc/ssh/sshd_config (not set)");
	return buf;
}

/* Counts the public key lines of a TrustedUserCAKeys file (*ret_n) and those that are one of
 * ca's keys ("<type> <base64>", comment ignored; ca may be NULL). */
static int count_keys(const char *full, const struct tu_user_ca *ca, unsigned *ret_n,
		      unsigned *ret_teleport)
{
	_cleanup_fclose_ FILE *f = fopen(full, "re");
	char line[16384];
	unsigned n = 0, t = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "ssh-", 4) != 0 && strncmp(p, "ecdsa-", 6) != 0 &&
		    strncmp(p, "sk-", 3) != 0)
			continue;
		n++;
		size_t l1 = strcspn(p, " \t\r\n");
		const char *b = p + l1;
		while (*b == ' ' || *b == '\t')
			b++;
		size_t l2 = strcspn(b, " \t\r\n");
		for (size_t i = 0; ca && i < ca->keys.n; i++) {
			const char *k = ca->keys.v[i];
			if (strlen(k) == l1 + 1 + l2 && strncmp(k, p, l1) == 0 && k[l1] == ' ' &&
			    strncmp(k + l1 + 1, b, l2) == 0) {
				t++;
				break;
			}
		}
	}
	*ret_n = n;
	*ret_teleport = t;
	return 0;
}

/* AuthorizedPrincipalsCommand as etc/sshd_config.d/teleport-unix.conf sets it: sshd asks
 * `teleport-unix ssh-principals %u %t %k`, as root, about every certificate it verified. */
static void check_principals_command(struct doc *d, const struct doctor_sshd_conf *c)
{
	const char *dropin = "/etc/ssh/sshd_config.d/teleport-unix.conf";
	const struct doctor_sshd_kv *kv = doctor_sshd_get(c, "authorizedprincipalscommand");
	char w[600], fix[1200], prog[1100], full[4200];
	struct stat st;

	if (!kv || strcasecmp(kv->value, "none") == 0) {
		snprintf(
		    fix, sizeof(fix),
		    "install %s from the teleport-unix examples (AuthorizedPrincipalsCommand %s/teleport-unix ssh-principals %%u %%t %%k, AuthorizedPrincipalsCommandUser root) and reload sshd",
		    dropin, TU_BINDIR);
		add(d, "sshd.principals-command", DOCTOR_WARNING, kv_where(d, kv, w, sizeof(w)),
		    fix,
		    "AuthorizedPrincipalsCommand is not set: a refused certificate gets a session that pam_teleport.so then closes, instead of 'Permission denied (publickey)'");
		return;
	}
	kv_where(d, kv, w, sizeof(w));
	size_t plen = strcspn(kv->value, " \t");
	snprintf(prog, sizeof(prog), "%.*s", (int) plen, kv->value);
	const char *base = strrchr(prog, '/');
	base = base ? base + 1 : prog;
	const char *args = kv->value + plen;
	snprintf(
	    fix, sizeof(fix),
	    "write 'AuthorizedPrincipalsCommand %s/teleport-unix ssh-principals %%u %%t %%k' (as %s does) and reload sshd",
	    TU_BINDIR, dropin);
	if (strcmp(base, "teleport-unix") != 0 || !strstr(args, "ssh-principals")) {
		add(d, "sshd.principals-command", DOCTOR_WARNING, w, fix,
		    "AuthorizedPrincipalsCommand is '%s', not teleport-unix ssh-principals: certificates are not judged by Teleport's roles before the session",
		    kv->value);
		return;
	}
	if (!strstr(args, "%u") || !strstr(args, "%t") || !strstr(args, "%k")) {
		add(d, "sshd.principals-command", DOCTOR_ERROR, w, fix,
		    "AuthorizedPrincipalsCommand '%s' does not pass %%u %%t %%k: ssh-principals cannot see the login and the certificate, so every certificate login is refused",
		    kv->value);
		return;
	}
	/* sshd runs it only from an absolute path owned by root and writable by nobody else. */
	if (prog[0] != '/' || stat(rooted(d, prog, full, sizeof(full)), &st) < 0 ||
	    !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		add(d, "sshd.principals-command", DOCTOR_ERROR, w, fix,
		    "AuthorizedPrincipalsCommand names %s, which is not an executable file%s: sshd refuses every certificate",
		    prog, prog[0] == '/' ? "" : " given by an absolute path");
		return;
	}
	if (!d->insecure_perms && (st.st_uid != 0 || (st.st_mode & 0022))) {
		snprintf(fix, sizeof(fix), "chown root:root %s && chmod 0755 %s", prog, prog);
		add(d, "sshd.principals-command", DOCTOR_ERROR, prog, fix,
		    "%s is owned by uid %u with mode %04o: sshd runs an AuthorizedPrincipalsCommand only when root owns it and nobody else may write it",
		    prog, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
		return;
	}
	add(d, "sshd.principals-command", DOCTOR_OK, w, NULL, "AuthorizedPrincipalsCommand %s",
	    kv->value);

	kv = doctor_sshd_get(c, "authorizedprincipalscommanduser");
	if (kv && strcmp(kv->value, "root") == 0) {
		add(d, "sshd.principals-command-user", DOCTOR_OK, kv_where(d, kv, w, sizeof(w)),
		    NULL, "AuthorizedPrincipalsCommandUser root");
		return;
	}
	add(d, "sshd.principals-command-user", DOCTOR_ERROR, kv_where(d, kv, w, sizeof(w)),
	    "set 'AuthorizedPrincipalsCommandUser root' (as /etc/ssh/sshd_config.d/teleport-unix.conf does) and reload sshd",
	    kv ? "AuthorizedPrincipalsCommandUser is '%s': ssh-principals cannot read the 0600 state snapshot and the host's credential as that user, so every certificate login is refused"
	       : "AuthorizedPrincipalsCommandUser is not set%s: sshd refuses to run the command",
	    kv ? kv->value : "");
}

/* ca: Teleport's user CA from the last sync (NULL or !known: not compared). */
static void check_sshd(struct doc *d, const struct tu_conf *conf, const struct tu_user_ca *ca)
{
	_cleanup_free_ struct doctor_sshd_conf *c = calloc(1, sizeof(*c));
	_cleanup_free_ struct doctor_sshd_conf *files = calloc(1, sizeof(*files));
	_cleanup_free_ char *out = NULL;
	char full[4200], why[1200], w[600], fix[1200];
	const char *sshd = d->sshd ? d->sshd : "/usr/sbin/sshd";
	const char *cfg = "/etc/ssh/sshd_config";
	struct stat st;
	struct tu_err e;
	bool trust = conf && conf->trust_ssh_cert;
	int r = -ENOENT;

	if (!c) {
		d->oom = true;
		return;
	}
	bool have_cfg = stat(rooted(d, cfg, full, sizeof(full)), &st) == 0;
	/* sshd -T reads the host's files: not with --root unless --sshd says which to run. */
	if (d->sshd && access(sshd, X_OK) < 0)
		add(d, "sshd.config", DOCTOR_WARNING, sshd, "give --sshd an executable sshd",
		    "--sshd %s: %s; read %s instead", sshd, strerror(errno), cfg);
	if ((d->sshd || !d->root[0]) && access(sshd, X_OK) == 0) {
		r = run_sshd_t(sshd, &out, why, sizeof(why));
		if (r >= 0)
			r = doctor_sshd_parse_t(out, c, NULL);
		if (r >= 0)
			add(d, "sshd.config", DOCTOR_OK, sshd, NULL,
			    "the settings sshd uses, from %s -T", sshd);
		else if (strstr(why, "privilege separation directory"))
			/* /run/sshd is made by the service when it starts: sshd is just not
			 * running. */
			add(d, "sshd.config", DOCTOR_OK, sshd, NULL, "%s; read %s instead", why,
			    cfg);
		else
			add(d, "sshd.config", DOCTOR_WARNING, sshd,
			    "run 'sshd -t' as root to see what sshd refuses", "%s; read %s instead",
			    why, cfg);
		if (r >= 0 && have_cfg && files && doctor_sshd_load(d->root, cfg, files, NULL) >= 0)
			d->sshd_files = files;
	}
	if (r < 0) {
		if (!have_cfg) {
			add(d, "sshd.config", DOCTOR_SKIPPED, cfg, NULL,
			    "no %s: OpenSSH's sshd is not installed", cfg);
			return;
		}
		tu_err_clear(&e);
		r = doctor_sshd_load(d->root, cfg, c, &e);
		if (r < 0) {
			add(d, "sshd.config", DOCTOR_ERROR, cfg, "", "%s",
			    tu_err_format(&e, why, sizeof(why)));
			return;
		}
		if (c->problem[0])
			add(d, "sshd.config", DOCTOR_WARNING, cfg, "correct the Include line", "%s",
			    c->problem);
	}

	check_system_file(d, cfg);
	const struct doctor_sshd_conf *fc = d->sshd_files ? d->sshd_files : c;
	for (size_t i = 0; i < fc->n; i++)
		check_system_file(d, fc->kv[i].file);

	/* UsePAM: without it sshd never runs the PAM stack, so nothing of Teleport is enforced. */
	const struct doctor_sshd_kv *kv = doctor_sshd_get(c, "usepam");
	if (kv && strcasecmp(kv->value, "yes") == 0)
		add(d, "sshd.usepam", DOCTOR_OK, kv_where(d, kv, w, sizeof(w)), NULL, "UsePAM yes");
	else
		add(d, "sshd.usepam", DOCTOR_ERROR, kv_where(d, kv, w, sizeof(w)),
		    "set 'UsePAM yes' in /etc/ssh/sshd_config and reload sshd (systemctl reload ssh)",
		    "UsePAM is %s: sshd never runs the PAM stack, so pam_teleport.so decides nothing for SSH logins",
		    kv ? kv->value : "not set (default no)");

	/* TrustedUserCAKeys: the Teleport user CA, so Teleport-issued certificates log in. */
	kv = doctor_sshd_get(c, "trustedusercakeys");
	if (!kv || strcasecmp(kv->value, "none") == 0) {
		if (trust)
			add(d, "sshd.trusted-user-ca-keys", DOCTOR_ERROR,
			    kv_where(d, kv, w, sizeof(w)),
			    "export Teleport's user CA (tctl auth export --type=user | sed 's/^cert-authority //' > /etc/ssh/teleport_user_ca.pub) and add 'TrustedUserCAKeys /etc/ssh/teleport_user_ca.pub' to /etc/ssh/sshd_config",
			    "TrustedUserCAKeys is not set although pam.trust_ssh_cert is on: sshd accepts no Teleport certificate");
		else
			add(d, "sshd.trusted-user-ca-keys", DOCTOR_SKIPPED,
			    kv_where(d, kv, w, sizeof(w)), NULL,
			    "TrustedUserCAKeys is not set (needed only for Teleport user certificates, with pam.trust_ssh_cert)");
	} else {
		char kp[1100];
		unsigned nkeys = 0;
		snprintf(kp, sizeof(kp), "%s", kv->value);
		int before = (int) d->n;
		if (check_trusted(d, "sshd.trusted-user-ca-keys", kp, false) >= 0) {
			unsigned ntele = 0;
			bool know = ca && ca->known && ca->keys.n > 0;
			r = count_keys(rooted(d, kp, full, sizeof(full)), know ? ca : NULL, &nkeys,
				       &ntele);
			snprintf(
			    fix, sizeof(fix),
			    "write Teleport's user CA into %s (tctl auth export --type=user, without the 'cert-authority ' prefix) and reload sshd",
			    kp);
			if (r < 0 || nkeys == 0) {
				add(d, "sshd.trusted-user-ca-keys", DOCTOR_ERROR, kp, fix,
				    r < 0
					? "TrustedUserCAKeys %s cannot be read: %s"
					: "TrustedUserCAKeys %s holds no public key%s: sshd accepts no certificate",
				    kp, r < 0 ? strerror(-r) : "");
			} else if (know && ntele == 0) {
				add(d, "sshd.trusted-user-ca-keys",
				    trust ? DOCTOR_ERROR : DOCTOR_WARNING, kp, fix,
				    "TrustedUserCAKeys %s holds %u key%s but none of the %zu of cluster %s's user CA (from the last sync): sshd accepts no Teleport certificate",
				    kp, nkeys, nkeys == 1 ? "" : "s", ca->keys.n,
				    ca->cluster ? ca->cluster : "?");
			} else if (know && nkeys > ntele && trust) {
				snprintf(
				    fix, sizeof(fix),
				    "keep only Teleport's user CA in %s (tctl auth export --type=user); trust other CAs for other logins with cert-authority lines in authorized_keys",
				    kp);
				add(d, "sshd.trusted-user-ca-keys", DOCTOR_WARNING, kp, fix,
				    "TrustedUserCAKeys %s also trusts %u key%s that %s not Teleport's user CA: with pam.trust_ssh_cert, certificates of other CAs get logins sshd lets through on their principals alone",
				    kp, nkeys - ntele, nkeys - ntele == 1 ? "" : "s",
				    nkeys - ntele == 1 ? "is" : "are");
			} else if ((int) d->n == before) {
				add(d, "sshd.trusted-user-ca-keys", DOCTOR_OK,
				    kv_where(d, kv, w, sizeof(w)), NULL,
				    "TrustedUserCAKeys %s: %u key%s, owned by root%s", kp, nkeys,
				    nkeys == 1 ? "" : "s",
				    know ? ", Teleport's user CA among them" : "");
			}
		}
	}

	/* The identity mechanism of pam.trust_ssh_cert: sshd must hand the verified certificate to
	 * the session (ExposeAuthInfo). */
	kv = doctor_sshd_get(c, "exposeauthinfo");
	bool expose = kv && strcasecmp(kv->value, "yes") == 0;
	if (!trust)
		add(d, "sshd.expose-auth-info", DOCTOR_SKIPPED, kv_where(d, kv, w, sizeof(w)), NULL,
		    "pam.trust_ssh_cert is off: the Teleport user is not taken from the certificate");
	else if (!expose)
		add(d, "sshd.expose-auth-info", DOCTOR_ERROR, kv_where(d, kv, w, sizeof(w)),
		    "set 'ExposeAuthInfo yes' (the drop-in /etc/ssh/sshd_config.d/teleport-unix.conf shipped with teleport-unix does) and reload sshd",
		    "ExposeAuthInfo is %s although pam.trust_ssh_cert is on: pam_teleport.so never sees the certificate sshd verified",
		    kv ? kv->value : "not set (default no)");
	else
		add(d, "sshd.expose-auth-info", DOCTOR_OK, kv_where(d, kv, w, sizeof(w)), NULL,
		    "ExposeAuthInfo yes");

	if (trust)
		check_principals_command(d, c);
	d->sshd_files = NULL;
}

/* ------------------------------------------------------------- output */

static const char *label(enum doctor_status s)
{
	switch (s) {
	case DOCTOR_OK:
		return "ok";
	case DOCTOR_SKIPPED:
		return "skipped";
	case DOCTOR_WARNING:
		return "WARNING";
	case DOCTOR_ERROR:
		return "ERROR";
	}
	return "?";
}

static int report(struct cli *c, struct doc *d, const char *config_path)
{
	size_t count[4] = {0};
	enum doctor_status worst = DOCTOR_OK;

	for (size_t i = 0; i < d->n; i++) {
		count[d->v[i].status]++;
		if (d->v[i].status > worst && d->v[i].status != DOCTOR_SKIPPED)
			worst = d->v[i].status;
	}
	if (d->oom)
		worst = DOCTOR_ERROR;
	if (c->json) {
		struct json j;
		json_begin(&j, stdout);
		json_key_str(&j, "status", doctor_status_name(worst));
		json_key_str(&j, "root", d->root[0] ? d->root : "/");
		json_key_str(&j, "config", config_path);
		json_key_str(&j, "nss_snapshot_dir", TU_SNAPSHOT_DEFAULT_DIR);
		json_key_str(&j, "libdir", d->libdir);
		json_key_arr_begin(&j, "checks");
		for (size_t i = 0; i < d->n; i++) {
			const struct check *k = &d->v[i];
			if (!k->id || !k->msg)
				continue;
			json_key_obj_begin(&j, NULL);
			json_key_str(&j, "id", k->id);
			json_key_str(&j, "status", doctor_status_name(k->status));
			json_key_str(&j, "message", k->msg);
			json_key_str(&j, "where", k->where);
			json_key_str(&j, "fix", k->fix);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_key_obj_begin(&j, "counts");
		json_key_int(&j, "ok", (long long) count[DOCTOR_OK]);
		json_key_int(&j, "warning", (long long) count[DOCTOR_WARNING]);
		json_key_int(&j, "error", (long long) count[DOCTOR_ERROR]);
		json_key_int(&j, "skipped", (long long) count[DOCTOR_SKIPPED]);
		json_obj_end(&j);
		json_end(&j);
	} else {
		for (size_t i = 0; i < d->n; i++) {
			const struct check *k = &d->v[i];
			if (!k->id || !k->msg)
				continue;
			printf("%-8s %s: %s\n", label(k->status), k->id, k->msg);
			if (k->status == DOCTOR_WARNING || k->status == DOCTOR_ERROR) {
				if (k->where)
					printf("%-8s where: %s\n", "", k->where);
				if (k->fix)
					printf("%-8s fix:   %s\n", "", k->fix);
			}
		}
		printf("\n%zu ok, %zu warning%s, %zu error%s, %zu skipped%s\n", count[DOCTOR_OK],
		       count[DOCTOR_WARNING], count[DOCTOR_WARNING] == 1 ? "" : "s",
		       count[DOCTOR_ERROR], count[DOCTOR_ERROR] == 1 ? "" : "s",
		       count[DOCTOR_SKIPPED],
		       d->oom ? " (out of memory: some checks are missing)" : "");
	}
	return worst == DOCTOR_ERROR     ? CLI_EXIT_ERROR
	       : worst == DOCTOR_WARNING ? CLI_EXIT_NO
					 : CLI_EXIT_OK;
}

int cmd_doctor(struct cli *c, int argc, char **argv)
{
	enum { OPT_ROOT = 0x100, OPT_OFFLINE, OPT_SSHD };
	static const struct option opts[] = {
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"offline", no_argument, NULL, OPT_OFFLINE},
	    {"sshd", required_argument, NULL, OPT_SSHD},
	    {0},
	};
	struct doc d = {.root = "", .insecure_perms = c->insecure_perms};
	char root[4096], cfg[4200];
	int o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case OPT_ROOT:
			if (optarg[0] != '/')
				return cli_errorf(
				    c, "doctor: --root needs an absolute directory, not '%s'",
				    optarg);
			snprintf(root, sizeof(root), "%s", optarg);
			for (size_t k = strlen(root); k > 1 && root[k - 1] == '/'; k--)
				root[k - 1] = '\0';
			d.root = strcmp(root, "/") == 0 ? "" : root;
			break;
		case OPT_OFFLINE:
			d.offline = true;
			break;
		case OPT_SSHD:
			if (optarg[0] != '/')
				return cli_errorf(
				    c, "doctor: --sshd needs an absolute path, not '%s'", optarg);
			d.sshd = optarg;
			break;
		default:
			return cli_errorf(
			    c,
			    "doctor: unknown option '%s' (usage: doctor [--root DIR] [--offline] [--sshd PATH])",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_errorf(c, "doctor: unexpected argument '%s'", argv[optind]);
	if (d.root[0]) {
		struct stat st;
		if (stat(d.root, &st) < 0 || !S_ISDIR(st.st_mode))
			return cli_errorf(c, "doctor: --root %s: not a directory", d.root);
	}
	find_libdir(&d);
	if (geteuid() != 0)
		add(&d, "doctor.privileges", DOCTOR_WARNING, NULL,
		    "run it as root: sudo teleport-unix doctor",
		    "not run as root: files only root may read (the key, the private snapshot) are reported as unreadable, and sshd -T may fail");

	/* The config: -c as given; otherwise the default path, below the root. */
	const char *shown = c->config_path ? c->config_path
			    : d.root[0]    ? TU_CONF_DEFAULT_PATH
					   : tu_conf_path(NULL);
	if (c->config_path || !d.root[0])
		snprintf(cfg, sizeof(cfg), "%s", shown);
	else
		rooted(&d, shown, cfg, sizeof(cfg));

	int64_t now = tu_now_usec();
	_cleanup_(conf_freep) struct tu_conf *conf = check_config(&d, cfg, shown);
	_cleanup_(tu_creds_freep) struct tu_creds *creds = NULL;
	bool offline_ok = false;
	if (conf) {
		creds = check_creds(&d, conf, now);
		offline_ok = check_cache(&d, conf, now) && conf->pam_offline == TU_OFFLINE_CACHED;
		check_auth(&d, conf, shown, creds, offline_ok);
		check_timer(&d);
	}
	check_nsswitch(&d);
	check_nss_module(&d);
	check_pam_module(&d);
	check_pam_service(&d, "sshd");
	check_pam_session(&d, conf);
	check_pam_service(&d, "login");
	check_pam_service(&d, "su");
	/* Teleport's user CA as the last sync saw it, to compare with TrustedUserCAKeys. */
	struct tu_dataset ds = {0};
	bool have_ds = false;
	if (conf) {
		char dir[4200];
		char *saved = conf->cache_dir;
		conf->cache_dir = (char *) rooted(&d, saved, dir, sizeof(dir));
		have_ds = tu_cache_load_state(conf, now, UINT64_C(3650) * 24 * 3600 * 1000000, &ds,
					      NULL, NULL) >= 0;
		conf->cache_dir = saved;
	}
	check_sshd(&d, conf, have_ds ? &ds.user_ca : NULL);
	if (have_ds)
		tu_dataset_done(&ds);

	int rc = report(c, &d, shown);
	doc_done(&d);
	return rc;
}
