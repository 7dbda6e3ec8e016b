/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dl.c - the NSS module's only way online (SPEC §6, STYLE §2.9.9): on a
 * miss, and only when every condition holds, dlopen libteleport-unix.so.0
 * (RTLD_NOW|RTLD_LOCAL) and call its versioned table (online.h) to refresh
 * the snapshot; the caller then looks up again.  Layer: nss.  Nothing here
 * links against the core: a process that never misses as root never loads
 * libcurl, OpenSSL, libyaml or protobuf-c.
 *
 * TELEPORT_UNIX_NSS_DEBUG=1 (secure_getenv) passes debug to the core and logs
 * each attempt at LOG_DEBUG (attempts are throttled, so the log is too).
 *
 * Conditions: the core loaded the last time we tried (or that was more than
 * 10 s ago); real and effective uid 0; not AT_SECURE (never in setuid/setgid
 * programs);
 * TELEPORT_UNIX_NSS_ONLINE is not "0"; the configuration file exists (else
 * there is nothing to fetch); no other thread of this process is
 * online right now (we do not queue behind it: the miss stands); the same
 * name or id was not tried by this process in the last second.
 *
 * Every "no" above but the last two, and the lock file's "the last attempt is
 * recent" (nss.c), is remembered for up to 100 ms (never past the end of
 * cache.negative_ttl) in one atomic coarse-clock deadline, so that a stream
 * of misses the snapshot answered costs a clock read each instead of a
 * dozen system calls (tu_nss_offline_lately).  Only "stay offline" is ever
 * remembered: going online always re-checks everything with fresh system
 * calls, so the memo can delay a refresh by at most 100 ms and never allow
 * one; a child forked within those 100 ms inherits the same facts.  The core
 * applies cache.negative_ttl across processes (the snapshot's age) and the
 * config's connect + request timeouts, and logs through our syslog function.
 * The library stays loaded once loaded: OpenSSL and libcurl do not support
 * being unloaded, and a second miss should not pay the load again.
 */
#include "dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "idhash.h"
#include "online.h"

#define LIB_ENV         "TELEPORT_UNIX_CORE_LIB"
#define DEBUG_ENV       "TELEPORT_UNIX_NSS_DEBUG"
#define ONLINE_ENV      "TELEPORT_UNIX_NSS_ONLINE"
#define CONFIG_ENV      "TELEPORT_UNIX_CONFIG"
#define LIB_NAME        "libteleport-unix.so.0"
#define RETRY_NSEC      1000000000ull
#define RECENT_KEYS     16
#define LOAD_RETRY_NSEC 10000000000ull

/* How long a "stay offline" answer is believed for a miss the snapshot answered. */
#define OFFLINE_MEMO_NSEC 100000000ull

/*
 * Tells packagers that this module may dlopen the core (systemd's ".note.dlopen"
 * convention: owner "FDO", type 0x407c0c0a, a JSON list as descriptor).
 */
#define DLOPEN_NOTE_JSON                                                                              \
	"[{\"feature\":\"online\",\"description\":\"Look up Teleport users missing from the cache\"," \
	"\"priority\":\"recommended\",\"soname\":[\"" LIB_NAME "\"]}]"

__attribute__((used, section(".note.dlopen"), aligned(4))) static const struct {
	uint32_t n_namesz, n_descsz, n_type;
	char name[4];
	__attribute__((aligned(4))) char desc[sizeof(DLOPEN_NOTE_JSON)];
} dlopen_note = {
    .n_namesz = 4,
    .n_descsz = sizeof(DLOPEN_NOTE_JSON),
    .n_type = 0x407c0c0a,
    .name = "FDO",
    .desc = DLOPEN_NOTE_JSON,
};

static pthread_mutex_t online_lock = PTHREAD_MUTEX_INITIALIZER;
/* Under online_lock: the loaded table, and what this process tried lately. */
static const struct tu_online_v1 *table;
static _Atomic uint64_t
    load_failed_nsec; /* when loading last failed (retried after LOAD_RETRY_NSEC) */

static struct {
	uint64_t key;
	uint64_t when_nsec;
} recent[RECENT_KEYS];

static size_t recent_next;

/* CLOCK_MONOTONIC_COARSE time before which a miss the snapshot answered stays a miss
 * without asking again (0: nothing known).  Facts about the file system and this
 * process's credentials: a forked child may keep them (see the header comment). */
static _Atomic uint64_t offline_until_nsec;
/* The coarse clock's resolution (ns), read once; 0 until then. */
static _Atomic uint64_t coarse_res_nsec;

static uint64_t mono_nsec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static uint64_t coarse_nsec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0)
		return 0;
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

