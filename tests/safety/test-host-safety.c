/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-host-safety.c - the modules as a guest in someone else's process
 * (SPEC §8, STYLE §2.9, issue #6 part 4).  pam_teleport.so runs through the
 * real Linux-PAM (pam_start_confdir with a service file in a private
 * directory) and libnss_teleport.so.2 is dlopened from the build tree as
 * glibc does; both decide from a snapshot written with tu_cache_save(), and
 * Auth is 127.0.0.1:1 (nothing listens) so misses and decisions also take
 * the online path and fail over to the cache.  Checked:
 *   - after hundreds of PAM and NSS calls: the same fds (/proc/self/fd, with
 *     their targets), signal handlers and mask, umask, environment, locale,
 *     cwd, thread count (/proc/self/task) and RLIMIT_NOFILE;
 *   - no NSS recursion: getpw* / getgr* / initgroups / getgrouplist are
 *     interposed here (the program is linked with --export-dynamic) and must
 *     not be called from inside an _nss_teleport_* call, online path included;
 *   - fork() (also while another thread is inside the module, and while one
 *     holds the NSS refresh lock: the child still sees a new snapshot) and 8
 *     threads doing PAM and NSS calls at once;
 *   - RLIMIT_NOFILE exhausted: clean errors, never a wrong allow, no crash;
 *   - a setuid program (AT_SECURE) ignores TELEPORT_UNIX_CONFIG and
 *     TELEPORT_UNIX_CACHE_DIR (root only: a setuid-nobody copy of
 *     tests/safety/secure-probe; the same probe without setuid is the
 *     control that proves the forged snapshot would be served).
 * `test-host-safety --calls CONFIG CACHE_DIR` only makes the calls (no
 * assertions): tests/integration/test_host_safety.py runs it under strace
 * against the stand-in Auth server to see every file it writes.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <locale.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <security/pam_appl.h>

#include "cache.h"
#include "conf.h"
#include "ctx.h"
#include "err.h"
#include "rbac-fixture.h"
#include "snapshot.h"

extern char **environ;

static char dir[256], cache_dir[512], config[512], module[1024], nss_so[1024], core_so[1024], probe[1024];

/* ---------------------------------------------------------------- NSS through dlopen */

typedef enum nss_status (*getpwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*getpwuid_fn)(uid_t, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*getgrnam_fn)(const char *, struct group *, char *, size_t, int *);
typedef enum nss_status (*getgrgid_fn)(gid_t, struct group *, char *, size_t, int *);
typedef enum nss_status (*setent_fn)(int);
typedef enum nss_status (*endent_fn)(void);
typedef enum nss_status (*getpwent_fn)(struct passwd *, char *, size_t, int *);
typedef enum nss_status (*initgroups_fn)(const char *, gid_t, long int *, long int *, gid_t **, long int, int *);

static struct {
	getpwnam_fn getpwnam;
	getpwuid_fn getpwuid;
	getgrnam_fn getgrnam;
	getgrgid_fn getgrgid;
	setent_fn setpwent;
	endent_fn endpwent;
	getpwent_fn getpwent;
	initgroups_fn initgroups;
} nss;

/* Set while this thread is inside an _nss_teleport_* call. */
static _Thread_local bool in_module;
static atomic_int recursions;
static char recursion_what[64];

static void note_recursion(const char *what)
{
	if (in_module && atomic_fetch_add(&recursions, 1) == 0)
		snprintf(recursion_what, sizeof(recursion_what), "%s", what);
}

/* Interposers: the NSS module must never end up here (it would recurse).  Default visibility:
 * AM_CFLAGS has -fvisibility=hidden, and a hidden definition is not exported by --export-dynamic,
 * so the module would bind to libc's and the check would see nothing. */
#define REAL(name) ((__typeof__(&name)) dlsym(RTLD_NEXT, #name))
#pragma GCC visibility push(default)
int getpwnam_r(const char *n, struct passwd *p, char *b, size_t s, struct passwd **r)
{
	note_recursion("getpwnam_r");
	return REAL(getpwnam_r)(n, p, b, s, r);
}
int getpwuid_r(uid_t u, struct passwd *p, char *b, size_t s, struct passwd **r)
{
	note_recursion("getpwuid_r");
	return REAL(getpwuid_r)(u, p, b, s, r);
}
int getgrnam_r(const char *n, struct group *g, char *b, size_t s, struct group **r)
{
	note_recursion("getgrnam_r");
	return REAL(getgrnam_r)(n, g, b, s, r);
}
int getgrgid_r(gid_t i, struct group *g, char *b, size_t s, struct group **r)
{
	note_recursion("getgrgid_r");
	return REAL(getgrgid_r)(i, g, b, s, r);
}
struct passwd *getpwnam(const char *n)
{
	note_recursion("getpwnam");
	return REAL(getpwnam)(n);
}
struct passwd *getpwuid(uid_t u)
{
	note_recursion("getpwuid");
	return REAL(getpwuid)(u);
}
struct group *getgrnam(const char *n)
{
	note_recursion("getgrnam");
	return REAL(getgrnam)(n);
}
struct group *getgrgid(gid_t g)
{
	note_recursion("getgrgid");
	return REAL(getgrgid)(g);
}
struct passwd *getpwent(void)
{
	note_recursion("getpwent");
	return REAL(getpwent)();
}
struct group *getgrent(void)
{
	note_recursion("getgrent");
	return REAL(getgrent)();
}
int initgroups(const char *u, gid_t g)
{
	note_recursion("initgroups");
	return REAL(initgroups)(u, g);
}
int getgrouplist(const char *u, gid_t g, gid_t *gs, int *n)
{
	note_recursion("getgrouplist");
	return REAL(getgrouplist)(u, g, gs, n);
}
#pragma GCC visibility pop

/*
 * stat() interposer: the NSS module stats the snapshot path while it holds
 * its refresh lock.  While stall_armed is set, the first such call from
 * inside the module parks until stall_release, so a fork() can happen
 * exactly while another thread holds that lock (test_fork_while_refreshing).
 */
static atomic_bool stall_armed, stall_entered, stall_release;

__attribute__((visibility("default"))) int stat(const char *restrict path, struct stat *restrict st)
{
	if (in_module && atomic_load(&stall_armed) && strstr(path, "accounts.db") &&
	    atomic_exchange(&stall_armed, false)) {
		atomic_store(&stall_entered, true);
		while (!atomic_load(&stall_release))
			usleep(1000);
	}
	return REAL(stat)(path, st);
}

static int load_nss(void)
{
	void *h = dlopen(nss_so, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		fprintf(stderr, "dlopen %s: %s\n", nss_so, dlerror());
		return -1;
	}
	/* Never dlclosed: glibc keeps NSS modules loaded too. */
	nss.getpwnam = (getpwnam_fn) dlsym(h, "_nss_teleport_getpwnam_r");
	nss.getpwuid = (getpwuid_fn) dlsym(h, "_nss_teleport_getpwuid_r");
	nss.getgrnam = (getgrnam_fn) dlsym(h, "_nss_teleport_getgrnam_r");
	nss.getgrgid = (getgrgid_fn) dlsym(h, "_nss_teleport_getgrgid_r");
	nss.setpwent = (setent_fn) dlsym(h, "_nss_teleport_setpwent");
	nss.endpwent = (endent_fn) dlsym(h, "_nss_teleport_endpwent");
	nss.getpwent = (getpwent_fn) dlsym(h, "_nss_teleport_getpwent_r");
	nss.initgroups = (initgroups_fn) dlsym(h, "_nss_teleport_initgroups_dyn");
	return nss.getpwnam && nss.getpwuid && nss.getgrnam && nss.getgrgid && nss.setpwent && nss.endpwent &&
			       nss.getpwent && nss.initgroups
		       ? 0
		       : -1;
}

/* One lookup by name; returns the status, *uid on success. */
static enum nss_status nss_pwnam(const char *name, uid_t *uid)
{
	char buf[1024];
	struct passwd pw;
	int err = 0;
	enum nss_status st;

	in_module = true;
	st = nss.getpwnam(name, &pw, buf, sizeof(buf), &err);
	in_module = false;
	if (st == NSS_STATUS_SUCCESS && uid)
		*uid = pw.pw_uid;
	return st;
}

/* What the last nss_round() of this thread got wrong first ("" when nothing). */
static _Thread_local char round_why[128];

static int round_check(bool ok, const char *what, int st)
{
	if (!ok && !round_why[0])
		snprintf(round_why, sizeof(round_why), "%s: status %d", what, st);
	return ok;
}

/* A round of every entry point; returns how many lookups answered as expected. */
static int nss_round(void)
{
	char buf[4096];
	struct passwd pw;
	struct group gr;
	int err = 0, good = 0, st;
	uid_t uid = 0;
	long int start = 0, size = 8;
	gid_t *groups = calloc(8, sizeof(gid_t));

	round_why[0] = '\0';
	st = nss_pwnam("alice", &uid);
	good += round_check(st == NSS_STATUS_SUCCESS, "getpwnam alice", st);
	st = nss_pwnam("no-such-login", NULL);
	good += round_check(st == NSS_STATUS_NOTFOUND, "getpwnam no-such-login", st);
	in_module = true;
	st = nss.getpwuid(uid, &pw, buf, sizeof(buf), &err);
	good += round_check(st == NSS_STATUS_SUCCESS, "getpwuid alice's uid", st);
	st = nss.getgrnam("alice", &gr, buf, sizeof(buf), &err);
	good += round_check(st == NSS_STATUS_SUCCESS, "getgrnam alice", st);
	st = nss.getgrgid(12345, &gr, buf, sizeof(buf), &err);
	good += round_check(st == NSS_STATUS_NOTFOUND, "getgrgid 12345", st);
	(void) nss.initgroups("alice", 100, &start, &size, &groups, 64, &err);
	good++;
	(void) nss.setpwent(0);
	while (nss.getpwent(&pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS)
		;
	(void) nss.endpwent();
	good++;
	in_module = false;
	free(groups);
	return good;
}
#define NSS_ROUND_GOOD 7

#define assert_nss_round()                                                                  \
	do {                                                                                \
		int good_ = nss_round();                                                    \
		if (good_ != NSS_ROUND_GOOD)                                                \
			fail_msg("%d of %d NSS answers as expected (%s)", good_, NSS_ROUND_GOOD, \
				 round_why);                                                \
	} while (0)

/* ---------------------------------------------------------------- PAM through libpam */

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	(void) msg, (void) data;
	*resp = calloc((size_t) n, sizeof(**resp));
	return *resp ? PAM_SUCCESS : PAM_BUF_ERR;
}

static const struct pam_conv the_conv = { conv, NULL };

/* pam_start() for the private service: libpam reads it and loads the module here. */
static int pam_open(const char *user, pam_handle_t **pamh)
{
	char sdir[600];

	snprintf(sdir, sizeof(sdir), "%s/pam.d", dir);
	*pamh = NULL;
	return pam_start_confdir("tu-safety", user, &the_conv, sdir, pamh);
}

static int pam_acct(const char *user)
{
	pam_handle_t *pamh;
	int r = pam_open(user, &pamh);

	if (r != PAM_SUCCESS)
		return r;
	r = pam_acct_mgmt(pamh, PAM_SILENT);
	pam_end(pamh, r);
	return r;
}

/* ---------------------------------------------------------------- process state */

struct pstate {
	char fds[4096];
	struct sigaction sa[_NSIG];
	bool sa_valid[_NSIG];
	sigset_t mask;
	char umask_line[32];
	char **env;
	size_t n_env;
	char locale[512];
	int threads;
	char cwd[PATH_MAX];
	struct rlimit nofile;
};

/* Every open fd with what it points to, in fd order. */
static void read_fds(char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (int fd = 0; fd < 4096 && len < size; fd++) {
		char p[64], target[256];
		ssize_t n;

		if (fcntl(fd, F_GETFD) < 0)
			continue;
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		n = readlink(p, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		len += (size_t) snprintf(out + len, size - len, "%d->%s ", fd, target);
	}
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void read_umask(char *out, size_t size)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];

	snprintf(out, size, "?");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Umask:", 6) == 0)
			snprintf(out, size, "%.24s", line + 6);
	fclose(f);
}

static void state_done(struct pstate *s);

/* s must be zeroed or taken before (a failed assertion skips state_done: the next take frees). */
static void state_take(struct pstate *s)
{
	state_done(s);
	memset(s, 0, sizeof(*s));
	read_fds(s->fds, sizeof(s->fds));
	for (int sig = 1; sig < _NSIG; sig++)
		s->sa_valid[sig] = sigaction(sig, NULL, &s->sa[sig]) == 0;
	(void) pthread_sigmask(SIG_BLOCK, NULL, &s->mask);
	read_umask(s->umask_line, sizeof(s->umask_line));
	for (char **e = environ; *e; e++)
		s->n_env++;
	s->env = calloc(s->n_env + 1, sizeof(char *));
	for (size_t i = 0; i < s->n_env; i++)
		s->env[i] = strdup(environ[i]);
	snprintf(s->locale, sizeof(s->locale), "%s", setlocale(LC_ALL, NULL));
	s->threads = count_threads();
	if (!getcwd(s->cwd, sizeof(s->cwd)))
		s->cwd[0] = '\0';
	(void) getrlimit(RLIMIT_NOFILE, &s->nofile);
}

static void state_done(struct pstate *s)
{
	for (size_t i = 0; s->env && i < s->n_env; i++)
		free(s->env[i]);
	free(s->env);
	s->env = NULL;
	s->n_env = 0;
}

/* Static: still reachable (not a leak report) when an assertion ends a test early. */
static struct pstate before, after;

static void state_assert_same(const struct pstate *a, const struct pstate *b)
{
	if (strcmp(a->fds, b->fds) != 0)
		fail_msg("open fds changed:\n before: %s\n after:  %s", a->fds, b->fds);
	for (int sig = 1; sig < _NSIG; sig++) {
		if (a->sa_valid[sig] != b->sa_valid[sig])
			fail_msg("signal %d: sigaction validity changed", sig);
		if (a->sa_valid[sig] &&
		    (a->sa[sig].sa_handler != b->sa[sig].sa_handler || a->sa[sig].sa_flags != b->sa[sig].sa_flags))
			fail_msg("signal %d (%s): handler or flags changed", sig, strsignal(sig));
		if (sigismember(&a->mask, sig) != sigismember(&b->mask, sig))
			fail_msg("signal %d (%s): blocked mask changed", sig, strsignal(sig));
	}
	assert_string_equal(a->umask_line, b->umask_line);
	if (a->n_env != b->n_env)
		fail_msg("environment: %zu variables before, %zu after", a->n_env, b->n_env);
	for (size_t i = 0; i < a->n_env; i++)
		if (!environ[i] || strcmp(a->env[i], environ[i]) != 0)
			fail_msg("environment changed at '%s'", a->env[i]);
	assert_string_equal(a->locale, b->locale);
	if (a->threads != b->threads)
		fail_msg("threads: %d before, %d after (a thread was left running)", a->threads, b->threads);
	assert_string_equal(a->cwd, b->cwd);
	assert_int_equal(a->nofile.rlim_cur, b->nofile.rlim_cur);
	assert_int_equal(a->nofile.rlim_max, b->nofile.rlim_max);
}

/* ---------------------------------------------------------------- fixture */

static const struct fx_role roles[] = {
	{ "dev", .allow_logins = "{{internal.logins}}", .allow_labels = "env=dev", .mode = TU_HOST_USER_MODE_KEEP },
	{ 0 },
};

static const struct fx_user users[] = {
	{ "alice", "dev", "logins=alice" },
	{ "dave", "dev", "logins=dave" },
	{ 0 },
};

static const struct fx_lock locks[] = {
	{ "lock-dave", "user=dave", "investigation" },
	{ 0 },
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int write_service(void)
{
	char p[600], text[2048];

	snprintf(p, sizeof(p), "%s/pam.d", dir);
	(void) mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/pam.d/tu-safety", dir);
	snprintf(text, sizeof(text), "account required %s config=%s insecure_perms\n", module, config);
	write_file(p, text);
	return 0;
}

static int paths_from_env(void)
{
	const char *b = getenv("top_builddir");

	snprintf(module, sizeof(module), "%s/.libs/pam_teleport.so", b ? b : ".");
	snprintf(nss_so, sizeof(nss_so), "%s/.libs/libnss_teleport.so.2", b ? b : ".");
	snprintf(core_so, sizeof(core_so), "%s/.libs/libteleport-unix.so.0", b ? b : ".");
	snprintf(probe, sizeof(probe), "%s/tests/safety/secure-probe", b ? b : ".");
	if (access(module, R_OK) != 0 || access(nss_so, R_OK) != 0) {
		fprintf(stderr, "modules not built (%s, %s)\n", module, nss_so);
		return -1;
	}
	return 0;
}

/* The environment the modules read: set once, before any state is taken. */
static void set_env(void)
{
	setenv("TELEPORT_UNIX_CACHE_DIR", cache_dir, 1);
	setenv("TELEPORT_UNIX_CONFIG", config, 1);
	setenv("TELEPORT_UNIX_CORE_LIB", core_so, 1);
	setenv("TELEPORT_UNIX_NSS_RECHECK_MSEC", "0", 1);
}

/* Real credentials when the openssl tool is there, so each PAM call and
 * online miss loads them and really dials Auth with libcurl (refused);
 * without it the credentials are missing and the same paths stop earlier. */
static void make_credentials(void)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' 2>/dev/null && command -v openssl >/dev/null && { "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out none.ca "
		 "-subj /CN=example.com -days 2 && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout none.key -out c.csr "
		 "-subj /CN=host-uuid.example.com && "
		 "openssl x509 -req -in c.csr -CA none.ca -CAkey ca.key -CAcreateserial -out none.crt -days 2; "
		 "} >/dev/null 2>&1",
		 dir);
	if (system(cmd) != 0)
		print_message("note: no openssl tool, testing with missing credentials\n");
}

