/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcgroup.h - reads /etc/group directly, never through NSS (SPEC §4: no
 * recursion into NSS; host_groups that exist locally keep their local gid).
 * Layer: libcore/base (libc only).
 *
 * Parsing follows nss_files: one "name:passwd:gid:members" entry per line;
 * empty lines, lines starting with '#', NIS compat lines ('+', '-') and
 * malformed lines (wrong field count, gid not a plain decimal u32, empty or
 * over-long name) are skipped and counted.  The first entry of a name wins.
 * Thread-safe (no shared state).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct tu_err;

#define TU_ETCGROUP_PATH     "/etc/group"
#define TU_ETCGROUP_MAX_SIZE (64u * 1024u * 1024u) /* whole file */
#define TU_ETCGROUP_MAX_LINE (1024u * 1024u)       /* one entry */

struct tu_etcgroup_entry {
	char *name;
	uint32_t gid;
};

struct tu_etcgroup {
	struct tu_etcgroup_entry *e; /* sorted by name (bytewise), unique names */
	size_t n;
	size_t n_skipped; /* malformed or duplicate lines */
};

/*
 * Loads path (NULL = TU_ETCGROUP_PATH).  On success fills *ret (release with
 * tu_etcgroup_done); untouched on failure.
 * Errors: -ENOENT (no file), -EACCES, other -errno, -EMSGSIZE (file or a line
 * over the limits, with the line number), -ENOMEM.
 */
int tu_etcgroup_load(const char *path, struct tu_etcgroup *ret, struct tu_err *reterr);

/* Frees the contents; safe on a zeroed struct; leaves it zeroed. */
void tu_etcgroup_done(struct tu_etcgroup *g);

#define TU_ETCPASSWD_PATH "/etc/passwd"

/*
 * The uids of path (NULL = TU_ETCPASSWD_PATH), read directly as nss_files
 * would ("name:passwd:uid:gid:gecos:home:shell"; comments, NIS compat and
 * malformed lines skipped), sorted and unique, into *ret (malloc'ed, free
 * it) and *ret_n; untouched on failure.  Errors as tu_etcgroup_load.
 */
int tu_etcpasswd_load_uids(const char *path, uint32_t **ret, size_t *ret_n, struct tu_err *reterr);

/* Binary search by name: 0 and *ret_gid, or -ENOENT. */
int tu_etcgroup_find(const struct tu_etcgroup *g, const char *name, uint32_t *ret_gid);

/* One-shot: the gid of group name in path (NULL = /etc/group).
 * Errors: -ENOENT (no file or no such group), others as tu_etcgroup_load. */
int tu_etcgroup_lookup(const char *path, const char *name, uint32_t *ret_gid,
		       struct tu_err *reterr);
