/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch.c - event application, reconnect backoff and the watch state file
 * for `teleport-unix watch` (see watch.h).  Layer: libcore.
 *
 * The state file is "key=value" lines, at most 4 KiB, written by the
 * watcher only (temp file + rename, mode 0644: it holds no secret) and read
 * by `status`, `sync`, PAM and `check`.  It is trusted like the lock file:
 * a regular file of root's (or of the caller's euid, for tests) that group
 * and others cannot write; anything else reads as "not current", so a
 * forged file can at worst make a host dial Auth.
 */
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cache.h"
#include "cleanup.h"
#include "conf.h"
#include "err.h"
#include "log.h"
#include "parse.h"

#define STATE_MAX 8192u

/* "<what> <path>: <strerror>" with code (a negative errno). */
static int errno_fail(struct tu_err *reterr, int code, const char *what, const char *path)
{
	return tu_err_set(reterr, code, "%s %s: %s", what, path, strerror(-code));
}

/* ---------------------------------------------------------------------- */
/* applying events                                                        */

#define DEFINE_APPLY(fn, T, field, n_field, left_out, done, bad)                                \
	static int fn(struct tu_dataset *d, T *rec, bool del, const char *key, bool *changed,   \
		      struct tu_watch_change *ch)                                                 \
	{                                                                                         \
		size_t i;                                                                         \
                                                                                                  \
		for (i = 0; i < d->n_field; i++)                                                  \
			if (d->field[i].name && strcmp(d->field[i].name, key) == 0)               \
				break;                                                            \
		if (del || (rec && (bad))) {                                                      \
			if (!del)                                                                 \
				left_out;                                                         \
			if (i == d->n_field)                                                      \
				return 0;                                                         \
			done(&d->field[i]);                                                       \
			memmove(&d->field[i], &d->field[i + 1],                                   \
				(d->n_field - i - 1) * sizeof(T));                                \
			d->n_field--;                                                             \
			*changed = true;                                                          \
			*ch = (struct tu_watch_change){.what = TU_WATCH_REMOVED, .index = i};     \
			return 0;                                                                 \
		}                                                                                 \
		*ch = (struct tu_watch_change){.what = i < d->n_field ? TU_WATCH_REPLACED         \
								     : TU_WATCH_ADDED,            \
					       .index = i};                                       \
		if (i < d->n_field) {                                                             \
			done(&d->field[i]);                                                       \
			d->field[i] = *rec;                                                       \
		} else {                                                                          \
			T *v = realloc(d->field, (d->n_field + 1) * sizeof(T));                   \
			if (!v)                                                                   \
				return -ENOMEM;                                                   \
			d->field = v;                                                             \
			d->field[d->n_field++] = *rec;                                            \
		}                                                                                 \
		*rec = (T){0};                                                                    \
		*changed = true;                                                                  \
		return 0;                                                                         \
	}

/* NOLINTBEGIN(bugprone-macro-parentheses) */
DEFINE_APPLY(apply_user, struct tu_user, users, n_users, d->n_users_left_out++, tu_user_done,
	     rec->unusable)
DEFINE_APPLY(apply_role, struct tu_role, roles, n_roles, d->n_roles_left_out++, tu_role_done,
	     rec->unusable)
/* An unreadable lock is kept (it then applies to everyone: rbac.c), never left out. */
DEFINE_APPLY(apply_lock, struct tu_lock, locks, n_locks, (void) 0, tu_lock_done, false)
/* NOLINTEND(bugprone-macro-parentheses) */

int tu_watch_apply(struct tu_dataset *d, struct tu_event *ev, bool *ret_changed,
		   struct tu_err *reterr)
{
	struct tu_watch_change ch;
	int r = tu_watch_apply_change(d, ev, &ch, reterr);

	if (r >= 0 && ret_changed)
		*ret_changed = ch.what != TU_WATCH_UNCHANGED;
	return r;
}

int tu_watch_apply_change(struct tu_dataset *d, struct tu_event *ev, struct tu_watch_change *ret,
			  struct tu_err *reterr)
{
	struct tu_watch_change ch = {0};
	bool changed = false, del;
	int r = 0;