static int setup(void **state)
{
	(void) state;
	char p[600], text[2048];

	if (paths_from_env() < 0)
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/tu-safety-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	(void) chmod(dir, 0755);
	snprintf(cache_dir, sizeof(cache_dir), "%s/cache", dir);
	(void) mkdir(cache_dir, 0755);
	snprintf(config, sizeof(config), "%s/teleport-unix.yaml", dir);
	snprintf(text, sizeof(text),
		 "auth:\n"
		 "  addresses: [\"127.0.0.1:1\"]\n"
		 "  credentials:\n"
		 "    key_pair: { cert: %s/none.crt, key: %s/none.key, ca: %s/none.ca }\n"
		 "  timeouts: { connect: 1s, request: 1s }\n"
		 "host:\n"
		 "  name: web-1\n"
		 "  id: host-uuid\n"
		 "  labels: { env: dev }\n"
		 "cache:\n"
		 "  dir: %s\n"
		 "  negative_ttl: 1s\n"
		 "pam:\n"
		 "  offline: cached\n",
		 dir, dir, dir, cache_dir);
	write_file(config, text);
	write_service();
	make_credentials();

	struct tu_conf *conf = NULL;
	struct tu_err e = { 0 };
	struct tu_dataset d;
	struct tu_labels hl = fx_labels("env=dev");
	struct tu_host h = { "web-1", "host-uuid", NULL, &hl };
	if (tu_conf_load(config, TU_CONF_RELAXED_PERMS, &conf, &e) < 0) {
		fprintf(stderr, "config: %s\n", e.msg);
		return -1;
	}
	fx_dataset_build(&d, users, roles, locks);
	int k = tu_cache_save(conf, &d, &h, tu_now_usec(), NULL, &e);
	if (k < 0)
		fprintf(stderr, "cache: %s\n", e.msg);
	fx_dataset_free(&d);
	fx_labels_free(&hl);
	tu_conf_free(conf);
	if (k < 0)
		return -1;
	set_env();
	/* syslog() keeps a socket to /dev/log once used: the host program's own
	 * logging would have opened it too, so it is open before we look. */
	syslog(LOG_AUTHPRIV | LOG_DEBUG, "test-host-safety: start");
	snprintf(p, sizeof(p), "%s", dir);
	return load_nss();
}

