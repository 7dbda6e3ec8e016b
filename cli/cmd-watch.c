/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd-watch.c - `teleport-unix watch` (issue 13): hold one
 * AuthService/WatchEvents stream for user, role, lock and
 * cluster_auth_preference and keep both cache snapshots current.
 *
 *   - After each INIT: one full list (the same fetch as `sync`), written
 *     under the refresh lock; Teleport's caches do the same.  Nothing else
 *     is listed while the stream lasts.
 *   - Each PUT/DELETE is applied to the dataset held in memory
 *     (libcore/watch.c) and both snapshots are rewritten under the lock as
 *     soon as the batch of events that arrived together is applied (the
 *     transport's tick runs after each batch of reads), so one write covers
 *     a burst and a lone change is on disk within milliseconds.
 *   - The work per write follows the change, not the cluster: the mapping
 *     keeps each user's result (tu_accounts_memo: a user event maps that
 *     user again, a role event its holders; the global step, ids and groups,
 *     runs in full), and state.db's records stay encoded between writes (an
 *     event re-encodes its record only).  A lock or the auth preference
 *     rewrites state.db alone.
 *   - On any error (stream reset, Auth restart, malformed event, failed
 *     write) the stream is dropped (fail closed), and a new one is opened
 *     after Teleport's jittered exponential backoff (watch.h), which ends
 *     in a new INIT and a new list.
 *   - <cache.dir>/watch.state tells `status`, `sync`, PAM and `check`
 *     whether the cache is current (phase "current", heartbeat every 5 s).
 *   - systemd: READY=1 once the configuration and credentials are loaded,
 *     STATUS= on each change (sd_notify written by hand: no libsystemd).
 * SIGTERM/SIGINT stop it cleanly (exit 0, state "stopped").
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "cleanup.h"
#include "cli.h"
#include "conf.h"
#include "ctx.h"
#include "err.h"
#include "log.h"
#include "model.h"
#include "parse.h"
#include "transport.h"
#include "watch.h"

#define REWRITE_QUIET_USEC (INT64_C(3600) * 1000000)
/* Another writer (a forced sync) may hold the cache lock for a while: retry on the next ticks,
 * but not longer than this with changes only in memory (PAM would decide from an older file). */
#define MAX_UNWRITTEN_USEC (UINT64_C(10) * 1000000)
#define LOCK_WAIT_USEC     (UINT64_C(1) * 1000000)

/* state.db's records of one kind, encoded, parallel to the dataset's array (data NULL: not yet). */
struct enc_list {
	struct tu_cache_blob *v;
	size_t n;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

/* sd_notify(3)'s datagram, without libsystemd. */
static void notify(const char *msg)
{
	const char *path = secure_getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n;
	int fd;

	if (!path || !*path || (path[0] != '/' && path[0] != '@'))
		return;
	n = strlen(path);
	if (n >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void) sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *) &sa,
		      (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
}

static double random01(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t) sizeof(v))
		v = (uint64_t) tu_transport_now_usec() * UINT64_C(6364136223846793005) +
		    (uint64_t) getpid();
	return (double) (v >> 11) / (double) (UINT64_C(1) << 53);
}

struct watcher {
	struct cli *c;
	struct tu_ctx *ctx; /* per attempt: config and credentials re-read */
	struct tu_host host;
	struct tu_dataset d;
	bool have_d;
	bool init_seen;
	bool dirty;
	uint64_t dirty_since; /* CLOCK_MONOTONIC: the first change not yet written */
	bool accounts_dirty;  /* a user or role changed: accounts.db too, not only state.db */
	bool linked;
	int64_t next_expiry_usec; /* a user expires then: recompute the accounts */
	uint64_t stream_start;    /* CLOCK_MONOTONIC */
	uint64_t last_heartbeat;
	uint64_t init_timeout_usec;
	struct tu_watch_state st;
	struct tu_accounts_memo *memo;
	struct enc_list enc_users, enc_roles, enc_locks;
	bool full_writes; /* --full-writes: every write maps, encodes and writes everything */
};