void tu_nss_remember_offline(uint64_t for_nsec)
{
	uint64_t res = atomic_load_explicit(&coarse_res_nsec, memory_order_relaxed);

	if (!res) {
		struct timespec ts;

		/* A coarse reading lags the true time by up to one tick: keep a tick in hand. */
		res = clock_getres(CLOCK_MONOTONIC_COARSE, &ts) == 0 && ts.tv_sec == 0 && ts.tv_nsec > 0
			  ? (uint64_t) ts.tv_nsec
			  : OFFLINE_MEMO_NSEC;
		atomic_store_explicit(&coarse_res_nsec, res, memory_order_relaxed);
	}
	if (for_nsec > OFFLINE_MEMO_NSEC)
		for_nsec = OFFLINE_MEMO_NSEC;
	if (for_nsec <= res)
		return;
	uint64_t now = coarse_nsec();
	if (now)
		atomic_store_explicit(&offline_until_nsec, now + for_nsec - res, memory_order_relaxed);
}

bool tu_nss_offline_lately(void)
{
	uint64_t until = atomic_load_explicit(&offline_until_nsec, memory_order_relaxed);

	return until && coarse_nsec() < until;
}

static void log_syslog(void *userdata, int priority, const char *msg)
{
	/* No openlog(): the host program's identity and facility stay as they are. */
	syslog(LOG_AUTHPRIV | (priority & LOG_PRIMASK), "teleport-unix nss: %s", msg);
}

/*
 * Not configured (no configuration file: a package installed, nothing set up
 * yet): the core would find nothing to fetch, so a miss stays a miss without
 * loading it, and an unconfigured host pays nothing for the module.  The
 * same path the core reads: TELEPORT_UNIX_CONFIG (secure_getenv) or the
 * default.  Any answer but "no such file" lets the core decide.
 */
static bool configured(void)
{
	const char *p = secure_getenv(CONFIG_ENV);
	bool yes;

	if (!p || !*p)
		p = TU_SYSCONFDIR "/teleport-unix.yaml";
	yes = access(p, F_OK) == 0 || errno != ENOENT;
	return yes;
}

bool tu_nss_online_allowed(void)
{
	uint64_t failed = atomic_load(&load_failed_nsec);
	const char *e;

	/* Cheapest first: a core that would not load a moment ago is not tried again yet. */
	if (failed && mono_nsec() - failed < LOAD_RETRY_NSEC)
		return false;
	/* Going online writes root's cache: never for a process that runs on someone else's
	 * behalf (real uid not root, setuid/setgid), who could stop or starve the writer. */
	if (geteuid() != 0 || getuid() != 0 || getauxval(AT_SECURE) != 0)
		goto no;
	e = secure_getenv(ONLINE_ENV);
	if (e && strcmp(e, "0") == 0)
		goto no;
	if (configured())
		return true;
no:
	tu_nss_remember_offline(OFFLINE_MEMO_NSEC);
	return false;
}

/* Loads the core once.  Caller holds online_lock.  NULL when it cannot be used. */
/*
 * A core named by TELEPORT_UNIX_CORE_LIB (tests) is loaded only when root
 * (or the process's real effective user, which could LD_PRELOAD anyway: the
 * raw syscall sees through uid_wrapper) owns it and nobody else can write it;
 * otherwise the installed core is used.
 */