static int teardown(void **state)
{
	(void) state;
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A PAM round: the verdicts of the fixture, decided offline (Auth refused). */
static void pam_round(void)
{
	int r;

	r = pam_acct("alice");
	if (r != PAM_SUCCESS)
		fail_msg("alice: %s", pam_strerror(NULL, r));
	r = pam_acct("dave");
	if (r != PAM_PERM_DENIED)
		fail_msg("dave: %s", pam_strerror(NULL, r));
	r = pam_acct("localonly");
	if (r != PAM_USER_UNKNOWN)
		fail_msg("localonly: %s", pam_strerror(NULL, r));
}

/* ---------------------------------------------------------------- tests */

static void test_many_calls_change_nothing(void **state)
{
	(void) state;

	/* Warm up once (lazy one-time setup of libc, libpam, the core), then compare. */
	pam_round();
	assert_nss_round();
	state_take(&before);
	for (int i = 0; i < 40; i++) {
		pam_round();
		assert_nss_round();
	}
	for (int i = 0; i < 2000; i++)
		assert_int_equal(nss_pwnam(i % 2 ? "alice" : "dave", NULL), NSS_STATUS_SUCCESS);
	state_take(&after);
	state_assert_same(&before, &after);
	state_done(&before);
	state_done(&after);
	if (atomic_load(&recursions))
		fail_msg("the NSS module called %s() (NSS recursion)", recursion_what);
}

static void test_no_nss_recursion_online(void **state)
{
	(void) state;
	char name[32];

	/* Misses as root go online (dlopen of the core, config, credentials,
	 * Auth refused): nothing on that path may resolve a user or group. */
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "miss%d", i);
		assert_int_equal(nss_pwnam(name, NULL), NSS_STATUS_NOTFOUND);
	}
	if (atomic_load(&recursions))
		fail_msg("the NSS module called %s() (NSS recursion)", recursion_what);
	if (geteuid() != 0)
		print_message("note: not root, the online path was not taken\n");
}