static void enc_reset(struct enc_list *l, size_t n)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].data);
	free(l->v);
	*l = (struct enc_list){0};
	if (n == 0)
		return;
	l->v = calloc(n, sizeof(*l->v));
	if (l->v)
		l->n = n;
}

/* Follows what tu_watch_apply_change did to the array of n records (now); anything unexpected
 * starts the list over (every record encoded again by the next write). */
static void enc_follow(struct enc_list *l, const struct tu_watch_change *ch, size_t n)
{
	switch (ch->what) {
	case TU_WATCH_REPLACED:
		if (ch->index < l->n) {
			free(l->v[ch->index].data);
			l->v[ch->index] = (struct tu_cache_blob){0};
		}
		break;
	case TU_WATCH_ADDED:
		if (ch->index == l->n) {
			struct tu_cache_blob *nv = reallocarray(l->v, l->n + 1, sizeof(*nv));
			if (nv) {
				l->v = nv;
				l->v[l->n++] = (struct tu_cache_blob){0};
			}
		}
		break;
	case TU_WATCH_REMOVED:
		if (ch->index < l->n) {
			free(l->v[ch->index].data);
			memmove(&l->v[ch->index], &l->v[ch->index + 1],
				(l->n - ch->index - 1) * sizeof(*l->v));
			l->n--;
		}
		break;
	case TU_WATCH_UNCHANGED:
		break;
	}
	if (l->n != n)
		enc_reset(l, n);
}

/* Encodes what is missing; -ENOMEM (nothing lost: the save encodes what is still missing). */
static int enc_fill(struct watcher *w)
{
	int r = 0;

	if (w->enc_users.n != w->d.n_users)
		enc_reset(&w->enc_users, w->d.n_users);
	if (w->enc_roles.n != w->d.n_roles)
		enc_reset(&w->enc_roles, w->d.n_roles);
	if (w->enc_locks.n != w->d.n_locks)
		enc_reset(&w->enc_locks, w->d.n_locks);
	for (size_t i = 0; r >= 0 && i < w->enc_users.n; i++)
		if (!w->enc_users.v[i].data)
			r = tu_cache_encode_user(&w->d.users[i], &w->enc_users.v[i]);
	for (size_t i = 0; r >= 0 && i < w->enc_roles.n; i++)
		if (!w->enc_roles.v[i].data)
			r = tu_cache_encode_role(&w->d.roles[i], &w->enc_roles.v[i]);
	for (size_t i = 0; r >= 0 && i < w->enc_locks.n; i++)
		if (!w->enc_locks.v[i].data)
			r = tu_cache_encode_lock(&w->d.locks[i], &w->enc_locks.v[i]);
	return r;
}

/*
 * The identity of the credential this attempt uses, for PAM and `check` (issue 13 item 6,
 * ctx.h tu_ctx_host_hinted): the file and its stamp as tu_creds_load read it, so a renewed
 * or replaced certificate no longer matches.  Nothing for a tsh profile or a file that
 * changed while it was read.
 */
static void record_host(const struct tu_conf *conf, struct tu_watch_state *st, const struct tu_creds *cr)
{
	struct tu_err e;
	char why[600];

	tu_watch_state_set_host(st, cr);
	/* The same identity in host.identity, for offline decisions while no watcher runs
	 * (issue 10, watch.h tu_host_record_write). */
	tu_err_clear(&e);
	if (tu_host_record_write(conf, cr, &e) < 0)
		tu_log(LOG_WARNING, "watch: %s, ignoring", tu_err_format(&e, why, sizeof(why)));
}

static void write_state(struct watcher *w)
{
	struct tu_err e;
	char why[600];

	w->st.heartbeat_usec = tu_now_usec();
	w->last_heartbeat = tu_transport_now_usec();
	tu_err_clear(&e);
	if (tu_watch_state_write(tu_ctx_conf(w->ctx), &w->st, &e) < 0)
		tu_log(LOG_WARNING, "watch: %s, ignoring", tu_err_format(&e, why, sizeof(why)));
}