static bool trusted_lib(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (st.st_uid != 0 && st.st_uid != (uid_t) syscall(SYS_geteuid)) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		syslog(LOG_AUTHPRIV | LOG_WARNING,
		       "teleport-unix nss: %s=%s is not a file owned by root that others cannot write, ignoring",
		       LIB_ENV, path);
		return false;
	}
	return true;
}

static const struct tu_online_v1 *load_locked(void)
{
	const struct tu_online_v1 *(*get)(void);
	const struct tu_online_v1 *t;
	const char *path = secure_getenv(LIB_ENV);
	void *h;

	if (table)
		return table;
	atomic_store(&load_failed_nsec, mono_nsec() | 1); /* cleared below on success */
	if (!path || path[0] != '/' || !trusted_lib(path))
		path = TU_PKGLIBDIR "/" LIB_NAME;
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		syslog(LOG_AUTHPRIV | LOG_WARNING,
		       "teleport-unix nss: cannot load %s: %s, staying offline", path, dlerror());
		return NULL;
	}
	*(void **) &get = dlsym(h, TU_ONLINE_SYMBOL);
	t = get ? get() : NULL;
	if (!t || t->version != TU_ONLINE_VERSION ||
	    t->size < offsetof(struct tu_online_v1, refresh_for_id) + sizeof(t->refresh_for_id) ||
	    !t->refresh_for_name || !t->refresh_for_id) {
		syslog(LOG_AUTHPRIV | LOG_WARNING,
		       "teleport-unix nss: %s has no usable %s table, staying offline", path,
		       TU_ONLINE_SYMBOL);
		(void) dlclose(h);
		return NULL;
	}
	table = t; /* the handle stays open for the life of the process */
	atomic_store(&load_failed_nsec, 0);
	return table;
}

static bool tried_lately_locked(uint64_t key, uint64_t now)
{
	for (size_t i = 0; i < RECENT_KEYS; i++)
		if (recent[i].when_nsec && recent[i].key == key &&
		    now - recent[i].when_nsec < RETRY_NSEC)
			return true;
	recent[recent_next].key = key;
	recent[recent_next].when_nsec = now ? now : 1;
	recent_next = (recent_next + 1) % RECENT_KEYS;
	return false;
}

int tu_nss_online_refresh(const char *name, uint32_t id)
{
	struct tu_online_req req = {
	    .size = sizeof(req),
	    .config_path = NULL,
	    .log_fn = log_syslog,
	    .log_userdata = NULL,
	    .debug = false,
	};
	const struct tu_online_v1 *t;
	struct timespec rt;
	uint64_t key;
	int r;

	if (!tu_nss_online_allowed())
		return -EPERM;
	/* Names and ids live in different key spaces. */
	key = name ? tu_idhash_fnv1a(name) | 1u : ((uint64_t) id << 1);
	if (pthread_mutex_trylock(&online_lock) != 0)
		return -EBUSY;
	if (tried_lately_locked(key, mono_nsec())) {
		(void) pthread_mutex_unlock(&online_lock);
		return -ENOENT;
	}
	t = load_locked();
	if (!t) {
		(void) pthread_mutex_unlock(&online_lock);
		return -ENOPKG;
	}
	if (clock_gettime(CLOCK_REALTIME, &rt) == 0)
		req.now_usec = (int64_t) rt.tv_sec * 1000000 + rt.tv_nsec / 1000;
	{
		const char *d = secure_getenv(DEBUG_ENV);

		req.debug = d && *d && strcmp(d, "0") != 0;
	}
	r = name ? t->refresh_for_name(&req, name) : t->refresh_for_id(&req, id);
	(void) pthread_mutex_unlock(&online_lock);
	if (req.debug && name)
		syslog(LOG_AUTHPRIV | LOG_DEBUG, "teleport-unix nss: online refresh for a name: %d",
		       r);
	else if (req.debug)
		syslog(LOG_AUTHPRIV | LOG_DEBUG, "teleport-unix nss: online refresh for id %u: %d",
		       id, r);
	return r;
}