static bool wait_child(pid_t pid, int *status, int seconds)
{
	for (int i = 0; i < seconds * 100; i++) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return false;
}

static atomic_bool stop;

static void *hammer(void *arg)
{
	(void) arg;
	while (!atomic_load(&stop))
		(void) nss_pwnam("alice", NULL);
	return NULL;
}

static void test_fork(void **state)
{
	(void) state;
	pthread_t t;

	/* fork() while another thread is inside the module (its locks may be
	 * held at that instant): the child must still answer, never deadlock. */
	atomic_store(&stop, false);
#if defined(__SANITIZE_ADDRESS__)
	/* gcc 12's ASan allocator is not fork-safe (unlike glibc's malloc): a
	 * child forked while another thread is inside malloc blocks on the
	 * runtime's own mutex.  The plain build runs the concurrent case. */
	atomic_store(&stop, true);
#endif
	assert_int_equal(pthread_create(&t, NULL, hammer, NULL), 0);
#if defined(__SANITIZE_ADDRESS__)
	pthread_join(t, NULL);
#endif
	for (int i = 0; i < 20; i++) {
		int status = 0;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			uid_t uid = 0;
			bool ok = nss_pwnam("alice", &uid) == NSS_STATUS_SUCCESS && nss_round() == NSS_ROUND_GOOD;

			if (i % 5 == 0)
				ok = ok && pam_acct("alice") == PAM_SUCCESS && pam_acct("dave") == PAM_PERM_DENIED;
			_exit(ok ? 0 : 3);
		}
		if (!wait_child(pid, &status, 20))
			fail_msg("child %d did not finish within 20 s (deadlock after fork?)", i);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("child %d: status 0x%x", i, status);
	}