static void notify_status(struct watcher *w)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "STATUS=%s; %" PRIu64 " events, %" PRIu64 " lists, %" PRIu64
				   " reconnects",
		 tu_watch_phase_name(w->st.phase), w->st.events, w->st.relists, w->st.reconnects);
	notify(msg);
}

static int64_t next_expiry(const struct tu_dataset *d, int64_t now)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < d->n_users; i++)
		if (d->users[i].has_expires && d->users[i].expires_usec > now &&
		    d->users[i].expires_usec < next)
			next = d->users[i].expires_usec;
	return next;
}

/* CPU time of this process (single-threaded): a write's cost whatever the machine's load. */
static int64_t cpu_usec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
		return 0;
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Both snapshots from w->d, under the refresh lock: the accounts through the memo, state.db from
 * the records encoded so far plus those an event touched. */
static int flush(struct watcher *w, struct tu_err *e)
{
	const struct tu_conf *conf = tu_ctx_conf(w->ctx);
	_cleanup_close_ int lock_fd = -1;
	struct tu_cache_accounts_opts co = {0};
	struct tu_accounts acc = {0};
	struct tu_cache_write_stats ws = {0};
	uint64_t t0 = tu_transport_now_usec();
	int64_t cpu0 = cpu_usec();
	size_t recomputed = 0;
	int64_t now;
	int r;

	/* A short wait: the tick keeps the stream read and the heartbeat going, and retries. */
	r = tu_cache_lock(conf, LOCK_WAIT_USEC, &lock_fd, NULL, e);
	if (r < 0) {
		tu_err_prefix(e, "waiting for the cache lock");
		return r;
	}
	now = tu_now_usec();
	/* A lock or the auth preference cannot change the accounts: state.db alone is a fraction
	 * of the work (no accounts to compute, one file). */
	if (w->accounts_dirty) {
		r = tu_cache_accounts_opts_load(conf, NULL, &co, e);
		if (r >= 0)
			r = tu_accounts_compute_memo(w->memo, &w->d, &w->host, &co.opts, now, &acc, e);
		recomputed = w->memo ? tu_accounts_memo_last_computed(w->memo) : w->d.n_users;
	}
	if (r >= 0 && !w->full_writes && enc_fill(w) < 0) {
		/* Out of memory keeping encodings: start over, the save encodes what it needs. */
		enc_reset(&w->enc_users, 0);
		enc_reset(&w->enc_roles, 0);
		enc_reset(&w->enc_locks, 0);
	}
	if (r >= 0) {
		struct tu_cache_encoded pre = {
		    .users = w->enc_users.n == w->d.n_users ? w->enc_users.v : NULL,
		    .roles = w->enc_roles.n == w->d.n_roles ? w->enc_roles.v : NULL,
		    .locks = w->enc_locks.n == w->d.n_locks ? w->enc_locks.v : NULL,
		};
		/* The accounts as a delta next to accounts.db when few changed (cache.h
		 * tu_cache_save_incremental), else accounts.db in full. */
		r = tu_cache_save_prepared(conf, &w->d, w->accounts_dirty ? &acc : NULL,
					   w->full_writes ? NULL : &pre, now, !w->full_writes, &ws, e);
	}
	tu_accounts_done(&acc);
	tu_cache_accounts_opts_done(&co);
	if (r < 0) {
		tu_err_prefix(e, "writing the cache");
		return r;
	}
	w->dirty = false;
	w->accounts_dirty = false;
	w->st.last_write_usec = now;
	w->st.write_duration_usec = (int64_t) (tu_transport_now_usec() - t0);
	/* "delta": accounts.delta (and state.delta or state.db); "state": no accounts to write
	 * (state.delta or state.db); "full": both files in full. */
	snprintf(w->st.write_kind, sizeof(w->st.write_kind), "%s",
		 !ws.accounts_written ? "state"
		 : ws.accounts_delta || ws.state_delta ? "delta"
						       : "full");
	w->st.write_bytes = ws.state_bytes + ws.accounts_bytes;
	w->st.write_recomputed = recomputed;
	w->st.write_cpu_usec = cpu_usec() - cpu0;
	tu_log(LOG_DEBUG,
	       "watch: wrote %s (%" PRIu64 " bytes) in %.1f ms: mapping %.1f ms (%zu users mapped), "
	       "%zu records encoded in %.1f ms, files %.1f ms",
	       !ws.accounts_written ? (ws.state_delta ? "state.delta" : "state.db")
	       : ws.accounts_delta  ? (ws.state_delta ? "accounts.delta and state.delta"
						      : "accounts.delta and state.db")
				    : (ws.state_delta ? "accounts.db and state.delta"
						      : "accounts.db and state.db"),
	       w->st.write_bytes,
	       (double) w->st.write_duration_usec / 1000.0, (double) ws.compute_usec / 1000.0,
	       recomputed, ws.encoded, (double) ws.encode_usec / 1000.0,
	       (double) ws.write_usec / 1000.0);
	w->next_expiry_usec = next_expiry(&w->d, now);
	if (!w->linked && !w->c->insecure_perms) {
		struct tu_err le;
		char why[600];
		tu_err_clear(&le);
		if (tu_cache_link_default(conf, &le) < 0)
			tu_log(LOG_WARNING, "watch: the NSS module will not find this cache: %s",
			       tu_err_format(&le, why, sizeof(why)));
		w->linked = true;
	}
	return 0;
}