	if (!d || !ev || ev->op == TU_EVENT_INIT || !ev->name)
		return tu_err_set(reterr, -EINVAL, "not a PUT or DELETE event");
	del = ev->op == TU_EVENT_DELETE;
	switch (ev->kind) {
	case TU_EVENT_KIND_USER:
		if (!del && ev->user.unusable) {
			char n[128], why[256];
			tu_log(LOG_WARNING, "watch: user '%s' left out: %s",
			       tu_sanitize(ev->name, n, sizeof(n)),
			       tu_sanitize(ev->user.unusable, why, sizeof(why)));
		}
		r = apply_user(d, del ? NULL : &ev->user, del, ev->name, &changed, &ch);
		break;
	case TU_EVENT_KIND_ROLE:
		if (!del && ev->role.unusable) {
			char n[128], why[256];
			tu_log(LOG_WARNING, "watch: role '%s' left out: %s",
			       tu_sanitize(ev->name, n, sizeof(n)),
			       tu_sanitize(ev->role.unusable, why, sizeof(why)));
		}
		r = apply_role(d, del ? NULL : &ev->role, del, ev->name, &changed, &ch);
		break;
	case TU_EVENT_KIND_LOCK:
		r = apply_lock(d, del ? NULL : &ev->lock, del, ev->name, &changed, &ch);
		break;
	case TU_EVENT_KIND_AUTH_PREF:
		tu_auth_pref_done(&d->auth_pref);
		if (del) {
			/* Auth puts a default preference back at once: a fresh cluster's. */
			d->auth_pref = (struct tu_auth_pref){.known = true};
		} else {
			d->auth_pref = ev->auth_pref;
			d->auth_pref.known = true;
			ev->auth_pref = (struct tu_auth_pref){0};
		}
		changed = true;
		ch = (struct tu_watch_change){.what = TU_WATCH_REPLACED};
		break;
	default:
		return tu_err_set(reterr, -EINVAL, "event of an unknown kind");
	}
	if (r < 0)
		return tu_err_set(reterr, r, "out of memory");
	if (!changed)
		ch = (struct tu_watch_change){0};
	*ret = ch;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* backoff                                                                */

uint64_t tu_watch_backoff_first_usec(uint64_t max_usec, double rnd_first)
{
	if (rnd_first < 0 || rnd_first >= 1)
		rnd_first = 0;
	return (uint64_t) ((double) (max_usec / 16) * rnd_first);
}

uint64_t tu_watch_backoff_usec(uint64_t max_usec, uint64_t first_usec, unsigned attempt, double rnd)
{
	uint64_t base = max_usec / 16, d = first_usec;

	if (rnd < 0 || rnd >= 1)
		rnd = 0;
	if (attempt > 0) {
		unsigned shift = attempt - 1 > 40 ? 40 : attempt - 1;
		uint64_t step = base > (UINT64_MAX >> shift) ? UINT64_MAX : base << shift;
		d = step > UINT64_MAX - d ? UINT64_MAX : d + step;
	}
	if (d > max_usec)
		d = max_usec;
	/* HalfJitter: [d/2, d). */
	return d / 2 + (uint64_t) ((double) (d - d / 2) * rnd);
}

/* ---------------------------------------------------------------------- */
/* the state file                                                         */

static const char *const phase_names[] = {
    [TU_WATCH_STOPPED] = "stopped",
    [TU_WATCH_CONNECTING] = "connecting",
    [TU_WATCH_CURRENT] = "current",
    [TU_WATCH_BACKOFF] = "backoff",
};

const char *tu_watch_phase_name(enum tu_watch_phase p)
{
	return (unsigned) p < ELEMENTSOF(phase_names) ? phase_names[p] : "?";
}

/* A value that fits one line of the state file as it is (no control character). */
static bool line_safe(const char *v)
{
	for (const unsigned char *p = (const unsigned char *) v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* "dev:ino:size:mtime_ns:ctime_ns" as tu_watch_state_write() writes it (the last three may be
 * negative); anything else is -EBADMSG. */
static int parse_stamp(const char *v, struct tu_file_stamp *ret)
{
	const char *p = v, *end = v + strlen(v);
	uint64_t u[2];
	int64_t i[3];

	for (size_t k = 0; k < 5; k++) {
		bool neg = k >= 2 && p < end && *p == '-';
		uint64_t n;

		if (neg)
			p++;
		if (tu_parse_digits(&p, end, &n) < 0)
			return -EBADMSG;
		if (k < 2)
			u[k] = n;
		else if (n > (uint64_t) INT64_MAX)
			return -EBADMSG;
		else
			i[k - 2] = neg ? -(int64_t) n : (int64_t) n;
		if (k < 4 ? (p == end || *p++ != ':') : p != end)
			return -EBADMSG;
	}
	*ret = (struct tu_file_stamp){
	    .dev = u[0], .ino = u[1], .size = i[0], .mtime_ns = i[1], .ctime_ns = i[2]};
	return 0;
}

/* watch.state (0644) and host.identity (0600): the same writer, the same format. */
static int state_write(const struct tu_conf *conf, const char *file, mode_t mode, const struct tu_watch_state *s,
		       struct tu_err *reterr)
{
	char path[4096], tmp[4200], err[sizeof(s->last_error)], buf[STATE_MAX];
	int n, fd, r;

	r = tu_cache_path(conf, file, path, sizeof(path));
	if (r < 0)
		return tu_err_set(reterr, r, "cache.dir too long");
	tu_sanitize(s->last_error, err, sizeof(err));
	for (char *p = err; *p; p++)
		if (*p == '\n')
			*p = ' ';
	n = snprintf(buf, sizeof(buf),
		     "version=1\nphase=%s\npid=%" PRId64 "\nstarted=%" PRId64
		     "\nconnected_since=%" PRId64 "\nlast_event=%" PRId64 "\nlast_write=%" PRId64
		     "\nwrite_duration=%" PRId64
		     "\nheartbeat=%" PRId64 "\nnext_attempt=%" PRId64 "\nevents=%" PRIu64
		     "\nrelists=%" PRIu64 "\nreconnects=%" PRIu64 "\nattempt=%" PRIu64
		     "\nwrite_bytes=%" PRIu64 "\nwrite_recomputed=%" PRIu64 "\nwrite_cpu=%" PRId64
		     "\nwrite_kind=%s"
		     "\nlast_error=%s\n",
		     tu_watch_phase_name(s->phase), s->pid, s->started_usec, s->connected_since_usec,
		     s->last_event_usec, s->last_write_usec, s->write_duration_usec, s->heartbeat_usec, s->next_attempt_usec,
		     s->events, s->relists, s->reconnects, s->attempt, s->write_bytes,
		     s->write_recomputed, s->write_cpu_usec, line_safe(s->write_kind) ? s->write_kind : "",
		     err);
	if (n < 0 || (size_t) n >= sizeof(buf))
		return tu_err_set(reterr, -EMSGSIZE, "watch state too long");
	if (s->host_cert[0] && s->host_cn[0] && line_safe(s->host_cert) && line_safe(s->host_cn) &&
	    line_safe(s->host_cluster)) {
		const struct tu_file_stamp *f = &s->host_cert_stamp;
		int m = snprintf(buf + n, sizeof(buf) - (size_t) n,
				 "host_cert=%s\nhost_cert_stamp=%" PRIu64 ":%" PRIu64 ":%" PRId64 ":%" PRId64
				 ":%" PRId64 "\nhost_cn=%s\nhost_cluster=%s\nhost_not_before=%" PRId64
				 "\nhost_not_after=%" PRId64 "\n",
				 s->host_cert, f->dev, f->ino, f->size, f->mtime_ns, f->ctime_ns, s->host_cn,
				 s->host_cluster, s->host_not_before_usec, s->host_not_after_usec);
		if (m < 0 || (size_t) m >= sizeof(buf) - (size_t) n)
			return tu_err_set(reterr, -EMSGSIZE, "watch state too long");
		n += m;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return errno_fail(reterr, -errno, "cannot write", tmp);
	if (fchmod(fd, mode) < 0 || write(fd, buf, (size_t) n) != n) {
		r = errno ? -errno : -EIO;
		close(fd);
		unlink(tmp);
		return errno_fail(reterr, r, "cannot write", tmp);
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		return errno_fail(reterr, r, "cannot replace", path);
	}
	return 0;
}

int tu_watch_state_write(const struct tu_conf *conf, const struct tu_watch_state *s, struct tu_err *reterr)
{
	return state_write(conf, TU_WATCH_STATE_FILE, 0644, s, reterr);
}

static int parse_i64(const char *v, int64_t *ret)
{
	char *end = NULL;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return -EBADMSG;
	*ret = x;
	return 0;
}

static int state_read(const struct tu_conf *conf, const char *file, struct tu_watch_state *ret,
		      struct tu_err *reterr)
{
	char path[4096], buf[STATE_MAX + 1];
	struct tu_watch_state s = {0};
	_cleanup_close_ int fd = -1;
	struct stat st;
	ssize_t n;
	bool have_version = false, have_phase = false, have_stamp = false;
	int r;

	r = tu_cache_path(conf, file, path, sizeof(path));
	if (r < 0)
		return tu_err_set(reterr, r, "cache.dir too long");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return errno_fail(reterr, -errno, "cannot open", path);
	if (fstat(fd, &st) < 0)
		return errno_fail(reterr, -errno, "cannot stat", path);
	if (!S_ISREG(st.st_mode))
		return tu_err_set(reterr, -EPERM, "refusing %s: not a regular file", path);
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return tu_err_set(reterr, -EPERM, "refusing %s: owned by uid %u", path,
				  (unsigned) st.st_uid);
	if (st.st_mode & 022)
		return tu_err_set(reterr, -EACCES, "refusing %s: writable by group or others", path);
	n = read(fd, buf, STATE_MAX + 1);
	if (n < 0)
		return errno_fail(reterr, -errno, "cannot read", path);
	if ((size_t) n > STATE_MAX)
		return tu_err_set(reterr, -EBADMSG, "%s: over %u bytes", path, STATE_MAX);
	buf[n] = '\0';
	for (char *line = buf, *next; line && *line; line = next) {
		char *nl = strchr(line, '\n'), *eq;
		int64_t v = 0;
		if (!nl)
			return tu_err_set(reterr, -EBADMSG, "%s: last line not terminated", path);
		*nl = '\0';
		next = nl + 1;
		eq = strchr(line, '=');
		if (!eq)
			return tu_err_set(reterr, -EBADMSG, "%s: line without '='", path);
		*eq = '\0';
		const char *key = line, *val = eq + 1;
		if (strcmp(key, "last_error") == 0) {
			snprintf(s.last_error, sizeof(s.last_error), "%s", val);
			continue;
		}
		if (strcmp(key, "host_cert") == 0 || strcmp(key, "host_cn") == 0 ||
		    strcmp(key, "host_cluster") == 0) {
			char *dst = s.host_cluster;
			size_t size = sizeof(s.host_cluster);
			if (strcmp(key, "host_cert") == 0) {
				dst = s.host_cert;
				size = sizeof(s.host_cert);
			} else if (strcmp(key, "host_cn") == 0) {
				dst = s.host_cn;
				size = sizeof(s.host_cn);
			}
			if (strlen(val) >= size)
				return tu_err_set(reterr, -EBADMSG, "%s: %s too long", path, key);
			memcpy(dst, val, strlen(val) + 1);
			continue;
		}
		if (strcmp(key, "write_kind") == 0) {
			snprintf(s.write_kind, sizeof(s.write_kind), "%s", val);
			continue;
		}
		if (strcmp(key, "host_cert_stamp") == 0) {
			if (parse_stamp(val, &s.host_cert_stamp) < 0)
				return tu_err_set(reterr, -EBADMSG, "%s: host_cert_stamp: malformed", path);
			have_stamp = true;
			continue;
		}
		if (strcmp(key, "phase") == 0) {
			size_t p;
			for (p = 0; p < ELEMENTSOF(phase_names); p++)
				if (strcmp(val, phase_names[p]) == 0)
					break;
			if (p == ELEMENTSOF(phase_names))
				return tu_err_set(reterr, -EBADMSG, "%s: unknown phase", path);
			s.phase = (enum tu_watch_phase) p;
			have_phase = true;
			continue;
		}
		static const char *const numeric[] = {
			"version", "pid", "started", "connected_since", "last_event", "last_write", "write_duration",
			"heartbeat", "next_attempt", "events", "relists", "reconnects", "attempt",
			"host_not_before", "host_not_after", "write_bytes", "write_recomputed", "write_cpu",
		};
		size_t i;
		for (i = 0; i < ELEMENTSOF(numeric); i++)
			if (strcmp(key, numeric[i]) == 0)
				break;
		if (i == ELEMENTSOF(numeric))
			continue; /* unknown keys: a newer watcher; ignored */
		if (parse_i64(val, &v) < 0)
			return tu_err_set(reterr, -EBADMSG, "%s: %s: not a number", path, key);
		if (strcmp(key, "version") == 0) {
			if (v != 1)
				return tu_err_set(reterr, -EBADMSG, "%s: version %" PRId64, path, v);
			have_version = true;
		} else if (strcmp(key, "pid") == 0)
			s.pid = v;
		else if (strcmp(key, "started") == 0)
			s.started_usec = v;
		else if (strcmp(key, "connected_since") == 0)
			s.connected_since_usec = v;
		else if (strcmp(key, "last_event") == 0)
			s.last_event_usec = v;
		else if (strcmp(key, "last_write") == 0)
			s.last_write_usec = v;
		else if (strcmp(key, "write_duration") == 0)
			s.write_duration_usec = v;
		else if (strcmp(key, "heartbeat") == 0)
			s.heartbeat_usec = v;
		else if (strcmp(key, "next_attempt") == 0)
			s.next_attempt_usec = v;
		else if (strcmp(key, "events") == 0)
			s.events = (uint64_t) v;
		else if (strcmp(key, "relists") == 0)
			s.relists = (uint64_t) v;
		else if (strcmp(key, "reconnects") == 0)
			s.reconnects = (uint64_t) v;
		else if (strcmp(key, "attempt") == 0)
			s.attempt = (uint64_t) v;
		else if (strcmp(key, "write_bytes") == 0)
			s.write_bytes = (uint64_t) v;
		else if (strcmp(key, "write_recomputed") == 0)
			s.write_recomputed = (uint64_t) v;
		else if (strcmp(key, "write_cpu") == 0)
			s.write_cpu_usec = v;
		else if (strcmp(key, "host_not_before") == 0)
			s.host_not_before_usec = v;
		else if (strcmp(key, "host_not_after") == 0)
			s.host_not_after_usec = v;
		/* unknown keys: a newer watcher; ignored */
	}
	if (!have_version || !have_phase)
		return tu_err_set(reterr, -EBADMSG, "%s: no version or phase", path);
	if (!have_stamp || !s.host_cn[0])
		s.host_cert[0] = '\0'; /* an incomplete host identity is none */
	*ret = s;
	return 0;
}

int tu_watch_state_read(const struct tu_conf *conf, struct tu_watch_state *ret, struct tu_err *reterr)
{
	return state_read(conf, TU_WATCH_STATE_FILE, ret, reterr);
}

void tu_watch_state_set_host(struct tu_watch_state *st, const struct tu_creds *cr)
{
	struct tu_file_stamp stamp;
	const char *file = tu_creds_cert_file(cr, &stamp);
	const char *cn = tu_creds_subject_cn(cr), *cl = tu_creds_cluster(cr);

	st->host_cert[0] = '\0';
	if (!file || tu_creds_profile_name(cr) || !cn || strlen(file) >= sizeof(st->host_cert) ||
	    strlen(cn) >= sizeof(st->host_cn) || (cl && strlen(cl) >= sizeof(st->host_cluster)))
		return;
	snprintf(st->host_cn, sizeof(st->host_cn), "%s", cn);
	snprintf(st->host_cluster, sizeof(st->host_cluster), "%s", cl ? cl : "");
	st->host_cert_stamp = stamp;
	st->host_not_before_usec = tu_creds_not_before_usec(cr);
	st->host_not_after_usec = tu_creds_not_after_usec(cr);
	snprintf(st->host_cert, sizeof(st->host_cert), "%s", file);
}

int tu_host_record_write(const struct tu_conf *conf, const struct tu_creds *cr, struct tu_err *reterr)
{
	struct tu_watch_state s = { .phase = TU_WATCH_STOPPED };

	tu_watch_state_set_host(&s, cr);
	if (!s.host_cert[0])
		return 0; /* nothing to record (a tsh profile, a file that changed while read) */
	return state_write(conf, TU_HOST_RECORD_FILE, 0600, &s, reterr);
}

int tu_host_record_read(const struct tu_conf *conf, struct tu_watch_state *ret, struct tu_err *reterr)
{
	int r = state_read(conf, TU_HOST_RECORD_FILE, ret, reterr);

	if (r >= 0 && !ret->host_cert[0])
		return tu_err_set(reterr, -ENOENT, "%s holds no host identity", TU_HOST_RECORD_FILE);
	return r;
}

bool tu_watch_state_current(const struct tu_watch_state *s, int64_t now_usec)
{
	if (!s || s->phase != TU_WATCH_CURRENT || s->connected_since_usec <= 0)
		return false;
	/* A heartbeat from the future (clock stepped back) counts as fresh only within the bound. */
	int64_t age = now_usec - s->heartbeat_usec;
	return age <= (int64_t) TU_WATCH_MAX_STALENESS && age >= -(int64_t) TU_WATCH_MAX_STALENESS;
}

bool tu_watch_is_current(const struct tu_conf *conf, int64_t now_usec)
{
	struct tu_watch_state s;

	if (tu_watch_state_read(conf, &s, NULL) < 0)
		return false;
	return tu_watch_state_current(&s, now_usec);
}
