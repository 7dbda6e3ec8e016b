/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcgroup.c - a small /etc/group reader that never goes through NSS.
 * Layer: libcore/base.  Reads the whole file (bounded) and splits it by hand;
 * no sscanf/strtok/atoi.
 */
#include "etcgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"

#define NAME_MAX_LEN 255

static int read_file(const char *path, char **ret, size_t *ret_len, struct tu_err *reterr)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		return tu_err_set(reterr, r, "%s: %s", path, strerror(-r));
	}
	for (;;) {
		ssize_t k;

		if (len + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb;

			if (ncap > TU_ETCGROUP_MAX_SIZE + 1)
				ncap = TU_ETCGROUP_MAX_SIZE + 1;
			if (ncap <= len + 1)
				return tu_err_set(reterr, -EMSGSIZE, "%s: larger than %u bytes",
						  path, TU_ETCGROUP_MAX_SIZE);
			nb = realloc(buf, ncap);
			if (!nb)
				return tu_err_set(reterr, -ENOMEM, "out of memory");
			buf = nb;
			cap = ncap;
		}
		k = read(fd, buf + len, cap - 1 - len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			return tu_err_set(reterr, r, "%s: %s", path, strerror(-r));
		}
		if (k == 0)
			break;
		len += (size_t) k;
	}
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* Plain decimal u32 without sign, spaces or leading junk. */
static bool parse_gid(const char *s, size_t len, uint32_t *ret)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t) (s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*ret = (uint32_t) v;
	return true;
}

struct tagged {
	struct tu_etcgroup_entry e;
	size_t pos; /* line order */
};

static int cmp_tagged(const void *a, const void *b)
{
	const struct tagged *x = a, *y = b;
	int c = strcmp(x->e.name, y->e.name);

	if (c != 0)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

void tu_etcgroup_done(struct tu_etcgroup *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++)
		free(g->e[i].name);
	free(g->e);
	*g = (struct tu_etcgroup){};
}