/* INIT: check the kinds, list everything once, write. */
static int on_init(struct watcher *w, const struct tu_event *ev, struct tu_err *e)
{
	struct tu_dataset d = {0};
	struct tu_auth *auth = NULL;
	int r;

	if (ev->has_status && (ev->confirmed & TU_EVENT_KINDS_ALL) != TU_EVENT_KINDS_ALL) {
		char missing[128] = "";
		for (int k = TU_EVENT_KIND_USER; k <= TU_EVENT_KIND_AUTH_PREF; k++)
			if (!(ev->confirmed & (1u << k)))
				snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
					 "%s%s", missing[0] ? ", " : "",
					 tu_event_kind_name((enum tu_event_kind) k));
		return tu_err_set(e, -EACCES, "Auth did not accept watching %s", missing);
	}
	r = tu_ctx_auth(w->ctx, tu_now_usec(), &auth, e);
	if (r >= 0)
		r = tu_auth_fetch_all(auth, &d, e);
	if (r < 0) {
		tu_dataset_done(&d);
		tu_err_prefix(e, "listing after INIT");
		return r;
	}
	tu_auth_note_auth_pref(&d.auth_pref);
	tu_dataset_done(&w->d);
	w->d = d;
	w->have_d = true;
	w->accounts_dirty = true;
	/* A new listing (and maybe a new host identity or configuration): map and encode all. */
	tu_accounts_memo_clear(w->memo);
	enc_reset(&w->enc_users, w->d.n_users);
	enc_reset(&w->enc_roles, w->d.n_roles);
	enc_reset(&w->enc_locks, w->d.n_locks);
	r = flush(w, e);
	if (r < 0)
		return r;
	w->init_seen = true;
	w->st.relists++;
	w->st.phase = TU_WATCH_CURRENT;
	w->st.connected_since_usec = tu_now_usec();
	w->st.attempt = 0;
	write_state(w);
	notify_status(w);
	tu_log(LOG_INFO, "watch: current (%zu users, %zu roles, %zu locks listed after INIT)",
	       w->d.n_users, w->d.n_roles, w->d.n_locks);
	return 0;
}