#if !defined(__SANITIZE_ADDRESS__)
	atomic_store(&stop, true);
	pthread_join(t, NULL);
#endif
}

static void *refresher(void *arg)
{
	(void) arg;
	(void) nss_pwnam("alice", NULL);
	return NULL;
}

static int forge_snapshot(const char *d, const char *name, uid_t id);

/*
 * Issue 14: a child forked while another thread holds the NSS module's
 * refresh lock must still pick up a new snapshot.  With a pthread mutex the
 * child inherited it locked for ever (nobody in the child can unlock it)
 * and kept its old mapping; the lock now names the holder's process.
 */
static void test_fork_while_refreshing(void **state)
{
	(void) state;
	char other[600];
	pthread_t t;
	int status = 0;

	snprintf(other, sizeof(other), "%s/forked", dir);
	(void) mkdir(other, 0755);
	assert_int_equal(forge_snapshot(other, "forkling", 4343), 0);
	assert_int_equal(nss_pwnam("alice", NULL), NSS_STATUS_SUCCESS); /* a mapping to keep */

	atomic_store(&stall_release, false);
	atomic_store(&stall_entered, false);
	atomic_store(&stall_armed, true);
	assert_int_equal(pthread_create(&t, NULL, refresher, NULL), 0);
	for (int i = 0; i < 1000 && !atomic_load(&stall_entered); i++)
		usleep(10000);
	if (!atomic_load(&stall_entered)) {
		atomic_store(&stall_armed, false);
		atomic_store(&stall_release, true);
		pthread_join(t, NULL);
		fail_msg("the refresher never reached stat() under the refresh lock");
	}
	pid_t pid = fork(); /* the refresher thread holds the lock right now */
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The child's snapshot moves: it must see the new one within the recheck time. */
		setenv("TELEPORT_UNIX_CACHE_DIR", other, 1);
		setenv("TELEPORT_UNIX_NSS_ONLINE", "0", 1);
		for (int i = 0; i < 200; i++) {
			uid_t uid = 0;

			if (nss_pwnam("forkling", &uid) == NSS_STATUS_SUCCESS && uid == 4343)
				_exit(0);
			usleep(10000);
		}
		_exit(3);
	}
	atomic_store(&stall_release, true);
	pthread_join(t, NULL);
	if (!wait_child(pid, &status, 20))
		fail_msg("the child did not finish within 20 s");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the child kept its old snapshot: the refresh lock was inherited held (status 0x%x)", status);
	assert_int_equal(nss_pwnam("alice", NULL), NSS_STATUS_SUCCESS); /* the parent is unaffected */
}