int tu_etcgroup_load(const char *path, struct tu_etcgroup *ret, struct tu_err *reterr)
{
	_cleanup_free_ char *buf = NULL;
	struct tu_etcgroup g = {};
	size_t len = 0, cap = 0, lineno = 0;
	char *line, *end;
	int r;

	if (!path)
		path = TU_ETCGROUP_PATH;
	r = read_file(path, &buf, &len, reterr);
	if (r < 0)
		return r;

	for (line = buf, end = buf + len; line < end;) {
		char *nl = memchr(line, '\n', (size_t) (end - line));
		size_t l = nl ? (size_t) (nl - line) : (size_t) (end - line);
		const char *f[4];
		size_t fl[4], nf = 0;
		char *p = line;
		uint32_t gid;

		lineno++;
		if (l > TU_ETCGROUP_MAX_LINE) {
			tu_etcgroup_done(&g);
			r = tu_err_set(reterr, -EMSGSIZE, "%s: line %zu is longer than %u bytes",
				       path, lineno, TU_ETCGROUP_MAX_LINE);
			tu_err_at(reterr, path, (unsigned) lineno);
			return r;
		}
		line += l + (nl ? 1 : 0);
		if (l == 0 || p[0] == '#' || p[0] == '+' || p[0] == '-')
			continue;
		/* Exactly four ':'-separated fields (the last, members, may be empty). */
		for (size_t i = 0, start = 0; i <= l; i++) {
			if (i < l && p[i] != ':')
				continue;
			if (nf < 4) {
				f[nf] = p + start;
				fl[nf] = i - start;
			}
			nf++;
			start = i + 1;
		}
		if (nf != 4 || fl[0] == 0 || fl[0] > NAME_MAX_LEN || memchr(f[0], 0, fl[0]) ||
		    !parse_gid(f[2], fl[2], &gid)) {
			g.n_skipped++;
			continue;
		}
		if (g.n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct tu_etcgroup_entry *ne = realloc(g.e, ncap * sizeof(*ne));

			if (!ne) {
				tu_etcgroup_done(&g);
				return tu_err_set(reterr, -ENOMEM, "out of memory");
			}
			g.e = ne;
			cap = ncap;
		}
		g.e[g.n].name = strndup(f[0], fl[0]);
		if (!g.e[g.n].name) {
			tu_etcgroup_done(&g);
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		g.e[g.n].gid = gid;
		g.n++;
	}

	/* First entry of a name wins (nss_files order): sort by (name, line), keep each run's
	 * first. */
	if (g.n > 1) {
		_cleanup_free_ struct tagged *t = calloc(g.n, sizeof(*t));
		size_t k = 0;

		if (!t) {
			tu_etcgroup_done(&g);
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < g.n; i++)
			t[i] = (struct tagged){g.e[i], i};
		qsort(t, g.n, sizeof(*t), cmp_tagged);
		for (size_t i = 0; i < g.n; i++) {
			if (k > 0 && strcmp(g.e[k - 1].name, t[i].e.name) == 0) {
				free(t[i].e.name);
				g.n_skipped++;
				continue;
			}
			g.e[k++] = t[i].e;
		}
		g.n = k;
	}
	*ret = g;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return x < y ? -1 : x > y;
}

int tu_etcpasswd_load_uids(const char *path, uint32_t **ret, size_t *ret_n, struct tu_err *reterr)
{
	_cleanup_free_ char *buf = NULL;
	uint32_t *ids = NULL;
	size_t len = 0, n = 0, cap = 0, w = 0;
	int r;

	if (!path)
		path = TU_ETCPASSWD_PATH;
	r = read_file(path, &buf, &len, reterr);
	if (r < 0)
		return r;
	for (char *line = buf, *end = buf + len; line < end;) {
		char *nl = memchr(line, '\n', (size_t) (end - line));
		size_t l = nl ? (size_t) (nl - line) : (size_t) (end - line);
		const char *f = NULL;
		size_t fl = 0, nf = 0;
		char *p = line;
		uint32_t uid;

		line += l + (nl ? 1 : 0);
		if (l == 0 || l > TU_ETCGROUP_MAX_LINE || p[0] == '#' || p[0] == '+' || p[0] == '-')
			continue;
		for (size_t i = 0, start = 0; i <= l; i++) {
			if (i < l && p[i] != ':')
				continue;
			if (nf == 2) {
				f = p + start;
				fl = i - start;
			}
			nf++;
			start = i + 1;
		}
		if (nf != 7 || !parse_gid(f, fl, &uid))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			uint32_t *ni = realloc(ids, ncap * sizeof(*ni));
			if (!ni) {
				free(ids);
				return tu_err_set(reterr, -ENOMEM, "out of memory");
			}
			ids = ni;
			cap = ncap;
		}
		ids[n++] = uid;
	}
	if (n > 1)
		qsort(ids, n, sizeof(*ids), cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (w == 0 || ids[w - 1] != ids[i])
			ids[w++] = ids[i];
	*ret = ids;
	*ret_n = w;
	return 0;
}

int tu_etcgroup_find(const struct tu_etcgroup *g, const char *name, uint32_t *ret_gid)
{
	size_t lo = 0, hi = g->n;

	if (!name)
		return -ENOENT;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, g->e[mid].name);

		if (c == 0) {
			*ret_gid = g->e[mid].gid;
			return 0;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -ENOENT;
}

int tu_etcgroup_lookup(const char *path, const char *name, uint32_t *ret_gid, struct tu_err *reterr)
{
	struct tu_etcgroup g = {};
	int r;

	r = tu_etcgroup_load(path, &g, reterr);
	if (r < 0)
		return r;
	r = tu_etcgroup_find(&g, name, ret_gid);
	tu_etcgroup_done(&g);
	return r;
}
