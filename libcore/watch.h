/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch.h - what `teleport-unix watch` needs besides the stream itself
 * (auth.h tu_auth_watch): applying an event to the in-memory dataset, the
 * reconnect backoff, and the small watch state file that `status`, `sync`,
 * PAM and `check` read to know whether the cache is being kept current.
 * Layer: libcore.  No protobuf, no network; the clock and randomness are
 * arguments.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "creds.h"
#include "model.h"

struct tu_conf;
struct tu_err;

/*
 * Applies a PUT or DELETE to d, moving the record out of ev (ev stays safe
 * to tu_event_done).  A PUT replaces the record of the same name or adds
 * it; a record marked unusable (tu_user.unusable, tu_role.unusable) removes
 * the old one and counts as left out, as a listing would; a DELETE of a
 * name we do not hold is a no-op.  A DELETE of the auth preference puts
 * back what a fresh cluster has (local, no MFA), as Auth does.  *ret_changed
 * (may be NULL) tells whether d changed.  INIT is -EINVAL.  -ENOMEM.
 * Cost: one linear pass over the records of that kind.
 */
int tu_watch_apply(struct tu_dataset *d, struct tu_event *ev, bool *ret_changed, struct tu_err *reterr);

/* What tu_watch_apply_change did to the array of the event's kind (d->users, d->roles or
 * d->locks): a caller keeping data parallel to it (the watcher's encoded records) does the
 * same.  REMOVED: index i is gone, later ones moved down by one; ADDED: appended at index;
 * REPLACED: the record at index is new (for the auth preference index is 0). */
enum tu_watch_change_what {
	TU_WATCH_UNCHANGED = 0,
	TU_WATCH_REPLACED,
	TU_WATCH_ADDED,
	TU_WATCH_REMOVED,
};
struct tu_watch_change {
	enum tu_watch_change_what what;
	size_t index;
};
/* tu_watch_apply, telling what changed where.  Same errors. */
int tu_watch_apply_change(struct tu_dataset *d, struct tu_event *ev, struct tu_watch_change *ret,
			  struct tu_err *reterr);

/*
 * Teleport's agent-cache backoff (WATCH.md §6, lib/cache Start): with
 * max = max_usec, first = a full-jittered value in [0, max/16) drawn once
 * per watcher, delay(n) = min(first + (max/16) * 2^(n-1) (0 for n = 0),
 * max), then half-jittered into [d/2, d).  rnd_first and rnd are uniform in
 * [0, 1).  attempt 0 is the first retry after a failure.  Pure.
 */
uint64_t tu_watch_backoff_first_usec(uint64_t max_usec, double rnd_first);
uint64_t tu_watch_backoff_usec(uint64_t max_usec, uint64_t first_usec, unsigned attempt, double rnd);

#define TU_WATCH_STATE_FILE        "watch.state"
#define TU_WATCH_DEFAULT_BACKOFF   (UINT64_C(256) * 1000000) /* MaxLongWatcherBackoff (nodes) */
#define TU_WATCH_HEARTBEAT_USEC    (UINT64_C(5) * 1000000)   /* the watcher rewrites its state */
#define TU_WATCH_MAX_STALENESS     (UINT64_C(15) * 1000000)  /* heartbeat older: not current */

enum tu_watch_phase {
	TU_WATCH_STOPPED = 0, /* not running (or stopped cleanly) */
	TU_WATCH_CONNECTING,  /* opening the stream, waiting for INIT */
	TU_WATCH_CURRENT,     /* INIT seen, re-listed, applying events: the cache is current */
	TU_WATCH_BACKOFF,     /* the stream failed; waiting before the next attempt */
};