static atomic_int thread_failures;
static char first_failure[256];

static void thread_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void thread_failed(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&thread_failures, 1) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
	va_end(ap);
}

static void *worker(void *arg)
{
	int n = (int) (intptr_t) arg, good, r;

	for (int i = 0; i < 10; i++) {
		if ((good = nss_round()) != NSS_ROUND_GOOD)
			thread_failed("thread %d round %d: %d of %d NSS answers as expected (%s)", n, i,
				      good, NSS_ROUND_GOOD, round_why);
		if ((i + n) % 3 == 0) {
			if ((r = pam_acct("alice")) != PAM_SUCCESS)
				thread_failed("thread %d round %d: alice: %s", n, i, pam_strerror(NULL, r));
			if ((r = pam_acct("dave")) != PAM_PERM_DENIED)
				thread_failed("thread %d round %d: dave: %s", n, i, pam_strerror(NULL, r));
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void) state;
	pthread_t t[8];

	state_take(&before);
	atomic_store(&thread_failures, 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, (void *) (intptr_t) i), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	if (atomic_load(&thread_failures))
		fail_msg("%d wrong answers; the first: %s", atomic_load(&thread_failures), first_failure);
	state_take(&after);
	state_assert_same(&before, &after);
	state_done(&before);
	state_done(&after);
}

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/*
 * Occupies every free fd below `top` with /dev/null, so that the next fd the
 * process gets is `top` whatever it inherited (a shell or CI runner may leave
 * a high fd open, and a limit above it would leave hundreds of holes free).
 * Returns how many it opened, their numbers in fills[].
 */
static int fill_fd_holes(int top, int *fills, int max)
{
	int n = 0;

	for (;;) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			fail_msg("filling fd holes: %s", strerror(errno));
		if (fd >= top) {
			close(fd);
			return n;
		}
		if (n == max)
			fail_msg("more than %d free fds below %d", max, top);
		fills[n++] = fd;
	}
}

