/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pack.c - snapshot views into struct passwd / struct group and getent
 * lines.  Layer: libcore/base.  Size first, then copy: a too-small buffer
 * is reported before anything is written (glibc retries with a bigger one).
 */
#include "pack.h"

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "snapshot.h"

static size_t add(size_t a, size_t b)
{
	size_t r;

	return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}

size_t tu_pack_passwd_size(const struct tu_pw_view *v)
{
	size_t n = sizeof(TU_PACK_PASSWD);

	n = add(n, v->name_len + 1);
	n = add(n, v->gecos_len + 1);
	n = add(n, v->dir_len + 1);
	n = add(n, v->shell_len + 1);
	return n == SIZE_MAX ? 0 : n;
}

static char *put(char *p, const char *s, size_t len)
{
	memcpy(p, s, len);
	p[len] = 0;
	return p + len + 1;
}

int tu_pack_passwd(const struct tu_pw_view *v, struct passwd *ret_pw, char *buf, size_t buflen)
{
	size_t need = tu_pack_passwd_size(v);
	char *p = buf;

	if (need == 0 || !buf || buflen < need)
		return -ERANGE;
	ret_pw->pw_name = p;
	p = put(p, v->name, v->name_len);
	ret_pw->pw_passwd = p;
	p = put(p, TU_PACK_PASSWD, sizeof(TU_PACK_PASSWD) - 1);
	ret_pw->pw_gecos = p;
	p = put(p, v->gecos, v->gecos_len);
	ret_pw->pw_dir = p;
	p = put(p, v->dir, v->dir_len);
	ret_pw->pw_shell = p;
	(void) put(p, v->shell, v->shell_len);
	ret_pw->pw_uid = v->uid;
	ret_pw->pw_gid = v->gid;
	return 0;
}

/* Padding needed to align buf for char *, plus the pointer array and the strings. */
static size_t group_need(const struct tu_gr_view *v, const char *buf, size_t *ret_pad)
{
	size_t pad = (alignof(char *) - ((uintptr_t) buf % alignof(char *))) % alignof(char *);
	size_t n = pad, ptrs;

	if (__builtin_mul_overflow(v->n_members + 1, sizeof(char *), &ptrs))
		return 0;
	n = add(n, ptrs);
	n = add(n, v->members_size);
	n = add(n, v->name_len + 1);
	n = add(n, sizeof(TU_PACK_PASSWD));
	*ret_pad = pad;
	return n == SIZE_MAX ? 0 : n;
}

size_t tu_pack_group_size(const struct tu_gr_view *v)
{
	size_t pad;
	size_t n = group_need(v, NULL, &pad);

	/* Worst case for an unaligned buffer. */
	return n == 0 ? 0 : add(n, alignof(char *) - 1);
}

int tu_pack_group(const struct tu_gr_view *v, struct group *ret_gr, char *buf, size_t buflen)
{
	size_t pad = 0, need, cursor = 0;
	char **mem;
	char *p;
	const char *m;

	if (!buf)
		return -ERANGE;
	need = group_need(v, buf, &pad);
	if (need == 0 || buflen < need)
		return -ERANGE;
	mem = (char **) (void *) (buf + pad);
	p = (char *) (mem + v->n_members + 1);
	/* members_size holds exactly n_members strings (validated by the reader). */
	for (size_t i = 0; i < v->n_members && (m = tu_gr_view_next_member(v, &cursor)); i++) {
		size_t l = strlen(m);

		mem[i] = p;
		p = put(p, m, l);
	}
	mem[v->n_members] = NULL;
	ret_gr->gr_name = p;
	p = put(p, v->name, v->name_len);
	ret_gr->gr_passwd = p;
	(void) put(p, TU_PACK_PASSWD, sizeof(TU_PACK_PASSWD) - 1);
	ret_gr->gr_gid = v->gid;
	ret_gr->gr_mem = mem;
	return 0;
}

static const char *s_or_empty(const char *s)
{
	return s ? s : "";
}

int tu_format_passwd_line(const struct passwd *pw, char *buf, size_t size)
{
	int n;

	if (!buf || size == 0)
		return -ERANGE;
	n = snprintf(buf, size, "%s:%s:%lu:%lu:%s:%s:%s", s_or_empty(pw->pw_name),
		     s_or_empty(pw->pw_passwd), (unsigned long) pw->pw_uid,
		     (unsigned long) pw->pw_gid, s_or_empty(pw->pw_gecos), s_or_empty(pw->pw_dir),
		     s_or_empty(pw->pw_shell));
	if (n < 0 || (size_t) n >= size) {
		buf[0] = 0;
		return -ERANGE;
	}
	return 0;
}

int tu_format_group_line(const struct group *gr, char *buf, size_t size)
{
	size_t len;
	int n;

	if (!buf || size == 0)
		return -ERANGE;
	n = snprintf(buf, size, "%s:%s:%lu:", s_or_empty(gr->gr_name), s_or_empty(gr->gr_passwd),
		     (unsigned long) gr->gr_gid);
	if (n < 0 || (size_t) n >= size) {
		buf[0] = 0;
		return -ERANGE;
	}
	len = (size_t) n;
	for (size_t i = 0; gr->gr_mem && gr->gr_mem[i]; i++) {
		size_t l = strlen(gr->gr_mem[i]) + (i > 0);

		if (len + l >= size) {
			buf[0] = 0;
			return -ERANGE;
		}
		if (i > 0)
			buf[len++] = ',';
		memcpy(buf + len, gr->gr_mem[i], l - (i > 0));
		len += l - (i > 0);
	}
	buf[len] = 0;
	return 0;
}