/* The watch state file (<cache.dir>/watch.state, 0644, written atomically by the watcher). */
struct tu_watch_state {
	enum tu_watch_phase phase;
	int64_t pid;
	int64_t started_usec;         /* CLOCK_REALTIME, like every time below */
	int64_t connected_since_usec; /* INIT of the current stream (0: none) */
	int64_t last_event_usec;      /* last PUT/DELETE applied (0: none yet) */
	int64_t last_write_usec;      /* last snapshot write */
	int64_t write_duration_usec;  /* how long it took (accounts + files, lock included) */
	char write_kind[16];          /* what it wrote: "full" (accounts.db and state.db),
					 "delta" (accounts.delta, and state.delta or state.db),
					 "state" (state.db or state.delta alone: a lock, the auth
					 preference) */
	uint64_t write_bytes;         /* bytes of the files it wrote */
	uint64_t write_recomputed;    /* users whose mapping it recomputed (the rest memoized) */
	int64_t write_cpu_usec;       /* the CPU time it took (the machine's load aside) */
	int64_t heartbeat_usec;       /* last rewrite of this file */
	int64_t next_attempt_usec;    /* BACKOFF: when the next attempt starts */
	uint64_t events;              /* PUT/DELETE applied since start */
	uint64_t relists;             /* full lists since start (one per INIT) */
	uint64_t reconnects;          /* failed streams since start */
	uint64_t attempt;             /* consecutive failures (backoff attempt) */
	char last_error[256];         /* why the last stream ended ("" none) */
	/* The host identity the watcher's credential gave (issue 13 item 6: PAM and `check`
	 * take it from here instead of parsing the certificate; ctx.c tu_ctx_host_hint):
	 * the certificate file (path and stamp when read), its subject CN, its cluster
	 * ("" none) and validity.  host_cert "" = not recorded (a tsh profile, too long). */
	char host_cert[1024];
	struct tu_file_stamp host_cert_stamp;
	char host_cn[256];
	char host_cluster[256];
	int64_t host_not_before_usec, host_not_after_usec;
};

const char *tu_watch_phase_name(enum tu_watch_phase p);

/*
 * Writes s to <cache.dir>/watch.state (temp file + rename; no fsync: it
 * describes a running process).  Errors: -errno with the path in reterr.
 */
int tu_watch_state_write(const struct tu_conf *conf, const struct tu_watch_state *s, struct tu_err *reterr);

/*
 * Reads it.  -ENOENT when absent; -EPERM/-EACCES when it is not a regular
 * file of root's (or the caller's euid, for tests) writable only by its
 * owner; -EBADMSG when malformed.  *ret written only on success.
 */
int tu_watch_state_read(const struct tu_conf *conf, struct tu_watch_state *ret, struct tu_err *reterr);

/*
 * Whether decisions may rely on the cache alone (issue 13 item 6): phase
 * CURRENT and a heartbeat at most TU_WATCH_MAX_STALENESS old (a watcher that
 * died or hangs stops counting within that).  Pure.
 */
bool tu_watch_state_current(const struct tu_watch_state *s, int64_t now_usec);

/* Shortcut for PAM/check/sync: reads the file and tells; false on any error. */
bool tu_watch_is_current(const struct tu_conf *conf, int64_t now_usec);

/*
 * The host identity of s (host_cert, its stamp, CN, cluster, validity) from a
 * credential just loaded: what tu_creds_cert_file() names; nothing (host_cert
 * "") for a tsh profile, a file that changed during the read, a load that
 * took its identity from a record (tu_creds_load_hinted), or values too long.
 */
void tu_watch_state_set_host(struct tu_watch_state *st, const struct tu_creds *cr);

/*
 * <cache.dir>/host.identity (issue 10): the host identity `sync` and the
 * watcher read from the certificate, in watch.state's format and tied to the
 * certificate file's stamp exactly as there (ctx.h tu_ctx_host_hinted,
 * creds.h tu_creds_load_hinted), but kept whether or not a watcher runs, so
 * that an offline decision (sshd's AuthorizedPrincipalsCommand) needs no
 * X.509 parse and no OpenSSL.  Written 0600 (temp file + rename), trusted on
 * read as watch.state is (a regular file of root's or the caller's euid, not
 * writable by group or others).  write: 0 also when there is nothing to
 * record.  read: -ENOENT when absent or without a host identity, else as
 * tu_watch_state_read; only the host_* fields mean anything.
 */
#define TU_HOST_RECORD_FILE "host.identity"
int tu_host_record_write(const struct tu_conf *conf, const struct tu_creds *cr, struct tu_err *reterr);
int tu_host_record_read(const struct tu_conf *conf, struct tu_watch_state *ret, struct tu_err *reterr);