static int on_event(void *userdata, struct tu_event *ev, struct tu_err *e)
{
	struct watcher *w = userdata;
	struct tu_watch_change ch;
	bool changed;
	char name[128];
	int r;

	if (!w->init_seen) {
		if (ev->op != TU_EVENT_INIT)
			return tu_err_set(e, -EBADMSG, "expected INIT as the first event, got %s",
					  tu_event_op_name(ev->op));
		return on_init(w, ev, e);
	}
	if (ev->op == TU_EVENT_INIT)
		return tu_err_set(e, -EBADMSG, "a second INIT on the same stream");
	r = tu_watch_apply_change(&w->d, ev, &ch, e);
	if (r < 0)
		return r;
	changed = ch.what != TU_WATCH_UNCHANGED;
	/* What the memo and the encoded records must forget (the contract in accounts.h). */
	if (changed && ev->kind == TU_EVENT_KIND_USER) {
		tu_accounts_memo_forget_user(w->memo, ev->name);
		enc_follow(&w->enc_users, &ch, w->d.n_users);
	} else if (changed && ev->kind == TU_EVENT_KIND_ROLE) {
		tu_accounts_memo_forget_role(w->memo, &w->d, ev->name);
		enc_follow(&w->enc_roles, &ch, w->d.n_roles);
	} else if (changed && ev->kind == TU_EVENT_KIND_LOCK)
		enc_follow(&w->enc_locks, &ch, w->d.n_locks);
	w->st.events++;
	w->st.last_event_usec = tu_now_usec();
	if (changed && !w->dirty) {
		w->dirty = true;
		w->dirty_since = tu_transport_now_usec();
	}
	if (changed && (ev->kind == TU_EVENT_KIND_USER || ev->kind == TU_EVENT_KIND_ROLE))
		w->accounts_dirty = true;
	tu_log(LOG_DEBUG, "watch: %s %s '%s'%s", tu_event_op_name(ev->op),
	       tu_event_kind_name(ev->kind), tu_sanitize(ev->name, name, sizeof(name)),
	       changed ? "" : " (no change)");
	return 0;
}

static int on_tick(void *userdata, struct tu_err *e)
{
	struct watcher *w = userdata;
	uint64_t mono = tu_transport_now_usec();
	int r;

	if (stop_requested)
		return tu_err_set(e, -ECANCELED, "stopped");
	if (!w->init_seen && mono - w->stream_start > w->init_timeout_usec)
		return tu_err_set(e, -ETIMEDOUT, "no INIT event within %" PRIu64 " s",
				  w->init_timeout_usec / 1000000);
	if (w->init_seen && !w->dirty &&
	    (tu_now_usec() >= w->next_expiry_usec ||
	     tu_now_usec() - w->st.last_write_usec > REWRITE_QUIET_USEC))
		/* A user expired: the accounts change without an event.  Or an hour passed
		 * without a change: the snapshots' time says how current they are, and
		 * cache.offline_max_age counts from it once the stream is gone. */
		w->dirty = true, w->accounts_dirty = true, w->dirty_since = mono;
	if (w->dirty) {
		r = flush(w, e);
		if ((r == -ETIMEDOUT || r == -EWOULDBLOCK) &&
		    tu_transport_now_usec() - w->dirty_since < MAX_UNWRITTEN_USEC) {
			char why[600];
			tu_log(LOG_NOTICE, "watch: %s; retrying", tu_err_format(e, why, sizeof(why)));
			tu_err_clear(e);
			return 0; /* still dirty: the next tick tries again */
		}
		if (r < 0)
			return r;
		write_state(w);
	} else if (mono - w->last_heartbeat >= TU_WATCH_HEARTBEAT_USEC)
		write_state(w);
	return 0;
}

