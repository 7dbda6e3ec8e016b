/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile.h - a tsh profile directory (`~/.tsh` after `tsh login`,
 * PROXY.md §6): which profile is current, and the few fields of its
 * "<name>.yaml" the client needs to find its keys and its Proxy.
 * Layer: libcore (libyaml).  The key material itself is read by creds.c
 * (tu_creds_load_profile).
 *
 * The YAML is tsh's, not ours: unknown keys are ignored (tsh adds keys in
 * every release), the keys we use are checked strictly.  Every file is read
 * through base/fsutil (O_NOFOLLOW, a regular file, bounded) and must be
 * owned by root or by the effective uid and not writable by group or others
 * (TU_FS_OWNER_SELF), unless relaxed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tu_err;

#define TU_PROFILE_MAX_YAML         ((size_t) 64 * 1024)
#define TU_PROFILE_DEFAULT_WEB_PORT 443

struct tu_profile {
	char *dir;            /* the profile directory, as given */
	char *name;           /* the profile: "<dir>/<name>.yaml" */
	char *web_proxy_addr; /* web_proxy_addr as written, "host:port" */
	char *proxy_host;     /* its host: the "keys/<proxy_host>" directory */
	uint16_t proxy_port;  /* its port, 443 when absent */
	char *user;           /* the Teleport user: "<user>.crt", "<user>.key", ... */
	char *cluster;        /* the cluster ("<cluster>-cert.pub"): `cluster`, else the name */
	bool tls_routing_enabled;
	bool tls_routing_conn_upgrade_required;
};

/*
 * Parses the text of a profile YAML file (len bytes; file names it in
 * messages; name is the profile name, the fallback for the cluster).
 * Required: web_proxy_addr (host[:port]) and user.  Errors (reterr names
 * the file, the line and the key): -EBADMSG (not YAML, not a mapping, a
 * used key not a scalar, bad address, bad user or cluster name: empty, a
 * '/', "." or "..", control characters), -EMSGSIZE (over
 * TU_PROFILE_MAX_YAML), -ENOMEM.  *ret is written only on success (free
 * with tu_profile_done).  Thread-safe.
 */
int tu_profile_parse(const char *text, size_t len, const char *file, const char *name,
		     struct tu_profile *ret, struct tu_err *reterr);

/*
 * Loads profile name of dir (name NULL: the one "<dir>/current-profile"
 * names).  relaxed: skip the owner/mode checks.  Errors: -ENOENT (no
 * current-profile: "run tsh login"; no "<name>.yaml"), the file errors of
 * tu_fs_read_file (-EPERM, -EACCES, -ELOOP, -EINVAL, -EMSGSIZE), -EBADMSG
 * (an empty or bad current-profile, a bad profile name, bad YAML), -ENOMEM.
 */
int tu_profile_load(const char *dir, const char *name, bool relaxed, struct tu_profile *ret,
		    struct tu_err *reterr);

/* Frees the strings; p may be zeroed or already done. */
void tu_profile_done(struct tu_profile *p);

/* Whether s is usable as one file name component: not empty, not "." or "..",
 * no '/', no control characters, at most 255 bytes. */
bool tu_profile_name_ok(const char *s);