static void test_rlimit_nofile(void **state)
{
	(void) state;
	static int fills[4096];
	struct rlimit saved, lim;
	int used = 0, n_fills;
	char why[600] = "";

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			used = fd + 1;
	n_fills = fill_fd_holes(used, fills, (int) (sizeof(fills) / sizeof(fills[0])));
	/*
	 * No fd at all, then one, two, three left: never a crash, never a wrong
	 * allow, nothing leaked.  PAM is started before the limit drops, as in an
	 * sshd that runs out of fds mid-session: it is the module, not libpam's
	 * reading of its own configuration, that must cope (libpam 1.5.2 also
	 * leaks a little when pam_start() cannot open the service file).
	 */
	for (int spare = 0; spare <= 3 && !why[0]; spare++) {
		int fds_before = open_fds(), r;
		pam_handle_t *dave = NULL, *localonly = NULL;
		uid_t uid = 0;
		enum nss_status st;

		if ((r = pam_open("dave", &dave)) != PAM_SUCCESS || (r = pam_open("localonly", &localonly)) != PAM_SUCCESS) {
			snprintf(why, sizeof(why), "spare %d: pam_start: %s", spare, pam_strerror(NULL, r));
			if (dave)
				pam_end(dave, r);
			break;
		}
		lim = saved;
		lim.rlim_cur = (rlim_t) (used + spare);
		if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
			snprintf(why, sizeof(why), "setrlimit: %s", strerror(errno));
		/* Proof that the limit bites: with no spare fd, nothing more opens. */
		if (!why[0] && spare == 0 && (r = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
			close(r);
			snprintf(why, sizeof(why), "spare 0: an fd could still be opened");
		}
		if (!why[0] && (st = nss_pwnam("alice", &uid)) != NSS_STATUS_SUCCESS && st != NSS_STATUS_UNAVAIL &&
		    st != NSS_STATUS_TRYAGAIN)
			snprintf(why, sizeof(why), "spare %d: alice: nss status %d", spare, st);
		if (!why[0] && nss_pwnam("no-such-login", NULL) == NSS_STATUS_SUCCESS)
			snprintf(why, sizeof(why), "spare %d: no-such-login found", spare);
		r = pam_acct_mgmt(dave, PAM_SILENT);
		if (!why[0] && r == PAM_SUCCESS)
			snprintf(why, sizeof(why), "spare %d: dave allowed with RLIMIT_NOFILE exhausted", spare);
		pam_end(dave, r);
		r = pam_acct_mgmt(localonly, PAM_SILENT);
		if (!why[0] && r == PAM_SUCCESS)
			snprintf(why, sizeof(why), "spare %d: localonly allowed with RLIMIT_NOFILE exhausted", spare);
		pam_end(localonly, r);
		/* Whatever happened: the limit back before judging the fds, and before any failure. */
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
		if (!why[0] && open_fds() != fds_before) {
			char now[4096];

			read_fds(now, sizeof(now));
			snprintf(why, sizeof(why), "spare %d: %d fds open before, %d after: %.400s", spare, fds_before,
				 open_fds(), now);
		}
	}
	for (int i = 0; i < n_fills; i++)
		close(fills[i]);
	if (why[0])
		fail_msg("%s", why);
	/* And everything works again. */
	pam_round();
	assert_nss_round();
}

/* Writes DIR/accounts.db (0644) serving one account NAME with uid/gid ID. */
static int forge_snapshot(const char *d, const char *name, uid_t id)
{
	char path[700];
	struct tu_err e = { 0 };
	const struct tu_pw_rec pw = { name, "forged", "/root", "/bin/sh", id, id, NULL, 0 };
	const struct tu_gr_rec gr = { name, id, NULL, 0 };
	int r;

	snprintf(path, sizeof(path), "%s/accounts.db", d);
	r = tu_snapshot_write_accounts(path, &pw, 1, &gr, 1, 1, tu_now_usec(), &e);
	if (r < 0)
		fprintf(stderr, "forge: %s\n", e.msg);
	return r < 0 ? r : chmod(path, 0644);
}

/* Runs the probe with a forged snapshot in TELEPORT_UNIX_CACHE_DIR; returns its exit status. */
static int run_probe(const char *exe, const char *forged_dir)
{
	pid_t pid = fork();
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = { (char *) exe, nss_so, core_so, (char *) (strstr(exe, "-suid") ? "expect-secure" : "control"), NULL };
		char env_cache[700], env_conf[700];

		snprintf(env_cache, sizeof(env_cache), "TELEPORT_UNIX_CACHE_DIR=%s", forged_dir);
		snprintf(env_conf, sizeof(env_conf), "TELEPORT_UNIX_CONFIG=%s/forged.yaml", forged_dir);
		char *envp[] = { env_cache, env_conf, (char *) "TELEPORT_UNIX_NSS_ONLINE=0", NULL };
		execve(exe, argv, envp);
		_exit(127);
	}
	if (!wait_child(pid, &status, 20))
		fail_msg("%s did not finish", exe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_setuid_ignores_environment(void **state)
{
	(void) state;
	char forged[600], copy[700], cmd[16384];
	int r;

	if (geteuid() != 0)
		skip();
#if defined(__SANITIZE_ADDRESS__)
	/* The loader ignores LD_PRELOAD for a setuid program, so an instrumented
	 * module cannot be loaded into it: the plain build runs this one. */
	skip();
#endif
	if (access(probe, X_OK) != 0)
		fail_msg("%s not built", probe);
	/* A forged snapshot serving 'forged' (uid 4242), where the environment points. */
	snprintf(forged, sizeof(forged), "%s/forged", dir);
	(void) mkdir(forged, 0755);
	assert_int_equal(forge_snapshot(forged, "forged", 4242), 0);

	/* Control: an ordinary program honours the environment (exit 10 = forged account served). */
	r = run_probe(probe, forged);
	assert_int_equal(r, 10);

	/* The same program setuid to nobody: AT_SECURE, the variables are ignored (exit 0). */
	snprintf(copy, sizeof(copy), "%s/secure-probe-suid", dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chown 65534:65534 '%s' && chmod 04755 '%s'", probe, copy, copy,
		 copy);
	assert_int_equal(system(cmd), 0);
	r = run_probe(copy, forged);
	if (r == 77)
		skip(); /* nosuid mount: no AT_SECURE to test */
	assert_int_equal(r, 0);
}

/* `--calls CONFIG CACHE_DIR LOGIN...`: the calls only, for strace. */
static int calls_only(int argc, char **argv)
{
	if (argc < 4 || paths_from_env() < 0)
		return 2;
	snprintf(config, sizeof(config), "%s", argv[2]);
	snprintf(cache_dir, sizeof(cache_dir), "%s", argv[3]);
	snprintf(dir, sizeof(dir), "%s", getenv("TU_SAFETY_DIR") ? getenv("TU_SAFETY_DIR") : "/tmp");
	write_service();
	set_env();
	if (load_nss() < 0)
		return 2;
	for (int i = 4; i < argc; i++) {
		uid_t uid;

		printf("pam %s: %s\n", argv[i], pam_strerror(NULL, pam_acct(argv[i])));
		printf("nss %s: %d\n", argv[i], (int) nss_pwnam(argv[i], &uid));
	}
	(void) nss_round();
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_calls_change_nothing),
		cmocka_unit_test(test_no_nss_recursion_online),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_fork_while_refreshing),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_rlimit_nofile),
		cmocka_unit_test(test_setuid_ignores_environment),
	};

	if (argc > 1 && strcmp(argv[1], "--calls") == 0)
		return calls_only(argc, argv);
	return cmocka_run_group_tests(tests, setup, teardown);
}
