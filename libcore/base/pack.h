/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pack.h - the one record packer: a snapshot view into glibc's struct passwd
 * / struct group plus the caller's buffer (NSS), and getent-style lines (CLI).
 * Layer: libcore/base (libc only).  Shared by nss/nss.c and the CLI's
 * `passwd` / `group` commands, so both print exactly the same records.
 *
 * The packers compute the whole size first and return -ERANGE before
 * writing a single byte, so a too-small buffer leaves the caller's struct and
 * buffer unchanged.  The pointer array of gr_mem is aligned for char *.
 * All functions are pure and thread-safe.
 */
#pragma once

#include <grp.h>
#include <pwd.h>
#include <stddef.h>

struct tu_pw_view;
struct tu_gr_view;

/*
 * The password field we serve, in passwd and group lines: "*", no password
 * and no shadow entry claimed ("x" would send pam_unix's account check to
 * look for a shadow entry that does not exist: PAM_AUTHINFO_UNAVAIL, and
 * every Teleport login refused by common-account).  docs/accounts.md.
 */
#define TU_PACK_PASSWD "*"

/* Bytes of buffer tu_pack_passwd / tu_pack_group need for v (0 on size_t overflow). */
size_t tu_pack_passwd_size(const struct tu_pw_view *v);
size_t tu_pack_group_size(const struct tu_gr_view *v);

/*
 * Fills *ret_pw; every string points into buf.  Returns 0, or -ERANGE when
 * buflen is too small (nothing written).
 */
int tu_pack_passwd(const struct tu_pw_view *v, struct passwd *ret_pw, char *buf, size_t buflen);

/*
 * Fills *ret_gr; gr_mem is a NULL-terminated array placed at the first
 * suitably aligned address in buf, followed by the strings.  Returns 0, or
 * -ERANGE (nothing written).
 */
int tu_pack_group(const struct tu_gr_view *v, struct group *ret_gr, char *buf, size_t buflen);

/*
 * Formats one getent line without the trailing newline:
 *   name:passwd:uid:gid:gecos:dir:shell     (getent passwd)
 *   name:passwd:gid:member1,member2         (getent group)
 * into buf (NUL-terminated).  NULL string fields print as "".
 * Returns 0, or -ERANGE when size is too small (buf then holds "").
 */
int tu_format_passwd_line(const struct passwd *pw, char *buf, size_t size);
int tu_format_group_line(const struct group *gr, char *buf, size_t size);