/* Waits usec (heartbeats continue, so `status` shows a live watcher); false when stopped. */
static bool backoff_sleep(struct watcher *w, uint64_t usec)
{
	uint64_t end = tu_transport_now_usec() + usec;

	while (!stop_requested) {
		uint64_t now = tu_transport_now_usec();
		if (now >= end)
			return true;
		uint64_t step = end - now < 200000 ? end - now : 200000;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long) step * 1000};
		(void) nanosleep(&ts, NULL);
		if (tu_transport_now_usec() - w->last_heartbeat >= TU_WATCH_HEARTBEAT_USEC)
			write_state(w);
	}
	return false;
}

static int usage(void)
{
	printf("Usage: teleport-unix [-c CONFIG] watch [--backoff-max DURATION] [--init-timeout DURATION]\n"
	       "Holds a WatchEvents stream to Auth and keeps the cache current (runs until stopped).\n"
	       "  --backoff-max   cap of the jittered exponential reconnect backoff (default 256s)\n"
	       "  --init-timeout  how long to wait for Auth's INIT event (default: the backoff cap)\n"
	       "  --no-jitter     every retry waits the mean delay (benchmarks: shows the herd)\n"
	       "  --full-writes   every write maps all users and rewrites both files (benchmarks)\n");
	return CLI_EXIT_OK;
}

int cmd_watch(struct cli *c, int argc, char **argv)
{
	struct watcher w = {.c = c};
	uint64_t backoff_max = TU_WATCH_DEFAULT_BACKOFF, init_timeout = 0, first;
	bool jitter = true;
	struct sigaction sa = {.sa_handler = on_signal};
	struct tu_err e;
	char why[600];
	int r, ret = CLI_EXIT_ERROR;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return usage();
		if (strcmp(argv[i], "--full-writes") == 0) {
			/* For benchmarks only: the cost before the incremental writes. */
			w.full_writes = true;
			continue;
		}
		if (strcmp(argv[i], "--no-jitter") == 0) {
			/* For the fleet benchmark only: every host waits the same, in lockstep. */
			jitter = false;
			continue;
		}
		if ((strcmp(argv[i], "--backoff-max") == 0 || strcmp(argv[i], "--init-timeout") == 0) &&
		    i + 1 < argc) {
			uint64_t v = 0;
			if (tu_parse_duration(argv[i + 1], &v) < 0 || v == 0)
				return cli_errorf(c, "watch: %s: '%s' is not a duration like 90s or 5m",
						  argv[i], argv[i + 1]);
			*(strcmp(argv[i], "--backoff-max") == 0 ? &backoff_max : &init_timeout) = v;
			i++;
			continue;
		}
		return cli_errorf(c, "watch: unexpected argument '%s' (usage: teleport-unix watch "
				     "[--backoff-max DURATION] [--init-timeout DURATION])",
				  argv[i]);
	}
	w.init_timeout_usec = init_timeout ? init_timeout : backoff_max;
	/* Each write builds the mapping and the snapshot images again (tens of MB at 100k users)
	 * and frees them: keep that memory in the heap instead of mmap/munmap per write, whose
	 * page faults cost as much as the work (the process holds the dataset anyway).  32 MiB is
	 * glibc's ceiling for the mmap threshold. */
	(void) mallopt(M_MMAP_THRESHOLD, 32 << 20);
	(void) mallopt(M_TRIM_THRESHOLD, 256 << 20);

	r = cli_open_ctx(c, &w.ctx);
	if (r != 0)
		return r;
	/* Without it (no memory) every write maps all users, as before. */
	if (w.full_writes || tu_accounts_memo_new(&w.memo) < 0)
		w.memo = NULL;
	/* The credentials must load now: a broken configuration is an error, not a retry loop
	 * (systemd's Restart=on-failure then shows it). */
	const struct tu_creds *creds = NULL;
	tu_err_clear(&e);
	r = tu_ctx_creds(w.ctx, tu_now_usec(), &creds, &e);
	if (r < 0) {
		ret = cli_error(c, "watch: credentials", &e);
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	(void) sigaction(SIGTERM, &sa, NULL);
	(void) sigaction(SIGINT, &sa, NULL);
	(void) signal(SIGPIPE, SIG_IGN);

	/* cache.dir exists from the start, so the state file can be written before the first list. */
	{
		_cleanup_close_ int lock_fd = -1;
		tu_err_clear(&e);
		r = tu_cache_lock(tu_ctx_conf(w.ctx), 0, &lock_fd, NULL, &e);
		if (r < 0 && r != -EWOULDBLOCK) {
			ret = cli_error(c, "watch: cache.dir", &e);
			goto out;
		}
	}
	w.st.pid = getpid();
	w.st.started_usec = tu_now_usec();
	w.next_expiry_usec = INT64_MAX;
	first = tu_watch_backoff_first_usec(backoff_max, jitter ? random01() : 0.5);
	notify("READY=1");

	while (!stop_requested) {
		struct tu_auth *stream = NULL;
		const struct tu_creds *cr = NULL;

		w.init_seen = false;
		w.dirty = false;
		w.st.phase = TU_WATCH_CONNECTING;
		w.st.connected_since_usec = 0;
		w.st.next_attempt_usec = 0;
		write_state(&w);
		notify_status(&w);
		tu_err_clear(&e);
		int64_t now = tu_now_usec();
		r = tu_ctx_host(w.ctx, now, &w.host, &e);
		if (r >= 0)
			r = tu_ctx_creds(w.ctx, now, &cr, &e);
		if (r >= 0)
			record_host(tu_ctx_conf(w.ctx), &w.st, cr);
		if (r >= 0)
			r = tu_auth_new(tu_ctx_conf(w.ctx), cr, &stream, &e);
		if (r >= 0) {
			w.stream_start = tu_transport_now_usec();
			r = tu_auth_watch(stream, on_event, on_tick, &w, &e);
			stream = tu_auth_free(stream);
			if (w.dirty && w.have_d) {
				/* Events applied but not yet written: keep them (fail closed means
				 * no stale data, not losing what Auth told us). */
				struct tu_err fe;
				tu_err_clear(&fe);
				if (flush(&w, &fe) < 0)
					tu_log(LOG_WARNING, "watch: %s",
					       tu_err_format(&fe, why, sizeof(why)));
			}
		}
		if (stop_requested)
			break;
		tu_err_format(&e, why, sizeof(why));
		uint64_t delay = tu_watch_backoff_usec(backoff_max, first, (unsigned) w.st.attempt,
						       jitter ? random01() : 0.5);
		w.st.phase = TU_WATCH_BACKOFF;
		w.st.reconnects++;
		w.st.attempt++;
		w.st.connected_since_usec = 0;
		w.st.next_attempt_usec = tu_now_usec() + (int64_t) delay;
		snprintf(w.st.last_error, sizeof(w.st.last_error), "%.*s",
			 (int) sizeof(w.st.last_error) - 1, why);
		write_state(&w);
		notify_status(&w);
		tu_log(LOG_WARNING, "watch: %s; reconnecting in %.1f s (attempt %" PRIu64 ")", why,
		       (double) delay / 1e6, w.st.attempt);
		if (!backoff_sleep(&w, delay))
			break;
		/* Re-read the configuration and credentials (renewed certificates) for the next
		 * attempt; keep the old ones if the new ones do not load. */
		struct tu_ctx *fresh = NULL;
		if (cli_open_ctx(c, &fresh) == 0) {
			tu_ctx_free(w.ctx);
			w.ctx = fresh;
		}
	}
	w.st.phase = TU_WATCH_STOPPED;
	w.st.connected_since_usec = 0;
	write_state(&w);
	notify("STOPPING=1");
	ret = CLI_EXIT_OK;
out:
	tu_dataset_done(&w.d);
	tu_accounts_memo_free(w.memo);
	enc_reset(&w.enc_users, 0);
	enc_reset(&w.enc_roles, 0);
	enc_reset(&w.enc_locks, 0);
	tu_ctx_free(w.ctx);
	return ret;
}
