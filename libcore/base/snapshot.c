/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.c - snapshot writer, validating reader and lookups (layout in
 * snapshot-internal.h and docs/cache-format.md).  Layer: libcore/base.
 *
 * The reader trusts nothing: open() validates the header, the section table
 * and the checksum, and every index entry's range; each accessor checks the
 * one record it decodes again (lengths inside the section, NUL terminators
 * where the lengths say), so even a file whose checksum happens to match
 * cannot make us read outside the mapping.
 */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "err.h"
#include "fsutil.h"
#include "snapshot-internal.h"

struct section {
	const unsigned char *p;
	size_t off; /* from the start of the file, for messages */
	size_t len;
	uint32_t count;
	bool present;
};

struct tu_snapshot {
	const unsigned char *base;
	size_t size;
	bool mapped;
	uint32_t kind;
	uint64_t generation;
	int64_t created_usec;
	struct section sec[SEC_TYPE_MAX + 1];
	/* TU_SNAPSHOT_LAZY: one bit per verified chunk of [cover_start, cover_end). */
	_Atomic uint64_t *verified;
	size_t cover_start, cover_end;
	/* TU_SNAPSHOT_OVERLAY: the delta read over this base, or NULL. */
	struct tu_snapshot *delta;
	/* With a delta, computed on first enumeration: the base ORDER positions it hides,
	 * ascending (0 passwd, 1 group). */
	_Atomic(struct hidden_pos *) hpos[2];
	/* BLOB_KEYS (checked at open): where the slots and the key bytes start in the file. */
	uint32_t key_ranges;
	size_t key_slots_off, key_bytes_off, key_bytes;
	/* A state delta: the merged blob order, computed when it was attached. */
	struct blob_overlay *bov;
};

/* Merged blobs of one type: the base's range minus the hidden ones, then the delta's. */
struct blob_seg {
	uint32_t type;
	size_t start;           /* merged index of its first blob */
	size_t nbase, ndelta;   /* from the base (not hidden), from the delta */
	size_t unhidden_before; /* base blobs before its range that are not hidden */
	size_t dfirst;          /* the delta's first blob of this type */
};

struct blob_overlay {
	uint32_t *hidden; /* base blob indexes hidden, ascending */
	size_t n_hidden;
	struct blob_seg *segs;
	size_t n_segs;
	size_t count;
};

struct hidden_pos {
	size_t n;
	uint32_t pos[];
};

/* An extra section the accounts builder copies in (the delta's). */
struct extra_sec {
	uint32_t type;
	uint32_t count;
	const unsigned char *data;
	size_t len;
};

static bool kind_is_accounts(uint32_t kind)
{
	return kind == TU_SNAPSHOT_KIND_ACCOUNTS || kind == TU_SNAPSHOT_KIND_ACCOUNTS_DELTA;
}

static bool kind_is_delta(uint32_t kind)
{
	return kind == TU_SNAPSHOT_KIND_ACCOUNTS_DELTA || kind == TU_SNAPSHOT_KIND_STATE_DELTA;
}

/* ---- helpers ---------------------------------------------------------- */

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint32_t slots_for(size_t n)
{
	uint32_t s = 1;

	while (s < 2 * n)
		s <<= 1;
	return s;
}

/* Names: what useradd/groupadd could never produce and getent lines cannot carry. */
static int check_string(const char *s, size_t max, bool name, const char *what, const char *who,
			struct tu_err *reterr)
{
	size_t len;

	if (!s)
		return tu_err_set(reterr, -EINVAL, "%s of '%s' is NULL", what, who ? who : "?");
	len = strnlen(s, max + 1);
	if (len > max)
		return tu_err_set(reterr, -EMSGSIZE, "%s of '%.64s' is longer than %zu bytes", what,
				  who ? who : s, max);
	if (name && len == 0)
		return tu_err_set(reterr, -EINVAL, "empty %s", what);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char) s[i];

		if (c < 0x20 || c == 0x7f || c == ':' || (name && c == ','))
			return tu_err_set(reterr, -EINVAL,
					  "%s of '%.64s' contains a forbidden character (0x%02x)",
					  what, who ? who : "?", c);
	}
	return 0;
}

static int cmp_pw(const void *a, const void *b)
{
	const struct tu_pw_rec *x = *(const struct tu_pw_rec *const *) a,
			       *y = *(const struct tu_pw_rec *const *) b;

	return strcmp(x->name, y->name);
}

/* Sorts by name unless already sorted (the accounts arrive sorted: a linear check instead of
 * ~n log n comparisons). */
static void sort_pw(const struct tu_pw_rec **v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1]->name, v[i]->name) > 0) {
			qsort(v, n, sizeof(*v), cmp_pw);
			return;
		}
}

static int cmp_gr(const void *a, const void *b);

static void sort_gr(const struct tu_gr_rec **v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1]->name, v[i]->name) > 0) {
			qsort(v, n, sizeof(*v), cmp_gr);
			return;
		}
}

static int cmp_gr(const void *a, const void *b)
{
	const struct tu_gr_rec *x = *(const struct tu_gr_rec *const *) a,
			       *y = *(const struct tu_gr_rec *const *) b;

	return strcmp(x->name, y->name);
}

struct sec_plan {
	uint32_t type;
	uint32_t count;
	size_t off;
	size_t len;
};

/* Lays the sections out after the header; returns the file size or 0 over the limit. */
static size_t plan_layout(struct sec_plan *plan, size_t n)
{
	size_t off = align_up(SNAP_HDR_SIZE + SNAP_SEC_SIZE * n, 8);

	for (size_t i = 0; i < n; i++) {
		plan[i].off = off;
		if (plan[i].len > TU_SNAPSHOT_MAX_SIZE ||
		    __builtin_add_overflow(off, plan[i].len, &off))
			return 0;
		off = align_up(off, 8);
		if (off > TU_SNAPSHOT_MAX_SIZE)
			return 0;
	}
	return off;
}

/* Sizes the last section (the chunk table) once the others are laid out; returns the file size or
 * 0. */
static size_t plan_with_chunks(struct sec_plan *plan, size_t n)
{
	size_t hdr = SNAP_HDR_SIZE + SNAP_SEC_SIZE * n, chunks;

	plan[n - 1].type = SEC_CHUNKS;
	plan[n - 1].len = 0;
	if (plan_layout(plan, n) == 0)
		return 0;
	chunks = (plan[n - 1].off - hdr + SNAP_CHUNK - 1) / SNAP_CHUNK;
	plan[n - 1].count = (uint32_t) chunks;
	plan[n - 1].len = 4 * chunks;
	return plan_layout(plan, n);
}

static void finish_header(unsigned char *buf, size_t size, uint32_t kind,
			  const struct sec_plan *plan, size_t n, uint64_t generation,
			  int64_t now_usec)
{
	size_t hdr = SNAP_HDR_SIZE + SNAP_SEC_SIZE * n, cover_end = plan[n - 1].off;
	uint32_t crc;

	for (size_t k = 0; k < plan[n - 1].count; k++) {
		size_t a = hdr + k * (size_t) SNAP_CHUNK,
		       b = a + SNAP_CHUNK > cover_end ? cover_end : a + SNAP_CHUNK;

		snap_put32(buf + plan[n - 1].off + 4 * k, tu_crc32c(0, buf + a, b - a));
	}

	memcpy(buf + H_MAGIC, SNAP_MAGIC, SNAP_MAGIC_LEN);
	snap_put32(buf + H_VERSION, SNAP_VERSION);
	snap_put32(buf + H_KIND, kind);
	snap_put32(buf + H_FLAGS, 0);
	snap_put32(buf + H_HDR_SIZE, (uint32_t) hdr);
	snap_put64(buf + H_GENERATION, generation);
	snap_put64(buf + H_CREATED, (uint64_t) now_usec);
	snap_put64(buf + H_FILE_SIZE, size);
	snap_put32(buf + H_N_SECTIONS, (uint32_t) n);
	snap_put32(buf + H_CHUNK_CRC, tu_crc32c(0, buf + plan[n - 1].off, plan[n - 1].len));
	for (size_t i = 0; i < n; i++) {
		unsigned char *e = buf + SNAP_HDR_SIZE + SNAP_SEC_SIZE * i;

		snap_put32(e, plan[i].type);
		snap_put32(e + 4, plan[i].count);
		snap_put64(e + 8, plan[i].off);
		snap_put64(e + 16, plan[i].len);
		snap_put64(e + 24, 0);
	}
	snap_put32(buf + H_PAYLOAD_CRC, tu_crc32c(0, buf + hdr, size - hdr));
	crc = tu_crc32c(0, buf, H_HEADER_CRC);
	crc = tu_crc32c(crc, buf + H_HEADER_CRC + 4, hdr - H_HEADER_CRC - 4);
	snap_put32(buf + H_HEADER_CRC, crc);
}

static size_t pw_rec_size(const struct tu_pw_rec *r)
{
	return align_up(PW_FIXED + 4 * r->n_gids + strlen(r->name) + strlen(r->gecos) +
			    strlen(r->dir) + strlen(r->shell) + 4,
			4);
}

static size_t gr_rec_size(const struct tu_gr_rec *r)
{
	size_t sz = GR_FIXED + strlen(r->name) + 1;

	for (size_t i = 0; i < r->n_members; i++)
		sz += strlen(r->members[i]) + 1;
	return align_up(sz, 4);
}

static unsigned char *put_str(unsigned char *p, const char *s, size_t len)
{
	memcpy(p, s, len);
	p[len] = 0;
	return p + len + 1;
}

/* Inserts (key, off) into an open-addressing table; -EEXIST if key is there (ids only). */
static int slot_insert(unsigned char *tab, uint32_t nslots, uint32_t hash, uint32_t key,
		       uint32_t off, bool unique)
{
	for (uint32_t i = 0; i < nslots; i++) {
		unsigned char *slot = tab + 8 * ((hash + i) & (nslots - 1));

		if (snap_le32(slot + 4) == SNAP_EMPTY_SLOT) {
			snap_put32(slot, key);
			snap_put32(slot + 4, off);
			return 0;
		}
		if (unique && snap_le32(slot) == key)
			return -EEXIST;
	}
	return -ENOSPC; /* cannot happen: nslots >= 2n */
}

/* ---- writing ---------------------------------------------------------- */

static int build_accounts(uint32_t kind, const struct tu_pw_rec *pw, size_t n_pw,
			  const struct tu_gr_rec *gr, size_t n_gr, const struct tu_snapshot_meta *meta,
			  const struct extra_sec *extra, size_t n_extra, uint64_t generation,
			  int64_t now_usec, void **ret_data, size_t *ret_size, struct tu_err *reterr);

int tu_snapshot_build_accounts(const struct tu_pw_rec *pw, size_t n_pw, const struct tu_gr_rec *gr,
			       size_t n_gr, uint64_t generation, int64_t now_usec, void **ret_data,
			       size_t *ret_size, struct tu_err *reterr)
{
	return tu_snapshot_build_accounts_meta(pw, n_pw, gr, n_gr, NULL, generation, now_usec,
					       ret_data, ret_size, reterr);
}

int tu_snapshot_build_accounts_meta(const struct tu_pw_rec *pw, size_t n_pw,
				    const struct tu_gr_rec *gr, size_t n_gr,
				    const struct tu_snapshot_meta *meta, uint64_t generation,
				    int64_t now_usec, void **ret_data, size_t *ret_size,
				    struct tu_err *reterr)
{
	return build_accounts(TU_SNAPSHOT_KIND_ACCOUNTS, pw, n_pw, gr, n_gr, meta, NULL, 0,
			      generation, now_usec, ret_data, ret_size, reterr);
}

/* The accounts layout for a base (kind 1) or a delta (kind 3, with its extra sections). */
static int build_accounts(uint32_t kind, const struct tu_pw_rec *pw, size_t n_pw,
			  const struct tu_gr_rec *gr, size_t n_gr, const struct tu_snapshot_meta *meta,
			  const struct extra_sec *extra, size_t n_extra, uint64_t generation,
			  int64_t now_usec, void **ret_data, size_t *ret_size, struct tu_err *reterr)
{
	_cleanup_free_ const struct tu_pw_rec **spw = NULL;
	_cleanup_free_ const struct tu_gr_rec **sgr = NULL;
	_cleanup_free_ unsigned char *buf = NULL;
	struct sec_plan plan[SNAP_MAX_SECS] = {
	    {.type = SEC_PW_DATA},   {.type = SEC_PW_ORDER}, {.type = SEC_PW_BYNAME},
	    {.type = SEC_PW_BYUID},  {.type = SEC_GR_DATA},  {.type = SEC_GR_ORDER},
	    {.type = SEC_GR_BYNAME}, {.type = SEC_GR_BYGID}, {.type = SEC_META, .len = META_SIZE},
	};
	/* Without meta the extra sections (then the chunk table) take the meta slot. */
	size_t nplan = meta ? 9 : 8, first_extra = nplan;
	size_t pw_data = 0, gr_data = 0, size;
	uint32_t pw_slots, gr_slots;
	int r;

	if (n_extra > SNAP_MAX_SECS - 10)
		return tu_err_set(reterr, -EINVAL, "too many extra sections");
	for (size_t i = 0; i < n_extra; i++)
		plan[nplan++] = (struct sec_plan){
		    .type = extra[i].type, .count = extra[i].count, .len = extra[i].len};
	nplan++; /* the chunk table */
	if (n_pw > TU_SNAPSHOT_MAX_RECORDS || n_gr > TU_SNAPSHOT_MAX_RECORDS)
		return tu_err_set(reterr, -EMSGSIZE,
				  "too many records (%zu passwd, %zu group; limit %u)", n_pw, n_gr,
				  TU_SNAPSHOT_MAX_RECORDS);
	if ((n_pw && !pw) || (n_gr && !gr))
		return tu_err_set(reterr, -EINVAL, "NULL record array");

	spw = calloc(n_pw ? n_pw : 1, sizeof(*spw));
	sgr = calloc(n_gr ? n_gr : 1, sizeof(*sgr));
	if (!spw || !sgr)
		return tu_err_set(reterr, -ENOMEM, "out of memory");

	for (size_t i = 0; i < n_pw; i++) {
		const struct tu_pw_rec *p = &pw[i];

		r = check_string(p->name, TU_SNAPSHOT_MAX_NAME, true, "passwd name", p->name,
				 reterr);
		if (r >= 0)
			r = check_string(p->gecos, TU_SNAPSHOT_MAX_FIELD, false, "gecos", p->name,
					 reterr);
		if (r >= 0)
			r = check_string(p->dir, TU_SNAPSHOT_MAX_FIELD, false, "home", p->name,
					 reterr);
		if (r >= 0)
			r = check_string(p->shell, TU_SNAPSHOT_MAX_FIELD, false, "shell", p->name,
					 reterr);
		if (r < 0)
			return r;
		if (p->n_gids > TU_SNAPSHOT_MAX_GIDS)
			return tu_err_set(reterr, -EMSGSIZE,
					  "'%s' has %zu supplementary groups (limit %u)", p->name,
					  p->n_gids, TU_SNAPSHOT_MAX_GIDS);
		if (p->n_gids && !p->gids)
			return tu_err_set(reterr, -EINVAL, "'%s': NULL gid array", p->name);
		spw[i] = p;
		pw_data += pw_rec_size(p);
		if (pw_data > TU_SNAPSHOT_MAX_SIZE)
			return tu_err_set(reterr, -EMSGSIZE, "passwd records exceed %u bytes",
					  TU_SNAPSHOT_MAX_SIZE);
	}
	for (size_t i = 0; i < n_gr; i++) {
		const struct tu_gr_rec *g = &gr[i];
		size_t sz;

		r = check_string(g->name, TU_SNAPSHOT_MAX_NAME, true, "group name", g->name,
				 reterr);
		if (r < 0)
			return r;
		if (g->n_members > TU_SNAPSHOT_MAX_MEMBERS)
			return tu_err_set(reterr, -EMSGSIZE,
					  "group '%s' has %zu members (limit %u)", g->name,
					  g->n_members, TU_SNAPSHOT_MAX_MEMBERS);
		if (g->n_members && !g->members)
			return tu_err_set(reterr, -EINVAL, "group '%s': NULL member array",
					  g->name);
		for (size_t m = 0; m < g->n_members; m++) {
			r = check_string(g->members[m], TU_SNAPSHOT_MAX_NAME, true, "member",
					 g->name, reterr);
			if (r < 0)
				return r;
		}
		sz = gr_rec_size(g);
		if (sz > TU_SNAPSHOT_MAX_GR_BYTES)
			return tu_err_set(reterr, -EMSGSIZE, "group '%s' is %zu bytes (limit %u)",
					  g->name, sz, TU_SNAPSHOT_MAX_GR_BYTES);
		sgr[i] = g;
		gr_data += sz;
		if (gr_data > TU_SNAPSHOT_MAX_SIZE)
			return tu_err_set(reterr, -EMSGSIZE, "group records exceed %u bytes",
					  TU_SNAPSHOT_MAX_SIZE);
	}

	sort_pw(spw, n_pw);
	sort_gr(sgr, n_gr);
	for (size_t i = 1; i < n_pw; i++)
		if (strcmp(spw[i - 1]->name, spw[i]->name) == 0)
			return tu_err_set(reterr, -EINVAL, "duplicate login '%s'", spw[i]->name);
	for (size_t i = 1; i < n_gr; i++)
		if (strcmp(sgr[i - 1]->name, sgr[i]->name) == 0)
			return tu_err_set(reterr, -EINVAL, "duplicate group '%s'", sgr[i]->name);

	pw_slots = slots_for(n_pw);
	gr_slots = slots_for(n_gr);
	plan[0].count = (uint32_t) n_pw, plan[0].len = pw_data;
	plan[1].count = (uint32_t) n_pw, plan[1].len = 4 * n_pw;
	plan[2].count = pw_slots, plan[2].len = 8 * (size_t) pw_slots;
	plan[3].count = pw_slots, plan[3].len = 8 * (size_t) pw_slots;
	plan[4].count = (uint32_t) n_gr, plan[4].len = gr_data;
	plan[5].count = (uint32_t) n_gr, plan[5].len = 4 * n_gr;
	plan[6].count = gr_slots, plan[6].len = 8 * (size_t) gr_slots;
	plan[7].count = gr_slots, plan[7].len = 8 * (size_t) gr_slots;
	size = plan_with_chunks(plan, nplan);
	if (size == 0)
		return tu_err_set(reterr, -EMSGSIZE, "snapshot would exceed %u bytes",
				  TU_SNAPSHOT_MAX_SIZE);

	buf = calloc(1, size);
	if (!buf)
		return tu_err_set(reterr, -ENOMEM, "out of memory (%zu bytes)", size);
	memset(buf + plan[2].off, 0xff, plan[2].len);
	memset(buf + plan[3].off, 0xff, plan[3].len);
	memset(buf + plan[6].off, 0xff, plan[6].len);
	memset(buf + plan[7].off, 0xff, plan[7].len);

	{
		unsigned char *data = buf + plan[0].off;
		size_t off = 0;

		for (size_t i = 0; i < n_pw; i++) {
			const struct tu_pw_rec *p = spw[i];
			unsigned char *q = data + off;
			size_t nl = strlen(p->name), gl = strlen(p->gecos), dl = strlen(p->dir),
			       sl = strlen(p->shell);

			snap_put32(q, (uint32_t) p->uid);
			snap_put32(q + 4, (uint32_t) p->gid);
			snap_put32(q + 8, (uint32_t) p->n_gids);
			snap_put16(q + 12, (uint16_t) nl);
			snap_put16(q + 14, (uint16_t) gl);
			snap_put16(q + 16, (uint16_t) dl);
			snap_put16(q + 18, (uint16_t) sl);
			q += PW_FIXED;
			for (size_t k = 0; k < p->n_gids; k++, q += 4)
				snap_put32(q, p->gids[k]);
			q = put_str(q, p->name, nl);
			q = put_str(q, p->gecos, gl);
			q = put_str(q, p->dir, dl);
			(void) put_str(q, p->shell, sl);

			snap_put32(buf + plan[1].off + 4 * i, (uint32_t) off);
			(void) slot_insert(buf + plan[2].off, pw_slots, snap_hash_name(p->name),
					   snap_hash_name(p->name), (uint32_t) off, false);
			if (slot_insert(buf + plan[3].off, pw_slots, snap_hash_id(p->uid), p->uid,
					(uint32_t) off, true) < 0)
				return tu_err_set(reterr, -EINVAL, "duplicate uid %u ('%s')",
						  (unsigned) p->uid, p->name);
			off += pw_rec_size(p);
		}
	}
	{
		unsigned char *data = buf + plan[4].off;
		size_t off = 0;

		for (size_t i = 0; i < n_gr; i++) {
			const struct tu_gr_rec *g = sgr[i];
			unsigned char *q = data + off;
			size_t nl = strlen(g->name), msize = 0;

			for (size_t m = 0; m < g->n_members; m++)
				msize += strlen(g->members[m]) + 1;
			snap_put32(q, (uint32_t) g->gid);
			snap_put32(q + 4, (uint32_t) g->n_members);
			snap_put32(q + 8, (uint32_t) msize);
			snap_put16(q + 12, (uint16_t) nl);
			q = put_str(q + GR_FIXED, g->name, nl);
			for (size_t m = 0; m < g->n_members; m++)
				q = put_str(q, g->members[m], strlen(g->members[m]));

			snap_put32(buf + plan[5].off + 4 * i, (uint32_t) off);
			(void) slot_insert(buf + plan[6].off, gr_slots, snap_hash_name(g->name),
					   snap_hash_name(g->name), (uint32_t) off, false);
			if (slot_insert(buf + plan[7].off, gr_slots, snap_hash_id(g->gid), g->gid,
					(uint32_t) off, true) < 0)
				return tu_err_set(reterr, -EINVAL, "duplicate gid %u ('%s')",
						  (unsigned) g->gid, g->name);
			off += gr_rec_size(g);
		}
	}

	if (meta) {
		snap_put64(buf + plan[8].off, meta->negative_ttl_usec);
		snap_put64(buf + plan[8].off + 8, 0);
	}
	for (size_t i = 0; i < n_extra; i++)
		if (extra[i].len)
			memcpy(buf + plan[first_extra + i].off, extra[i].data, extra[i].len);
	finish_header(buf, size, kind, plan, nplan, generation, now_usec);
	*ret_data = TAKE_PTR(buf);
	*ret_size = size;
	return 0;
}

/* Blob order with keys: by type, then by position (a stable sort). */
static int cmp_blob_pos(const void *a, const void *b, void *base)
{
	const struct tu_blob *blobs = base;
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	uint32_t tx = blobs[x].type, ty = blobs[y].type;

	if (tx != ty)
		return tx < ty ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* Where key[0..len) first occurs in data[0..size), or SIZE_MAX (memchr + memcmp: no table
 * set up per call as memmem does, and a record's name sits near its start). */
static size_t find_bytes(const void *data, size_t size, const char *key, size_t len)
{
	const unsigned char *p = data, *end = p + size;

	while (p && (size_t) (end - p) >= len) {
		p = memchr(p, (unsigned char) key[0], (size_t) (end - p) - len + 1);
		if (!p)
			break;
		if (memcmp(p, key, len) == 0)
			return (size_t) (p - (const unsigned char *) data);
		p++;
	}
	return SIZE_MAX;
}

/* Counting the key index's parts; 0 or -EINVAL / -EMSGSIZE. */
static int plan_keys(const struct tu_blob *blobs, size_t n_blobs, size_t *ret_keyed,
		     size_t *ret_key_bytes, struct tu_err *reterr)
{
	size_t keyed = 0, bytes = 0;

	for (size_t i = 0; i < n_blobs; i++) {
		if (blobs[i].key_len == 0)
			continue;
		if (!blobs[i].key)
			return tu_err_set(reterr, -EINVAL, "blob %zu: NULL key", i);
		if (blobs[i].key_len > TU_SNAPSHOT_MAX_KEY)
			return tu_err_set(reterr, -EMSGSIZE, "blob %zu: key of %zu bytes (limit %u)",
					  i, blobs[i].key_len, TU_SNAPSHOT_MAX_KEY);
		keyed++;
		bytes += blobs[i].key_len;
		if (bytes > TU_SNAPSHOT_MAX_SIZE)
			return tu_err_set(reterr, -EMSGSIZE, "blob keys exceed %u bytes",
					  TU_SNAPSHOT_MAX_SIZE);
	}
	*ret_keyed = keyed;
	*ret_key_bytes = bytes;
	return 0;
}

static int build_blobs(uint32_t kind, const struct tu_blob *blobs, size_t n_blobs,
		       const struct extra_sec *extra, size_t n_extra, uint64_t generation,
		       int64_t now_usec, void **ret_data, size_t *ret_size, struct tu_err *reterr);

int tu_snapshot_build_blobs(uint32_t kind, const struct tu_blob *blobs, size_t n_blobs,
			    uint64_t generation, int64_t now_usec, void **ret_data,
			    size_t *ret_size, struct tu_err *reterr)
{
	if (kind == 0 || kind_is_accounts(kind) || kind_is_delta(kind))
		return tu_err_set(reterr, -EINVAL, "invalid blob snapshot kind %u", kind);
	return build_blobs(kind, blobs, n_blobs, NULL, 0, generation, now_usec, ret_data, ret_size,
			   reterr);
}

/* A blob file of any blob kind (the state delta: with its extra sections before the chunks). */
static int build_blobs(uint32_t kind, const struct tu_blob *blobs, size_t n_blobs,
		       const struct extra_sec *extra, size_t n_extra, uint64_t generation,
		       int64_t now_usec, void **ret_data, size_t *ret_size, struct tu_err *reterr)
{
	_cleanup_free_ unsigned char *buf = NULL;
	_cleanup_free_ uint32_t *order = NULL;
	_cleanup_free_ size_t *kpos = NULL;
	struct sec_plan plan[8] = {{.type = SEC_BLOB_INDEX},
				   {.type = SEC_BLOB_DATA},
				   {.type = SEC_BLOB_KEYS},
				   {.type = SEC_CHUNKS}};
	size_t data = 0, size, keyed = 0, key_bytes = 0, n_ranges = 0, nplan = 3, first_extra;
	uint32_t slots = 0;
	int r;

	if (n_extra > 4)
		return tu_err_set(reterr, -EINVAL, "too many extra sections");
	if (n_blobs > TU_SNAPSHOT_MAX_RECORDS)
		return tu_err_set(reterr, -EMSGSIZE, "too many blobs (%zu; limit %u)", n_blobs,
				  TU_SNAPSHOT_MAX_RECORDS);
	if (n_blobs && !blobs)
		return tu_err_set(reterr, -EINVAL, "NULL blob array");
	for (size_t i = 0; i < n_blobs; i++) {
		if (blobs[i].size && !blobs[i].data)
			return tu_err_set(reterr, -EINVAL, "blob %zu: NULL data", i);
		if (blobs[i].size > TU_SNAPSHOT_MAX_SIZE ||
		    __builtin_add_overflow(data, blobs[i].size, &data) ||
		    data > TU_SNAPSHOT_MAX_SIZE)
			return tu_err_set(reterr, -EMSGSIZE, "blobs exceed %u bytes",
					  TU_SNAPSHOT_MAX_SIZE);
	}
	r = plan_keys(blobs, n_blobs, &keyed, &key_bytes, reterr);
	if (r < 0)
		return r;
	order = malloc((n_blobs ? n_blobs : 1) * sizeof(*order));
	kpos = keyed ? malloc(n_blobs * sizeof(*kpos)) : NULL;
	if (!order || (keyed && !kpos))
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	/* A key is stored where its blob's data already holds the same bytes (a user's or a
	 * role's name is in its record); only the others are appended after all blob data. */
	key_bytes = 0;
	for (size_t i = 0; keyed && i < n_blobs; i++) {
		kpos[i] = blobs[i].key_len ? find_bytes(blobs[i].data, blobs[i].size, blobs[i].key,
							blobs[i].key_len)
					   : SIZE_MAX;
		if (blobs[i].key_len && kpos[i] == SIZE_MAX)
			key_bytes += blobs[i].key_len;
	}
	if (__builtin_add_overflow(data, key_bytes, &data) || data > TU_SNAPSHOT_MAX_SIZE)
		return tu_err_set(reterr, -EMSGSIZE, "blobs and keys exceed %u bytes", TU_SNAPSHOT_MAX_SIZE);
	for (size_t i = 0; i < n_blobs; i++)
		order[i] = (uint32_t) i;
	if (keyed) {
		/* Grouped by type (stable), so each type is one range of the index; the
		 * state writer hands them over in that order already. */
		bool sorted = true;

		for (size_t i = 1; sorted && i < n_blobs; i++)
			sorted = blobs[i - 1].type <= blobs[i].type;
		if (!sorted)
			qsort_r(order, n_blobs, sizeof(*order), cmp_blob_pos, (void *) blobs);
		for (size_t i = 0; i < n_blobs; i++)
			if (i == 0 || blobs[order[i]].type != blobs[order[i - 1]].type)
				n_ranges++;
		if (n_ranges > KEYS_MAX_RANGES)
			return tu_err_set(reterr, -EMSGSIZE,
					  "%zu blob types with a key index (limit %u)", n_ranges,
					  KEYS_MAX_RANGES);
		/* Load 3/4 (not <= 1/2 in powers of two as in the accounts indexes): the slots
		 * are 16 bytes and the state is rewritten whole, so its size is what a write
		 * costs; a probe still stays within a cache line or two. */
		slots = (uint32_t) ((keyed * 4 + 2) / 3);
		plan[2].count = slots;
		plan[2].len = KEYS_HEAD + KEYS_RANGE * n_ranges + KEYS_SLOT * (size_t) slots;
		nplan = 4;
	} else {
		plan[2] = plan[3];
	}
	/* nplan counts the chunk table: extras go before it. */
	first_extra = nplan - 1;
	for (size_t i = 0; i < n_extra; i++)
		plan[first_extra + i] = (struct sec_plan){
		    .type = extra[i].type, .count = extra[i].count, .len = extra[i].len};
	nplan += n_extra;
	plan[nplan - 1] = (struct sec_plan){.type = SEC_CHUNKS};
	plan[0].count = (uint32_t) n_blobs, plan[0].len = BLOB_ENTRY * n_blobs;
	plan[1].count = 0, plan[1].len = data;
	size = plan_with_chunks(plan, nplan);
	if (size == 0)
		return tu_err_set(reterr, -EMSGSIZE, "snapshot would exceed %u bytes",
				  TU_SNAPSHOT_MAX_SIZE);
	buf = calloc(1, size);
	if (!buf)
		return tu_err_set(reterr, -ENOMEM, "out of memory (%zu bytes)", size);
	data = 0;
	for (size_t i = 0; i < n_blobs; i++) {
		const struct tu_blob *bl = &blobs[order[i]];
		unsigned char *e = buf + plan[0].off + BLOB_ENTRY * i;

		snap_put32(e, bl->type);
		snap_put64(e + 8, data);
		snap_put64(e + 16, bl->size);
		if (bl->size)
			memcpy(buf + plan[1].off + data, bl->data, bl->size);
		if (keyed && kpos[order[i]] != SIZE_MAX)
			kpos[order[i]] += data; /* now an offset in BLOB_DATA */
		data += bl->size;
	}
	if (keyed) {
		unsigned char *k = buf + plan[2].off, *rng = k + KEYS_HEAD,
			      *tab = rng + KEYS_RANGE * n_ranges;
		size_t ri = 0, koff = data; /* keys found in no blob: after all blob data */

		snap_put32(k, (uint32_t) n_ranges);
		memset(tab, 0xff, KEYS_SLOT * (size_t) slots);
		for (size_t i = 0; i < n_blobs; i++) {
			const struct tu_blob *bl = &blobs[order[i]];
			uint32_t h;

			if (i == 0 || bl->type != blobs[order[i - 1]].type) {
				unsigned char *e = rng + KEYS_RANGE * ri++;

				snap_put32(e, bl->type);
				snap_put32(e + 8, (uint32_t) i);
			}
			snap_put32(rng + KEYS_RANGE * (ri - 1) + 12,
				   snap_le32(rng + KEYS_RANGE * (ri - 1) + 12) + 1);
			if (bl->key_len == 0)
				continue;
			size_t at = kpos[order[i]];

			if (at == SIZE_MAX) {
				memcpy(buf + plan[1].off + koff, bl->key, bl->key_len);
				at = koff;
				koff += bl->key_len;
			}
			h = snap_hash_key(bl->type, bl->key, bl->key_len);
			for (uint32_t j = 0; j < slots; j++) {
				unsigned char *slot = tab + KEYS_SLOT * (size_t) snap_key_slot(h, slots, j);

				if (snap_le32(slot + 4) != SNAP_EMPTY_SLOT)
					continue;
				snap_put32(slot, h);
				snap_put32(slot + 4, (uint32_t) i);
				snap_put32(slot + 8, (uint32_t) at);
				snap_put32(slot + 12, (uint32_t) bl->key_len);
				break;
			}
		}
	}
	for (size_t i = 0; i < n_extra; i++)
		if (extra[i].len)
			memcpy(buf + plan[first_extra + i].off, extra[i].data, extra[i].len);
	finish_header(buf, size, kind, plan, nplan, generation, now_usec);
	*ret_data = TAKE_PTR(buf);
	*ret_size = size;
	return 0;
}

int tu_snapshot_replace_file(const char *path, mode_t mode, const void *data, size_t size,
			     struct tu_err *reterr)
{
	/* One atomic writer in base (fsutil): temp file, fsync, rename, directory fsync. */
	return tu_fs_write_atomic(path, data, size, mode, reterr);
}

int tu_snapshot_write_accounts(const char *path, const struct tu_pw_rec *pw, size_t n_pw,
			       const struct tu_gr_rec *gr, size_t n_gr, uint64_t generation,
			       int64_t now_usec, struct tu_err *reterr)
{
	return tu_snapshot_write_accounts_meta(path, pw, n_pw, gr, n_gr, NULL, generation, now_usec,
					       reterr);
}

int tu_snapshot_write_accounts_meta(const char *path, const struct tu_pw_rec *pw, size_t n_pw,
				    const struct tu_gr_rec *gr, size_t n_gr,
				    const struct tu_snapshot_meta *meta, uint64_t generation,
				    int64_t now_usec, struct tu_err *reterr)
{
	_cleanup_free_ void *data = NULL;
	size_t size = 0;
	int r;

	r = tu_snapshot_build_accounts_meta(pw, n_pw, gr, n_gr, meta, generation, now_usec, &data,
					    &size, reterr);
	if (r < 0)
		return r;
	return tu_snapshot_replace_file(path, 0644, data, size, reterr);
}

int tu_snapshot_write_blobs(const char *path, mode_t mode, uint32_t kind,
			    const struct tu_blob *blobs, size_t n_blobs, uint64_t generation,
			    int64_t now_usec, struct tu_err *reterr)
{
	_cleanup_free_ void *data = NULL;
	size_t size = 0;
	int r;

	r = tu_snapshot_build_blobs(kind, blobs, n_blobs, generation, now_usec, &data, &size,
				    reterr);
	if (r < 0)
		return r;
	return tu_snapshot_replace_file(path, mode, data, size, reterr);
}

/* ---- reading: records ------------------------------------------------- */

static int bad(struct tu_err *reterr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct tu_err *reterr, const char *fmt, ...)
{
	va_list ap;

	if (!reterr)
		return -EBADMSG;
	va_start(ap, fmt);
	(void) tu_err_setv(reterr, -EBADMSG, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/*
 * Lazy mode: checksums the chunks covering file bytes [a, b) that no lookup
 * verified yet.  Two threads may verify the same chunk at once; both agree.
 */
static int verify_range_slow(const struct tu_snapshot *s, size_t a, size_t b, struct tu_err *reterr)
{
	if (a >= b)
		return 0;
	if (a < s->cover_start || b > s->cover_end)
		return bad(reterr, "bytes %zu..%zu outside the checksummed area", a, b);
	for (size_t k = (a - s->cover_start) / SNAP_CHUNK;
	     k <= (b - 1 - s->cover_start) / SNAP_CHUNK; k++) {
		uint64_t bit = UINT64_C(1) << (k % 64);
		size_t start, end;

		if (atomic_load_explicit(&s->verified[k / 64], memory_order_acquire) & bit)
			continue;
		start = s->cover_start + k * SNAP_CHUNK;
		end = start + SNAP_CHUNK > s->cover_end ? s->cover_end : start + SNAP_CHUNK;
		if (tu_crc32c(0, s->base + start, end - start) !=
		    snap_le32(s->sec[SEC_CHUNKS].p + 4 * k))
			return bad(reterr, "checksum mismatch in bytes %zu..%zu (corrupt file)",
				   start, end);
		atomic_fetch_or_explicit(&s->verified[k / 64], bit, memory_order_release);
	}
	return 0;
}

/* The hot path (NSS lookups): one chunk, already verified, or not a lazy snapshot. */
static inline int verify_range(const struct tu_snapshot *s, size_t a, size_t b,
			       struct tu_err *reterr)
{
	if (!s->verified)
		return 0;
	if (a < b && a >= s->cover_start && b <= s->cover_end) {
		size_t k0 = (a - s->cover_start) / SNAP_CHUNK,
		       k1 = (b - 1 - s->cover_start) / SNAP_CHUNK;

		if (k0 == k1 && (atomic_load_explicit(&s->verified[k0 / 64], memory_order_acquire) &
				 (UINT64_C(1) << (k0 % 64))))
			return 0;
	}
	return verify_range_slow(s, a, b, reterr);
}

/* Checks a string [p, p+len] has its NUL at p[len] and (strict) none before, nor forbidden bytes.
 */
static inline bool str_ok(const unsigned char *p, size_t len, bool strict, bool name)
{
	if (p[len] != 0)
		return false;
	if (!strict)
		return true;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == ':' || (name && p[i] == ','))
			return false;
	return true;
}

static int pw_parse(const struct tu_snapshot *s, uint32_t off, bool strict, struct tu_pw_view *ret,
		    struct tu_err *reterr)
{
	const struct section *d = &s->sec[SEC_PW_DATA];
	const unsigned char *p, *q;
	size_t avail, need, nl, gl, dl, sl;
	uint32_t n_gids;

	if (off > d->len || d->len - off < PW_FIXED)
		return bad(reterr, "passwd record offset %u outside its section (%zu bytes)", off,
			   d->len);
	p = d->p + off;
	avail = d->len - off;
	n_gids = snap_le32(p + 8);
	nl = snap_le16(p + 12), gl = snap_le16(p + 14), dl = snap_le16(p + 16),
	sl = snap_le16(p + 18);
	if (n_gids > TU_SNAPSHOT_MAX_GIDS || nl == 0 || nl > TU_SNAPSHOT_MAX_NAME ||
	    gl > TU_SNAPSHOT_MAX_FIELD || dl > TU_SNAPSHOT_MAX_FIELD || sl > TU_SNAPSHOT_MAX_FIELD)
		return bad(reterr,
			   "passwd record at offset %zu: field count or length over the limits",
			   d->off + off);
	need = PW_FIXED + 4 * (size_t) n_gids + nl + gl + dl + sl + 4;
	if (need > avail)
		return bad(reterr,
			   "passwd record at offset %zu: %zu bytes past the end of its section",
			   d->off + off, need - avail);
	if (verify_range(s, d->off + off, d->off + off + need, reterr) < 0)
		return -EBADMSG;
	q = p + PW_FIXED + 4 * (size_t) n_gids;
	if (!str_ok(q, nl, strict, true) || !str_ok(q + nl + 1, gl, strict, false) ||
	    !str_ok(q + nl + gl + 2, dl, strict, false) ||
	    !str_ok(q + nl + gl + dl + 3, sl, strict, false))
		return bad(
		    reterr,
		    "passwd record at offset %zu: string not terminated or with forbidden bytes",
		    d->off + off);
	if (strict && memchr(q, 0, nl))
		return bad(reterr, "passwd record at offset %zu: NUL inside the name",
			   d->off + off);
	ret->uid = (uid_t) snap_le32(p);
	ret->gid = (gid_t) snap_le32(p + 4);
	ret->n_gids = n_gids;
	ret->gids_raw = p + PW_FIXED;
	ret->name = (const char *) q, ret->name_len = nl;
	ret->gecos = (const char *) q + nl + 1, ret->gecos_len = gl;
	ret->dir = (const char *) q + nl + gl + 2, ret->dir_len = dl;
	ret->shell = (const char *) q + nl + gl + dl + 3, ret->shell_len = sl;
	return 0;
}

static int gr_parse(const struct tu_snapshot *s, uint32_t off, bool strict, struct tu_gr_view *ret,
		    struct tu_err *reterr)
{
	const struct section *d = &s->sec[SEC_GR_DATA];
	const unsigned char *p, *m, *end;
	size_t avail, need, nl, msize, seen = 0;
	uint32_t n_members;

	if (off > d->len || d->len - off < GR_FIXED)
		return bad(reterr, "group record offset %u outside its section (%zu bytes)", off,
			   d->len);
	p = d->p + off;
	avail = d->len - off;
	n_members = snap_le32(p + 4);
	msize = snap_le32(p + 8);
	nl = snap_le16(p + 12);
	if (n_members > TU_SNAPSHOT_MAX_MEMBERS || msize > TU_SNAPSHOT_MAX_GR_BYTES || nl == 0 ||
	    nl > TU_SNAPSHOT_MAX_NAME || (n_members == 0) != (msize == 0) ||
	    msize < 2 * (size_t) n_members)
		return bad(reterr,
			   "group record at offset %zu: member count or length over the limits",
			   d->off + off);
	need = GR_FIXED + nl + 1 + msize;
	if (need > avail)
		return bad(reterr,
			   "group record at offset %zu: %zu bytes past the end of its section",
			   d->off + off, need - avail);
	if (verify_range(s, d->off + off, d->off + off + need, reterr) < 0)
		return -EBADMSG;
	if (!str_ok(p + GR_FIXED, nl, strict, true) || (strict && memchr(p + GR_FIXED, 0, nl)))
		return bad(
		    reterr,
		    "group record at offset %zu: name not terminated or with forbidden bytes",
		    d->off + off);
	/* Exactly n_members non-empty strings fill msize bytes. */
	m = p + GR_FIXED + nl + 1;
	end = m + msize;
	while (m < end) {
		const unsigned char *z = memchr(m, 0, (size_t) (end - m));

		if (!z || z == m || ++seen > n_members ||
		    (strict && !str_ok(m, (size_t) (z - m), true, true)))
			return bad(reterr, "group record at offset %zu: malformed member list",
				   d->off + off);
		m = z + 1;
	}
	if (seen != n_members)
		return bad(reterr, "group record at offset %zu: %zu members, header says %u",
			   d->off + off, seen, n_members);
	ret->gid = (gid_t) snap_le32(p);
	ret->name = (const char *) p + GR_FIXED;
	ret->name_len = nl;
	ret->n_members = n_members;
	ret->members = (const char *) p + GR_FIXED + nl + 1;
	ret->members_size = msize;
	return 0;
}

gid_t tu_pw_view_gid(const struct tu_pw_view *v, size_t i)
{
	return i < v->n_gids ? (gid_t) snap_le32(v->gids_raw + 4 * i) : (gid_t) -1;
}

const char *tu_gr_view_next_member(const struct tu_gr_view *v, size_t *cursor)
{
	const char *m;

	if (*cursor >= v->members_size)
		return NULL;
	m = v->members + *cursor;
	*cursor += strlen(m) + 1; /* terminated: checked by gr_parse */
	return m;
}

/* ---- reading: validation ---------------------------------------------- */

static int check_index(const struct tu_snapshot *s, int order, int data, const char *what,
		       bool scan, struct tu_err *reterr)
{
	const struct section *o = &s->sec[order], *d = &s->sec[data];
	uint32_t prev = 0;

	if (o->count != d->count || o->len != 4 * (size_t) o->count)
		return bad(reterr,
			   "%s order index at offset %zu: %u entries in %zu bytes, %u records",
			   what, o->off, o->count, o->len, d->count);
	if (d->count > TU_SNAPSHOT_MAX_RECORDS)
		return bad(reterr, "%s: %u records (limit %u)", what, d->count,
			   TU_SNAPSHOT_MAX_RECORDS);
	for (uint32_t i = 0; scan && i < o->count; i++) {
		uint32_t off = snap_le32(o->p + 4 * (size_t) i);

		/* The writer lays records out in order: offsets strictly increase. */
		if (off >= d->len || (i > 0 && off <= prev))
			return bad(reterr,
				   "%s order index entry %u (offset %zu) out of range or order",
				   what, i, o->off + 4 * (size_t) i);
		prev = off;
	}
	return 0;
}

static int check_slots(const struct tu_snapshot *s, int tab, int data, const char *what, bool scan,
		       struct tu_err *reterr)
{
	const struct section *t = &s->sec[tab], *d = &s->sec[data];

	if (t->count == 0 || (t->count & (t->count - 1)) != 0 || t->count < d->count ||
	    t->count > 4 * TU_SNAPSHOT_MAX_RECORDS || t->len != 8 * (size_t) t->count)
		return bad(reterr, "%s index at offset %zu: bad slot count %u (%zu bytes)", what,
			   t->off, t->count, t->len);
	for (uint32_t i = 0; scan && i < t->count; i++) {
		uint32_t off = snap_le32(t->p + 8 * (size_t) i + 4);

		if (off != SNAP_EMPTY_SLOT && off >= d->len)
			return bad(reterr,
				   "%s index slot %u (offset %zu) points outside the records", what,
				   i, t->off + 8 * (size_t) i);
	}
	return 0;
}

static bool in_order(const struct section *o, uint32_t off)
{
	size_t lo = 0, hi = o->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t v = snap_le32(o->p + 4 * mid);

		if (v == off)
			return true;
		if (v < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* TU_SNAPSHOT_CHECK_RECORDS: every record strictly, names sorted, index slots at record starts. */
static int check_all_records(const struct tu_snapshot *s, struct tu_err *reterr)
{
	const char *prev = NULL;
	int r;

	for (size_t i = 0; i < s->sec[SEC_PW_ORDER].count; i++) {
		struct tu_pw_view v;

		r = pw_parse(s, snap_le32(s->sec[SEC_PW_ORDER].p + 4 * i), true, &v, reterr);
		if (r < 0)
			return r;
		if (prev && strcmp(prev, v.name) >= 0)
			return bad(reterr, "passwd record %zu ('%.64s') out of order", i, v.name);
		prev = v.name;
	}
	prev = NULL;
	for (size_t i = 0; i < s->sec[SEC_GR_ORDER].count; i++) {
		struct tu_gr_view v;

		r = gr_parse(s, snap_le32(s->sec[SEC_GR_ORDER].p + 4 * i), true, &v, reterr);
		if (r < 0)
			return r;
		if (prev && strcmp(prev, v.name) >= 0)
			return bad(reterr, "group record %zu ('%.64s') out of order", i, v.name);
		prev = v.name;
	}
	static const int tabs[4][2] = {{SEC_PW_BYNAME, SEC_PW_ORDER},
				       {SEC_PW_BYUID, SEC_PW_ORDER},
				       {SEC_GR_BYNAME, SEC_GR_ORDER},
				       {SEC_GR_BYGID, SEC_GR_ORDER}};
	for (size_t t = 0; t < 4; t++) {
		const struct section *tab = &s->sec[tabs[t][0]];
		size_t used = 0;

		for (uint32_t i = 0; i < tab->count; i++) {
			uint32_t off = snap_le32(tab->p + 8 * (size_t) i + 4);

			if (off == SNAP_EMPTY_SLOT)
				continue;
			used++;
			if (!in_order(&s->sec[tabs[t][1]], off))
				return bad(reterr,
					   "index slot at offset %zu does not point at a record",
					   tab->off + 8 * (size_t) i);
		}
		if (used != s->sec[tabs[t][1]].count)
			return bad(reterr, "index at offset %zu has %zu entries for %u records",
				   tab->off, used, s->sec[tabs[t][1]].count);
	}
	return 0;
}

/* ---- hidden sets (delta files) --------------------------------------- */

static size_t hide_max_key(int type)
{
	return type == SEC_HIDE_BLOB ? TU_SNAPSHOT_MAX_KEY : TU_SNAPSHOT_MAX_NAME;
}

/*
 * One entry of a hidden set at section offset off: type, key (NUL-terminated in
 * the file, key_len bytes before it), and the offset of the next entry.  Names
 * (passwd, group) have type 0 and no NUL inside.
 */
static int hidden_entry(const struct tu_snapshot *s, int type, size_t off, uint32_t *ret_type,
			const unsigned char **ret_key, size_t *ret_len, size_t *ret_next,
			struct tu_err *reterr)
{
	const struct section *h = &s->sec[type];
	size_t len, need;

	if (off > h->len || h->len - off < HIDE_FIXED)
		return bad(reterr, "hidden entry at offset %zu outside its section", h->off + off);
	if (verify_range(s, h->off + off, h->off + off + HIDE_FIXED, reterr) < 0)
		return -EBADMSG;
	len = snap_le32(h->p + off + 4);
	/* A blob key of length 0 stands for the blobs of its type that have no key. */
	if ((len == 0 && type != SEC_HIDE_BLOB) || len > hide_max_key(type))
		return bad(reterr, "hidden entry at offset %zu: key of %zu bytes", h->off + off, len);
	need = align_up(HIDE_FIXED + len + 1, 4);
	if (need > h->len - off)
		return bad(reterr, "hidden entry at offset %zu: %zu bytes past the end of its section",
			   h->off + off, need - (h->len - off));
	if (verify_range(s, h->off + off, h->off + off + need, reterr) < 0)
		return -EBADMSG;
	if (h->p[off + HIDE_FIXED + len] != 0 ||
	    (type != SEC_HIDE_BLOB &&
	     (snap_le32(h->p + off) != 0 || memchr(h->p + off + HIDE_FIXED, 0, len))))
		return bad(reterr, "hidden entry at offset %zu: bad name", h->off + off);
	*ret_type = snap_le32(h->p + off);
	*ret_key = h->p + off + HIDE_FIXED;
	*ret_len = len;
	*ret_next = off + need;
	return 0;
}

static int cmp_key(uint32_t ta, const unsigned char *a, size_t la, uint32_t tb,
		   const unsigned char *b, size_t lb)
{
	int c;

	if (ta != tb)
		return ta < tb ? -1 : 1;
	c = la && lb ? memcmp(a, b, la < lb ? la : lb) : 0; /* keyless blobs: NULL, 0 */
	if (c)
		return c;
	return la < lb ? -1 : la > lb;
}

/* Shape at open; with scan every entry and slot (in order, inside); strict: slots at entries. */
static int check_hidden(const struct tu_snapshot *s, int type, bool scan, bool strict,
			struct tu_err *reterr)
{
	const struct section *h = &s->sec[type];
	_cleanup_free_ uint32_t *starts = NULL;
	size_t slots, off, prev_len = 0, used = 0;
	const unsigned char *prev = NULL;
	uint32_t prev_type = 0;

	if (!h->present)
		return bad(reterr, "delta file without its hidden set (section type %d)", type);
	if (h->count > TU_SNAPSHOT_MAX_RECORDS)
		return bad(reterr, "hidden set at offset %zu: %u entries (limit %u)", h->off, h->count,
			   TU_SNAPSHOT_MAX_RECORDS);
	slots = slots_for(h->count);
	if (h->len > UINT32_MAX || h->len % 4 ||
	    h->len < 8 * slots || (h->len - 8 * slots) / 12 < h->count)
		return bad(reterr, "hidden set at offset %zu: %u entries in %zu bytes", h->off,
			   h->count, h->len);
	if (!scan)
		return 0;
	if (strict && !(starts = malloc(sizeof(*starts) * (h->count ? h->count : 1))))
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	off = 8 * slots;
	for (uint32_t i = 0; i < h->count; i++) {
		const unsigned char *key;
		size_t len, next;
		uint32_t t;
		int r = hidden_entry(s, type, off, &t, &key, &len, &next, reterr);

		if (r < 0)
			return r;
		if (prev && cmp_key(prev_type, prev, prev_len, t, key, len) >= 0)
			return bad(reterr, "hidden entry at offset %zu out of order", h->off + off);
		if (strict) {
			for (size_t k = HIDE_FIXED + len + 1; off + k < next; k++)
				if (h->p[off + k])
					return bad(reterr, "hidden entry at offset %zu: padding not zero",
						   h->off + off);
			starts[i] = (uint32_t) off;
		}
		prev = key, prev_len = len, prev_type = t;
		off = next;
	}
	if (off != h->len)
		return bad(reterr, "hidden set at offset %zu: %zu bytes after its %u entries", h->off,
			   h->len - off, h->count);
	for (size_t i = 0; i < slots; i++) {
		uint32_t o = snap_le32(h->p + 8 * i + 4);
		size_t lo = 0, hi = h->count;

		if (o == SNAP_EMPTY_SLOT)
			continue;
		if (o < 8 * slots || o >= h->len)
			return bad(reterr, "hidden set slot at offset %zu points outside its entries",
				   h->off + 8 * i);
		if (!strict)
			continue;
		used++;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (starts[mid] < o)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == h->count || starts[lo] != o)
			return bad(reterr, "hidden set slot at offset %zu does not point at an entry",
				   h->off + 8 * i);
		{
			const unsigned char *key;
			size_t len, next;
			uint32_t t;

			(void) hidden_entry(s, type, o, &t, &key, &len, &next, NULL);
			if (snap_le32(h->p + 8 * i) != snap_hash_key(t, key, len))
				return bad(reterr, "hidden set slot at offset %zu: wrong hash",
					   h->off + 8 * i);
		}
	}
	if (strict && used != h->count)
		return bad(reterr, "hidden set at offset %zu: %zu slots for %u entries", h->off, used,
			   h->count);
	return 0;
}

/* 1 when (etype, key) is in the delta's hidden set type, 0 when not, -EBADMSG. */
static int hidden_has(const struct tu_snapshot *d, int type, uint32_t etype, const void *key,
		      size_t len, struct tu_err *reterr)
{
	const struct section *h = &d->sec[type];
	uint32_t slots = slots_for(h->count), hash = snap_hash_key(etype, key, len);

	for (uint32_t i = 0; i < slots; i++) {
		size_t at = 8 * (size_t) ((hash + i) & (slots - 1)), next, l;
		const unsigned char *k;
		uint32_t off, t;
		int r;

		if (verify_range(d, h->off + at, h->off + at + 8, reterr) < 0)
			return -EBADMSG;
		off = snap_le32(h->p + at + 4);
		if (off == SNAP_EMPTY_SLOT)
			return 0;
		if (snap_le32(h->p + at) != hash)
			continue;
		r = hidden_entry(d, type, off, &t, &k, &l, &next, reterr);
		if (r < 0)
			return r;
		if (t == etype && l == len && memcmp(k, key, len) == 0)
			return 1;
	}
	return 0;
}

static int blob_entry(const struct tu_snapshot *s, size_t i, uint32_t *ret_type,
		      const void **ret_data, size_t *ret_size, struct tu_err *reterr);

/*
 * BLOB_KEYS: the head and the range table always (with LAZY their chunks are checksummed
 * here); every slot's blob and key bounds and every blob's type against its range unless
 * LAZY (a lookup checks what it touches); with strict (CHECK_RECORDS) also that every
 * slot's hash is its blob's type and key, the slot is reachable from its hash without
 * crossing an empty slot, and no blob has two slots.
 */
static int check_keys(struct tu_snapshot *s, bool full, bool strict, struct tu_err *reterr)
{
	const struct section *k = &s->sec[SEC_BLOB_KEYS];
	const size_t n_blobs = s->sec[SEC_BLOB_INDEX].count;
	const uint32_t nslots = k->count;
	uint32_t nr;
	uint64_t kb, next = 0;
	size_t fixed;

	if (k->len < KEYS_HEAD || verify_range(s, k->off, k->off + KEYS_HEAD, reterr) < 0)
		return bad(reterr, "blob key index at offset %zu: truncated or corrupt head", k->off);
	nr = snap_le32(k->p);
	kb = s->sec[SEC_BLOB_DATA].len; /* the keys are bytes of BLOB_DATA */
	if (nr > KEYS_MAX_RANGES || snap_le32(k->p + 4) != 0 || snap_le64(k->p + 8) != 0 || nslots == 0 ||
	    nslots > 4 * TU_SNAPSHOT_MAX_RECORDS)
		return bad(reterr, "blob key index at offset %zu: %u ranges, %u slots", k->off, nr,
			   nslots);
	fixed = KEYS_HEAD + KEYS_RANGE * (size_t) nr + KEYS_SLOT * (size_t) nslots;
	if (k->len != fixed)
		return bad(reterr, "blob key index at offset %zu: %zu bytes, its parts make %zu",
			   k->off, k->len, fixed);
	if (verify_range(s, k->off, k->off + KEYS_HEAD + KEYS_RANGE * (size_t) nr, reterr) < 0)
		return -EBADMSG;
	for (uint32_t i = 0; i < nr; i++) {
		const unsigned char *e = k->p + KEYS_HEAD + KEYS_RANGE * (size_t) i;

		if (snap_le32(e + 4) != 0 || snap_le32(e + 8) != next || snap_le32(e + 12) == 0 ||
		    (i > 0 && snap_le32(e) <= snap_le32(e - KEYS_RANGE)))
			return bad(reterr,
				   "blob key index range %u (offset %zu): not the next type or blobs",
				   i, k->off + KEYS_HEAD + KEYS_RANGE * (size_t) i);
		next += snap_le32(e + 12);
	}
	if (next != n_blobs)
		return bad(reterr, "blob key index at offset %zu: ranges cover %llu of %zu blobs",
			   k->off, (unsigned long long) next, n_blobs);
	s->key_ranges = nr;
	s->key_slots_off = k->off + KEYS_HEAD + KEYS_RANGE * (size_t) nr;
	s->key_bytes_off = s->sec[SEC_BLOB_DATA].off;
	s->key_bytes = (size_t) kb;
	if (!full)
		return 0;

	for (uint32_t i = 0; i < nr; i++) {
		const unsigned char *e = k->p + KEYS_HEAD + KEYS_RANGE * (size_t) i;

		for (uint32_t j = 0; j < snap_le32(e + 12); j++) {
			size_t b = (size_t) snap_le32(e + 8) + j;

			if (snap_le32(s->sec[SEC_BLOB_INDEX].p + BLOB_ENTRY * b) != snap_le32(e))
				return bad(reterr, "blob %zu is not of its key index range's type %u",
					   b, snap_le32(e));
		}
	}
	const unsigned char *tab = s->base + s->key_slots_off;
	size_t empty = SIZE_MAX;

	for (uint32_t i = 0; i < nslots; i++) {
		const unsigned char *slot = tab + KEYS_SLOT * (size_t) i;
		uint32_t blob = snap_le32(slot + 4), koff = snap_le32(slot + 8),
			 klen = snap_le32(slot + 12);

		if (blob == SNAP_EMPTY_SLOT) {
			empty = i;
			continue;
		}
		if (blob >= n_blobs || klen == 0 || klen > TU_SNAPSHOT_MAX_KEY || koff > kb ||
		    kb - koff < klen)
			return bad(reterr, "blob key index slot %u (offset %zu) out of range", i,
				   s->key_slots_off + KEYS_SLOT * (size_t) i);
	}
	if (!strict)
		return 0;

	_cleanup_free_ uint64_t *seen = calloc((n_blobs + 63) / 64 + 1, sizeof(*seen));
	/* From an empty slot on, run = the non-empty slots just before the one looked at (a
	 * table without an empty slot: every slot is reachable, the probe takes them all). */
	uint32_t run = empty == SIZE_MAX ? nslots : 0;

	if (!seen)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	if (empty == SIZE_MAX)
		empty = nslots - 1;
	for (uint32_t n = 0; n < nslots; n++) {
		uint32_t i = (uint32_t) ((empty + 1 + n) % nslots);
		const unsigned char *slot = tab + KEYS_SLOT * (size_t) i;
		uint32_t blob = snap_le32(slot + 4), h;

		if (blob == SNAP_EMPTY_SLOT) {
			run = 0;
			continue;
		}
		h = snap_hash_key(snap_le32(s->sec[SEC_BLOB_INDEX].p + BLOB_ENTRY * (size_t) blob),
				  s->base + s->key_bytes_off + snap_le32(slot + 8),
				  snap_le32(slot + 12));
		if (h != snap_le32(slot) ||
		    (i + nslots - snap_key_slot(h, nslots, 0)) % nslots > run ||
		    (seen[blob / 64] & (UINT64_C(1) << (blob % 64))))
			return bad(reterr,
				   "blob key index slot %u (offset %zu): wrong hash, unreachable or a second slot for blob %u",
				   i, s->key_slots_off + KEYS_SLOT * (size_t) i, blob);
		seen[blob / 64] |= UINT64_C(1) << (blob % 64);
		run++;
	}
	return 0;
}

static int validate(struct tu_snapshot *s, uint32_t expected_kind, unsigned flags,
		    struct tu_err *reterr)
{
	const unsigned char *b = s->base;
	uint32_t version, kind, hdr, nsec, crc;
	uint64_t fsize;
	bool lazy = (flags & TU_SNAPSHOT_LAZY) && !(flags & TU_SNAPSHOT_CHECK_RECORDS);

	if (s->size < SNAP_HDR_SIZE)
		return bad(reterr, "truncated: %zu bytes, the header alone is %u", s->size,
			   SNAP_HDR_SIZE);
	if (memcmp(b + H_MAGIC, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0)
		return bad(reterr, "not a teleport-unix snapshot (bad magic)");
	version = snap_le32(b + H_VERSION);
	if (version != SNAP_VERSION)
		return bad(reterr, "unsupported format version %u (this build reads %u)", version,
			   SNAP_VERSION);
	kind = snap_le32(b + H_KIND);
	if (kind == 0 || (expected_kind && kind != expected_kind))
		return bad(reterr, "snapshot of kind %u, expected %u", kind, expected_kind);
	if (snap_le32(b + H_FLAGS) != 0)
		return bad(reterr, "unknown header flags 0x%x", snap_le32(b + H_FLAGS));
	nsec = snap_le32(b + H_N_SECTIONS);
	hdr = snap_le32(b + H_HDR_SIZE);
	if (nsec > SNAP_MAX_SECS || hdr != SNAP_HDR_SIZE + SNAP_SEC_SIZE * nsec)
		return bad(reterr, "bad header size %u for %u sections", hdr, nsec);
	if (hdr > s->size)
		return bad(reterr, "truncated: %zu bytes, the header says it is %u", s->size, hdr);
	fsize = snap_le64(b + H_FILE_SIZE);
	if (fsize != s->size)
		return bad(reterr,
			   "file is %zu bytes, the header says %llu (truncated or extended)",
			   s->size, (unsigned long long) fsize);
	crc = tu_crc32c(0, b, H_HEADER_CRC);
	crc = tu_crc32c(crc, b + H_HEADER_CRC + 4, hdr - H_HEADER_CRC - 4);
	if (crc != snap_le32(b + H_HEADER_CRC))
		return bad(reterr, "header checksum mismatch");
	if (!lazy && tu_crc32c(0, b + hdr, s->size - hdr) != snap_le32(b + H_PAYLOAD_CRC))
		return bad(reterr, "payload checksum mismatch (corrupt file)");

	for (uint32_t i = 0; i < nsec; i++) {
		const unsigned char *e = b + SNAP_HDR_SIZE + SNAP_SEC_SIZE * (size_t) i;
		uint32_t type = snap_le32(e), count = snap_le32(e + 4);
		uint64_t off = snap_le64(e + 8), len = snap_le64(e + 16), end;

		if (type == 0 || type > SEC_TYPE_MAX || s->sec[type].present)
			return bad(reterr, "section %u: unknown or repeated type %u", i, type);
		if (snap_le64(e + 24) != 0)
			return bad(reterr, "section %u: reserved field not zero", i);
		if (off < hdr || __builtin_add_overflow(off, len, &end) || end > s->size)
			return bad(
			    reterr,
			    "section %u (type %u): bytes %llu+%llu outside the file (%zu bytes)", i,
			    type, (unsigned long long) off, (unsigned long long) len, s->size);
		s->sec[type] = (struct section){.p = b + off,
						.off = (size_t) off,
						.len = (size_t) len,
						.count = count,
						.present = true};
	}

	{
		const struct section *c = &s->sec[SEC_CHUNKS];
		size_t chunks;

		if (!c->present)
			return bad(reterr, "no chunk checksum table");
		for (int t = 1; t <= SEC_TYPE_MAX; t++)
			if (t != SEC_CHUNKS && s->sec[t].present &&
			    s->sec[t].off + s->sec[t].len > c->off)
				return bad(reterr,
					   "section type %d extends past the chunk checksum table",
					   t);
		chunks = (c->off - hdr + SNAP_CHUNK - 1) / SNAP_CHUNK;
		if (c->count != chunks || c->len != 4 * chunks)
			return bad(reterr,
				   "chunk checksum table: %u entries in %zu bytes, %zu chunks",
				   c->count, c->len, chunks);
		if (tu_crc32c(0, c->p, c->len) != snap_le32(b + H_CHUNK_CRC))
			return bad(reterr, "chunk checksum table checksum mismatch");
		s->cover_start = hdr;
		s->cover_end = c->off;
	}
	if (lazy) {
		size_t words = (s->sec[SEC_CHUNKS].count + 63) / 64;

		s->verified = calloc(words ? words : 1, sizeof(*s->verified));
		if (!s->verified)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
	}

	if (kind_is_delta(kind)) {
		const struct section *d = &s->sec[SEC_DELTA];

		if (!d->present || d->len != DELTA_SIZE)
			return bad(reterr, "delta file without its base section (type %d, %u bytes)",
				   SEC_DELTA, DELTA_SIZE);
		if (verify_range(s, d->off, d->off + DELTA_SIZE, reterr) < 0)
			return -EBADMSG;
		if (snap_le32(d->p + 12) != 0 || snap_le64(d->p + 16) != 0 ||
		    snap_le64(d->p + 24) != 0)
			return bad(reterr, "delta base section at offset %zu: reserved field not zero",
				   d->off);
	} else if (s->sec[SEC_DELTA].present || s->sec[SEC_HIDE_PW].present ||
		   s->sec[SEC_HIDE_GR].present || s->sec[SEC_HIDE_BLOB].present)
		return bad(reterr, "delta sections in a snapshot of kind %u", kind);

	if (kind_is_accounts(kind)) {
		static const int need[] = {SEC_PW_DATA, SEC_PW_ORDER, SEC_PW_BYNAME, SEC_PW_BYUID,
					   SEC_GR_DATA, SEC_GR_ORDER, SEC_GR_BYNAME, SEC_GR_BYGID};
		int r;

		if (s->sec[SEC_HIDE_BLOB].present)
			return bad(reterr, "accounts snapshot with a hidden blob section");
		if (kind == TU_SNAPSHOT_KIND_ACCOUNTS_DELTA &&
		    ((r = check_hidden(s, SEC_HIDE_PW, !lazy, flags & TU_SNAPSHOT_CHECK_RECORDS,
				       reterr)) < 0 ||
		     (r = check_hidden(s, SEC_HIDE_GR, !lazy, flags & TU_SNAPSHOT_CHECK_RECORDS,
				       reterr)) < 0))
			return r;

		for (size_t i = 0; i < ELEMENTSOF(need); i++)
			if (!s->sec[need[i]].present)
				return bad(reterr, "accounts snapshot without section type %d",
					   need[i]);
		if (s->sec[SEC_BLOB_INDEX].present || s->sec[SEC_BLOB_DATA].present ||
		    s->sec[SEC_BLOB_KEYS].present)
			return bad(reterr, "accounts snapshot with blob sections");
		if (s->sec[SEC_META].present &&
		    (s->sec[SEC_META].len != META_SIZE || snap_le64(s->sec[SEC_META].p + 8) != 0 ||
		     verify_range(s, s->sec[SEC_META].off, s->sec[SEC_META].off + META_SIZE,
				  reterr) < 0))
			return bad(reterr, "bad meta section at offset %zu", s->sec[SEC_META].off);
		if (s->sec[SEC_PW_DATA].len > UINT32_MAX || s->sec[SEC_GR_DATA].len > UINT32_MAX)
			return bad(reterr, "record section over 4 GiB");
		/* Lazy: shapes only; the O(n) scans are what the lookups' own bounds checks
		 * replace. */
		if ((r = check_index(s, SEC_PW_ORDER, SEC_PW_DATA, "passwd", !lazy, reterr)) < 0 ||
		    (r = check_index(s, SEC_GR_ORDER, SEC_GR_DATA, "group", !lazy, reterr)) < 0 ||
		    (r = check_slots(s, SEC_PW_BYNAME, SEC_PW_DATA, "passwd by-name", !lazy,
				     reterr)) < 0 ||
		    (r = check_slots(s, SEC_PW_BYUID, SEC_PW_DATA, "passwd by-uid", !lazy,
				     reterr)) < 0 ||
		    (r = check_slots(s, SEC_GR_BYNAME, SEC_GR_DATA, "group by-name", !lazy,
				     reterr)) < 0 ||
		    (r = check_slots(s, SEC_GR_BYGID, SEC_GR_DATA, "group by-gid", !lazy, reterr)) <
			0)
			return r;
		if (flags & TU_SNAPSHOT_CHECK_RECORDS) {
			r = check_all_records(s, reterr);
			if (r < 0)
				return r;
		}
	} else {
		const struct section *ix = &s->sec[SEC_BLOB_INDEX], *d = &s->sec[SEC_BLOB_DATA];

		if (!ix->present || !d->present)
			return bad(reterr, "blob snapshot without its index or data section");
		for (int t = SEC_PW_DATA; t <= SEC_GR_BYGID; t++)
			if (s->sec[t].present || s->sec[SEC_META].present ||
			    s->sec[SEC_HIDE_PW].present || s->sec[SEC_HIDE_GR].present)
				return bad(reterr, "blob snapshot with accounts sections");
		if (kind == TU_SNAPSHOT_KIND_STATE_DELTA) {
			int r = check_hidden(s, SEC_HIDE_BLOB, !lazy,
					     flags & TU_SNAPSHOT_CHECK_RECORDS, reterr);

			if (r < 0)
				return r;
		}
		if (ix->count > TU_SNAPSHOT_MAX_RECORDS ||
		    ix->len != BLOB_ENTRY * (size_t) ix->count)
			return bad(reterr, "blob index at offset %zu: %u entries in %zu bytes",
				   ix->off, ix->count, ix->len);
		/* Lazy: each blob's entry is checked when it is read (blob_at). */
		for (uint32_t i = 0; !lazy && i < ix->count; i++) {
			const unsigned char *e = ix->p + BLOB_ENTRY * (size_t) i;
			uint64_t off = snap_le64(e + 8), len = snap_le64(e + 16), end;

			if (snap_le32(e + 4) != 0 || __builtin_add_overflow(off, len, &end) ||
			    end > d->len)
				return bad(reterr,
					   "blob %u (index offset %zu) outside the data section", i,
					   ix->off + BLOB_ENTRY * (size_t) i);
		}
		if (s->sec[SEC_BLOB_KEYS].present) {
			int r = check_keys(s, !lazy, flags & TU_SNAPSHOT_CHECK_RECORDS, reterr);

			if (r < 0)
				return r;
		}
	}
	s->kind = kind;
	s->generation = snap_le64(b + H_GENERATION);
	s->created_usec = (int64_t) snap_le64(b + H_CREATED);
	return 0;
}

int tu_snapshot_open_buffer(const void *data, size_t size, uint32_t expected_kind, unsigned flags,
			    struct tu_snapshot **ret, struct tu_err *reterr)
{
	struct tu_snapshot *s;
	int r;

	if (!data && size)
		return tu_err_set(reterr, -EINVAL, "NULL buffer");
	s = calloc(1, sizeof(*s));
	if (!s)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	s->base = data;
	s->size = size;
	r = validate(s, expected_kind, flags, reterr);
	if (r < 0) {
		free(s->verified);
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

/*
 * The directory that really holds the file (after the default dir's symlink)
 * must be as trusted as the file: owned by root or the reader, and not
 * writable by others unless sticky, or anyone could rename their own copy
 * over it or take it away (sshd's StrictModes idea).
 */
static int check_dir(const char *path, struct tu_err *reterr)
{
	_cleanup_free_ char *real = realpath(path, NULL);
	struct stat st;
	char *slash;

	if (!real)
		return tu_err_set(reterr, -errno, "%s: %s", path, strerror(errno));
	slash = strrchr(real, '/');
	if (!slash)
		return tu_err_set(reterr, -EINVAL, "%s: not an absolute path", path);
	if (slash == real)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(real, &st) < 0)
		return tu_err_set(reterr, -errno, "%s: %s", real, strerror(errno));
	if (st.st_uid != 0 && st.st_uid != (uid_t) syscall(SYS_geteuid))
		return tu_err_set(reterr, -EPERM, "%s: directory owned by uid %u, neither root nor the reader, refused",
				  real, (unsigned) st.st_uid);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return tu_err_set(reterr, -EPERM,
				  "%s: directory writable by group or others without the sticky bit (mode %04o), refused",
				  real, (unsigned) (st.st_mode & 07777));
	return 0;
}

static uint32_t delta_kind_of(uint32_t kind);
static int build_blob_overlay(struct tu_snapshot *s, struct tu_err *reterr);
static int delta_applies(const struct tu_snapshot *base, const struct tu_snapshot *d,
			 struct tu_err *reterr);

/* One file, trusted and validated; nofollow for the delta (never a symlink). */
static int open_one(const char *path, uint32_t expected_kind, unsigned flags, bool nofollow,
		    struct tu_snapshot **ret, struct tu_err *reterr)
{
	_cleanup_close_ int fd = -1;
	struct tu_snapshot *s = NULL;
	struct stat st;
	void *map;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0));
	if (fd < 0) {
		r = -errno;
		if (r == -ELOOP && nofollow)
			return tu_err_set(reterr, -EPERM, "%s: a symbolic link, refused", path);
		return tu_err_set(reterr, r, "%s: %s", path, strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		return tu_err_set(reterr, r, "%s: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode))
		return tu_err_set(reterr, -EBADMSG, "%s: not a regular file", path);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return tu_err_set(reterr, -EPERM,
				  "%s: writable by group or others (mode %04o), refused", path,
				  (unsigned) (st.st_mode & 07777));
	/*
	 * Only root, or the very user reading it, may have written it: whoever owns the file
	 * decides which uid a name maps to.  The raw syscall asks the kernel, not a preloaded
	 * uid_wrapper, so tests that pose as root still read the files they wrote themselves.
	 */
	if (st.st_uid != 0 && st.st_uid != (uid_t) syscall(SYS_geteuid))
		return tu_err_set(reterr, -EPERM,
				  "%s: owned by uid %u, neither root nor the reader, refused", path,
				  (unsigned) st.st_uid);
	r = check_dir(path, reterr);
	if (r < 0)
		return r;
	if ((uint64_t) st.st_size > TU_SNAPSHOT_MAX_SIZE)
		return tu_err_set(reterr, -EBADMSG, "%s: %lld bytes, over the %u byte limit", path,
				  (long long) st.st_size, TU_SNAPSHOT_MAX_SIZE);
	if (st.st_size < SNAP_HDR_SIZE)
		return tu_err_set(reterr, -EBADMSG,
				  "%s: truncated: %lld bytes, the header alone is %u", path,
				  (long long) st.st_size, SNAP_HDR_SIZE);
	map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		return tu_err_set(reterr, r, "%s: mmap: %s", path, strerror(-r));
	}
	r = tu_snapshot_open_buffer(map, (size_t) st.st_size, expected_kind,
				    flags & ~TU_SNAPSHOT_OVERLAY, &s, reterr);
	if (r < 0 || !s) {
		(void) munmap(map, (size_t) st.st_size);
		tu_err_prefix(reterr, "%s", path);
		return r < 0 ? r : -EIO;
	}
	s->mapped = true;
	*ret = s;
	return 0;
}

#define OVERLAY_ATTEMPTS 4

/*
 * The base, then its delta.  A writer renames a new delta over the old one and
 * never removes one, and a full write bumps the base's generation: so a delta
 * naming a newer base means the base we mapped was replaced meanwhile (open
 * both again), an older one is already in the base.
 */
int tu_snapshot_open(const char *path, uint32_t expected_kind, unsigned flags,
		     struct tu_snapshot **ret, struct tu_err *reterr)
{
	char dpath[PATH_MAX];
	unsigned long long dgen = 0, bgen = 0;

	if (!(flags & TU_SNAPSHOT_OVERLAY))
		return open_one(path, expected_kind, flags, false, ret, reterr);
	for (int attempt = 0; attempt < OVERLAY_ATTEMPTS; attempt++) {
		struct tu_snapshot *s = NULL, *d = NULL;
		struct tu_err de = {};
		int r = open_one(path, expected_kind, flags, false, &s, reterr);

		if (r < 0)
			return r;
		if (!delta_kind_of(s->kind)) {
			*ret = s;
			return 0;
		}
		r = tu_snapshot_delta_path(path, dpath, sizeof(dpath));
		if (r < 0) {
			tu_snapshot_close(s);
			return tu_err_set(reterr, r, "%s: the delta's path: %s", path, strerror(-r));
		}
		r = open_one(dpath, delta_kind_of(s->kind), flags, true, &d, &de);
		if (r == -ENOENT) {
			*ret = s;
			return 0;
		}
		if (r >= 0) {
			r = delta_applies(s, d, &de);
			if (r == -EAGAIN)
				dgen = d->generation, bgen = s->generation;
			else if (r < 0)
				tu_err_prefix(&de, "%s", dpath);
		}
		if (r > 0) {
			s->delta = d;
			if (kind_is_accounts(s->kind) || (r = build_blob_overlay(s, &de)) >= 0) {
				*ret = s;
				return 0;
			}
			tu_err_prefix(&de, "%s", dpath);
			if (reterr)
				*reterr = de;
			tu_snapshot_close(s);
			return r;
		}
		tu_snapshot_close(d);
		if (r == 0) {
			*ret = s;
			return 0;
		}
		tu_snapshot_close(s);
		if (r != -EAGAIN) {
			if (reterr)
				*reterr = de;
			return r;
		}
	}
	return tu_err_set(reterr, -ESTALE,
			  "%s: its delta %s names base generation %llu, newer than the base's %llu, "
			  "after %d attempts",
			  path, dpath, dgen, bgen, OVERLAY_ATTEMPTS);
}

struct tu_snapshot *tu_snapshot_close(struct tu_snapshot *s)
{
	if (!s)
		return NULL;
	if (s->mapped)
		(void) munmap((void *) s->base, s->size);
	tu_snapshot_close(s->delta);
	if (s->bov) {
		free(s->bov->hidden);
		free(s->bov->segs);
		free(s->bov);
	}
	for (size_t i = 0; i < ELEMENTSOF(s->hpos); i++)
		free(atomic_load(&s->hpos[i]));
	free(s->verified);
	free(s);
	return NULL;
}

void tu_snapshot_closep(struct tu_snapshot **s)
{
	*s = tu_snapshot_close(*s);
}

uint32_t tu_snapshot_kind(const struct tu_snapshot *s)
{
	return s->kind;
}

uint64_t tu_snapshot_generation(const struct tu_snapshot *s)
{
	return s->generation;
}

int64_t tu_snapshot_created_usec(const struct tu_snapshot *s)
{
	return s->delta ? s->delta->created_usec : s->created_usec;
}

bool tu_snapshot_has_delta(const struct tu_snapshot *s)
{
	return s && s->delta;
}

size_t tu_snapshot_size(const struct tu_snapshot *s)
{
	return s->size;
}

uint64_t tu_snapshot_negative_ttl_usec(const struct tu_snapshot *s)
{
	if (s->delta && s->delta->sec[SEC_META].present)
		return snap_le64(s->delta->sec[SEC_META].p);
	if (!kind_is_accounts(s->kind) || !s->sec[SEC_META].present)
		return 0;
	return snap_le64(s->sec[SEC_META].p); /* checked at open */
}

/* Records of one file (base or delta alone). */
static size_t one_count(const struct tu_snapshot *s, int order)
{
	return kind_is_accounts(s->kind) ? s->sec[order].count : 0;
}

/* With a delta: the base's records minus the hidden ones (all in the base: checked when the
 * delta was attached and again on enumeration), plus the delta's. */
size_t tu_snapshot_passwd_count(const struct tu_snapshot *s)
{
	if (s->delta)
		return one_count(s, SEC_PW_ORDER) - s->delta->sec[SEC_HIDE_PW].count +
		       one_count(s->delta, SEC_PW_ORDER);
	return one_count(s, SEC_PW_ORDER);
}

size_t tu_snapshot_group_count(const struct tu_snapshot *s)
{
	if (s->delta)
		return one_count(s, SEC_GR_ORDER) - s->delta->sec[SEC_HIDE_GR].count +
		       one_count(s->delta, SEC_GR_ORDER);
	return one_count(s, SEC_GR_ORDER);
}

/* ---- lookups ---------------------------------------------------------- */

/*
 * Open-addressing probe shared by the four indexes: starting at slot
 * start + *i, returns 1 with *ret_off set for the next slot whose key is
 * key, 0 at an empty slot or after a full turn (not found), -EBADMSG when
 * a slot lies in a chunk that fails its checksum.  *i advances, so the
 * caller loops until the record behind the slot really matches.
 */
static inline int probe_next(const struct tu_snapshot *s, const struct section *t, uint32_t start, uint32_t key,
			     uint32_t *i, uint32_t *ret_off, struct tu_err *reterr)
{
	for (; *i < t->count; (*i)++) {
		size_t at = 8 * (size_t) ((start + *i) & (t->count - 1));
		const unsigned char *slot = t->p + at;
		uint32_t off;

		if (verify_range(s, t->off + at, t->off + at + 8, reterr) < 0)
			return -EBADMSG;
		off = snap_le32(slot + 4);
		if (off == SNAP_EMPTY_SLOT)
			return 0;
		if (snap_le32(slot) == key) {
			(*i)++;
			*ret_off = off;
			return 1;
		}
	}
	return 0;
}

static int one_find_login(const struct tu_snapshot *s, const char *name, struct tu_pw_view *ret,
			  uint32_t *ret_off, struct tu_err *reterr)
{
	uint32_t h, i = 0, off;
	int r;

	if (!kind_is_accounts(s->kind) || !name)
		return -ENOENT;
	h = snap_hash_name(name);
	while ((r = probe_next(s, &s->sec[SEC_PW_BYNAME], h, h, &i, &off, reterr)) > 0) {
		struct tu_pw_view v;

		r = pw_parse(s, off, false, &v, reterr);
		if (r < 0)
			return r;
		if (strcmp(v.name, name) == 0) {
			*ret = v;
			if (ret_off)
				*ret_off = off;
			return 0;
		}
	}
	return r < 0 ? r : -ENOENT;
}

static int one_find_uid(const struct tu_snapshot *s, uid_t uid, struct tu_pw_view *ret,
			struct tu_err *reterr)
{
	uint32_t i = 0, off;
	int r;

	if (!kind_is_accounts(s->kind))
		return -ENOENT;
	while ((r = probe_next(s, &s->sec[SEC_PW_BYUID], snap_hash_id((uint32_t) uid), (uint32_t) uid, &i, &off,
			       reterr)) > 0) {
		struct tu_pw_view v;

		r = pw_parse(s, off, false, &v, reterr);
		if (r < 0)
			return r;
		if (v.uid == uid) {
			*ret = v;
			return 0;
		}
	}
	return r < 0 ? r : -ENOENT;
}

static int one_find_group(const struct tu_snapshot *s, const char *name, struct tu_gr_view *ret,
			  uint32_t *ret_off, struct tu_err *reterr)
{
	uint32_t h, i = 0, off;
	int r;

	if (!kind_is_accounts(s->kind) || !name)
		return -ENOENT;
	h = snap_hash_name(name);
	while ((r = probe_next(s, &s->sec[SEC_GR_BYNAME], h, h, &i, &off, reterr)) > 0) {
		struct tu_gr_view v;

		r = gr_parse(s, off, false, &v, reterr);
		if (r < 0)
			return r;
		if (strcmp(v.name, name) == 0) {
			*ret = v;
			if (ret_off)
				*ret_off = off;
			return 0;
		}
	}
	return r < 0 ? r : -ENOENT;
}

static int one_find_gid(const struct tu_snapshot *s, gid_t gid, struct tu_gr_view *ret,
			struct tu_err *reterr)
{
	uint32_t i = 0, off;
	int r;

	if (!kind_is_accounts(s->kind))
		return -ENOENT;
	while ((r = probe_next(s, &s->sec[SEC_GR_BYGID], snap_hash_id((uint32_t) gid), (uint32_t) gid, &i, &off,
			       reterr)) > 0) {
		struct tu_gr_view v;

		r = gr_parse(s, off, false, &v, reterr);
		if (r < 0)
			return r;
		if (v.gid == gid) {
			*ret = v;
			return 0;
		}
	}
	return r < 0 ? r : -ENOENT;
}

static int one_passwd_at(const struct tu_snapshot *s, size_t i, struct tu_pw_view *ret,
			 struct tu_err *reterr)
{
	struct tu_pw_view v;
	int r;

	if (!kind_is_accounts(s->kind) || i >= s->sec[SEC_PW_ORDER].count)
		return -ENOENT;
	if (verify_range(s, s->sec[SEC_PW_ORDER].off + 4 * i, s->sec[SEC_PW_ORDER].off + 4 * i + 4,
			 reterr) < 0)
		return -EBADMSG;
	r = pw_parse(s, snap_le32(s->sec[SEC_PW_ORDER].p + 4 * i), false, &v, reterr);
	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

static int one_group_at(const struct tu_snapshot *s, size_t i, struct tu_gr_view *ret,
			struct tu_err *reterr)
{
	struct tu_gr_view v;
	int r;

	if (!kind_is_accounts(s->kind) || i >= s->sec[SEC_GR_ORDER].count)
		return -ENOENT;
	if (verify_range(s, s->sec[SEC_GR_ORDER].off + 4 * i, s->sec[SEC_GR_ORDER].off + 4 * i + 4,
			 reterr) < 0)
		return -EBADMSG;
	r = gr_parse(s, snap_le32(s->sec[SEC_GR_ORDER].p + 4 * i), false, &v, reterr);
	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

size_t tu_snapshot_blob_count(const struct tu_snapshot *s)
{
	if (s->bov)
		return s->bov->count;
	return !kind_is_accounts(s->kind) ? s->sec[SEC_BLOB_INDEX].count : 0;
}

/* The i-th blob, its index entry and data checked (LAZY: bounds too, and checksummed). */
static int blob_entry(const struct tu_snapshot *s, size_t i, uint32_t *ret_type,
		      const void **ret_data, size_t *ret_size, struct tu_err *reterr)
{
	const struct section *ix = &s->sec[SEC_BLOB_INDEX], *d = &s->sec[SEC_BLOB_DATA];
	const unsigned char *e;
	uint64_t off, len, end;

	if (i >= ix->count)
		return bad(reterr, "blob %zu of %u", i, ix->count);
	e = ix->p + BLOB_ENTRY * i;
	if (verify_range(s, ix->off + BLOB_ENTRY * i, ix->off + BLOB_ENTRY * (i + 1), reterr) < 0)
		return -EBADMSG;
	off = snap_le64(e + 8);
	len = snap_le64(e + 16);
	if (snap_le32(e + 4) != 0 || __builtin_add_overflow(off, len, &end) || end > d->len)
		return bad(reterr, "blob %zu (index offset %zu) outside the data section", i,
			   ix->off + BLOB_ENTRY * i);
	if (verify_range(s, d->off + off, d->off + end, reterr) < 0)
		return -EBADMSG;
	*ret_type = snap_le32(e);
	*ret_data = d->p + off;
	*ret_size = (size_t) len;
	return 0;
}

static const struct blob_seg *seg_of(const struct blob_overlay *o, size_t i)
{
	size_t lo = 0, hi = o->n_segs;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->segs[mid].start <= i)
			lo = mid;
		else
			hi = mid;
	}
	return &o->segs[lo];
}

/* The j-th base blob the delta does not hide. */
static size_t blob_unhidden_at(const struct blob_overlay *o, size_t j)
{
	size_t lo = 0, hi = o->n_hidden;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->hidden[mid] - mid <= j)
			lo = mid + 1;
		else
			hi = mid;
	}
	return j + lo;
}

/* Through a state delta: type by type, the base's blobs it does not hide, then its own. */
int tu_snapshot_blob_at(const struct tu_snapshot *s, size_t i, uint32_t *ret_type,
			const void **ret_data, size_t *ret_size)
{
	if (i >= tu_snapshot_blob_count(s))
		return -ENOENT;
	if (s->bov) {
		const struct blob_seg *g = seg_of(s->bov, i);
		size_t k = i - g->start;

		if (k >= g->nbase)
			return blob_entry(s->delta, g->dfirst + (k - g->nbase), ret_type, ret_data,
					  ret_size, NULL);
		return blob_entry(s, blob_unhidden_at(s->bov, g->unhidden_before + k), ret_type,
				  ret_data, ret_size, NULL);
	}
	return blob_entry(s, i, ret_type, ret_data, ret_size, NULL);
}

static int one_find_blob(const struct tu_snapshot *s, uint32_t type, const char *key,
			 size_t key_len, const void **ret_data, size_t *ret_size, uint32_t *ret_blob,
			 struct tu_err *reterr)
{
	const struct section *k = &s->sec[SEC_BLOB_KEYS];
	uint32_t found_blob = 0;
	const void *found = NULL;
	size_t found_size = 0;
	bool have = false;
	uint32_t h;

	if (s->kind == TU_SNAPSHOT_KIND_ACCOUNTS || !k->present)
		return -EOPNOTSUPP;
	if (key_len == 0 || key_len > TU_SNAPSHOT_MAX_KEY || !key)
		return -ENOENT;
	h = snap_hash_key(type, key, key_len);
	for (uint32_t i = 0; i < k->count; i++) {
		size_t at = s->key_slots_off + KEYS_SLOT * (size_t) snap_key_slot(h, k->count, i);
		const unsigned char *slot = s->base + at;
		uint32_t blob, koff, t;
		const void *data;
		size_t size;
		int r;

		if (verify_range(s, at, at + KEYS_SLOT, reterr) < 0)
			return -EBADMSG;
		blob = snap_le32(slot + 4);
		if (blob == SNAP_EMPTY_SLOT)
			break;
		if (snap_le32(slot) != h || snap_le32(slot + 12) != key_len)
			continue;
		koff = snap_le32(slot + 8);
		if (koff > s->key_bytes || s->key_bytes - koff < key_len)
			return bad(reterr, "blob key index slot at offset %zu: key outside its section",
				   at);
		if (verify_range(s, s->key_bytes_off + koff, s->key_bytes_off + koff + key_len,
				 reterr) < 0)
			return -EBADMSG;
		if (memcmp(s->base + s->key_bytes_off + koff, key, key_len) != 0)
			continue;
		r = blob_entry(s, blob, &t, &data, &size, reterr);
		if (r < 0)
			return r;
		if (t != type)
			continue; /* another type's blob with a colliding hash */
		if (have)
			return -ENOTUNIQ;
		have = true;
		found = data;
		found_size = size;
		found_blob = blob;
	}
	if (!have)
		return -ENOENT;
	*ret_data = found;
	*ret_size = found_size;
	if (ret_blob)
		*ret_blob = found_blob;
	return 0;
}

/* Through a state delta: its blobs first, then the base's unless (type, key) is hidden. */
int tu_snapshot_find_blob(const struct tu_snapshot *s, uint32_t type, const char *key,
			  size_t key_len, const void **ret_data, size_t *ret_size,
			  struct tu_err *reterr)
{
	int r;

	if (s->bov) {
		if (key_len == 0 || key_len > TU_SNAPSHOT_MAX_KEY || !key)
			return -ENOENT;
		r = one_find_blob(s->delta, type, key, key_len, ret_data, ret_size, NULL, reterr);
		if (r != -ENOENT && r != -EOPNOTSUPP)
			return r;
		r = hidden_has(s->delta, SEC_HIDE_BLOB, type, key, key_len, reterr);
		if (r != 0)
			return r < 0 ? r : -ENOENT;
	}
	return one_find_blob(s, type, key, key_len, ret_data, ret_size, NULL, reterr);
}

int tu_snapshot_blob_type_range(const struct tu_snapshot *s, uint32_t type, size_t *ret_first,
				size_t *ret_count, struct tu_err *reterr)
{
	const struct section *k = &s->sec[SEC_BLOB_KEYS];

	if (s->bov) {
		for (size_t i = 0; i < s->bov->n_segs; i++)
			if (s->bov->segs[i].type == type) {
				*ret_first = s->bov->segs[i].start;
				*ret_count = s->bov->segs[i].nbase + s->bov->segs[i].ndelta;
				return 0;
			}
		*ret_first = 0;
		*ret_count = 0;
		return 0;
	}

	(void) reterr; /* the range table was checked (and checksummed) at open */
	if (s->kind == TU_SNAPSHOT_KIND_ACCOUNTS || !k->present)
		return -EOPNOTSUPP;
	for (uint32_t i = 0; i < s->key_ranges; i++) {
		const unsigned char *e = k->p + KEYS_HEAD + KEYS_RANGE * (size_t) i;

		if (snap_le32(e) == type) {
			*ret_first = snap_le32(e + 8);
			*ret_count = snap_le32(e + 12);
			return 0;
		}
	}
	*ret_first = 0;
	*ret_count = 0;
	return 0;
}

/* ---- reading through a delta ------------------------------------------ */

/*
 * Lookups: the delta's records first; then the base, unless the name of the
 * record found there is hidden by the delta (a uid whose base owner changed
 * or left, and that no delta record has, is not found).
 */
int tu_snapshot_find_login(const struct tu_snapshot *s, const char *name, struct tu_pw_view *ret,
			   struct tu_err *reterr)
{
	int r;

	if (s->delta && name) {
		r = one_find_login(s->delta, name, ret, NULL, reterr);
		if (r != -ENOENT)
			return r;
		r = hidden_has(s->delta, SEC_HIDE_PW, 0, name, strlen(name), reterr);
		if (r != 0)
			return r < 0 ? r : -ENOENT;
	}
	return one_find_login(s, name, ret, NULL, reterr);
}

int tu_snapshot_find_uid(const struct tu_snapshot *s, uid_t uid, struct tu_pw_view *ret,
			 struct tu_err *reterr)
{
	struct tu_pw_view v;
	int r;

	if (!s->delta)
		return one_find_uid(s, uid, ret, reterr);
	r = one_find_uid(s->delta, uid, ret, reterr);
	if (r != -ENOENT)
		return r;
	r = one_find_uid(s, uid, &v, reterr);
	if (r < 0)
		return r;
	r = hidden_has(s->delta, SEC_HIDE_PW, 0, v.name, v.name_len, reterr);
	if (r != 0)
		return r < 0 ? r : -ENOENT;
	*ret = v;
	return 0;
}

int tu_snapshot_find_group(const struct tu_snapshot *s, const char *name, struct tu_gr_view *ret,
			   struct tu_err *reterr)
{
	int r;

	if (s->delta && name) {
		r = one_find_group(s->delta, name, ret, NULL, reterr);
		if (r != -ENOENT)
			return r;
		r = hidden_has(s->delta, SEC_HIDE_GR, 0, name, strlen(name), reterr);
		if (r != 0)
			return r < 0 ? r : -ENOENT;
	}
	return one_find_group(s, name, ret, NULL, reterr);
}

int tu_snapshot_find_gid(const struct tu_snapshot *s, gid_t gid, struct tu_gr_view *ret,
			 struct tu_err *reterr)
{
	struct tu_gr_view v;
	int r;

	if (!s->delta)
		return one_find_gid(s, gid, ret, reterr);
	r = one_find_gid(s->delta, gid, ret, reterr);
	if (r != -ENOENT)
		return r;
	r = one_find_gid(s, gid, &v, reterr);
	if (r < 0)
		return r;
	r = hidden_has(s->delta, SEC_HIDE_GR, 0, v.name, v.name_len, reterr);
	if (r != 0)
		return r < 0 ? r : -ENOENT;
	*ret = v;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

	return x < y ? -1 : x > y;
}

/*
 * The base ORDER positions the delta hides (which 0: passwd, 1: group),
 * ascending, computed once per open snapshot (the first enumeration) and
 * published with a compare-and-swap, so concurrent readers agree.  Every
 * hidden name must be a base record: the writer hides only what the base has.
 */
static int hidden_positions(const struct tu_snapshot *s, int which, const struct hidden_pos **ret,
			    struct tu_err *reterr)
{
	struct tu_snapshot *w = (struct tu_snapshot *) s; /* only the atomic cache is written */
	const struct tu_snapshot *d = s->delta;
	int hsec = which ? SEC_HIDE_GR : SEC_HIDE_PW, osec = which ? SEC_GR_ORDER : SEC_PW_ORDER;
	const struct section *h = &d->sec[hsec], *o = &s->sec[osec];
	struct hidden_pos *hp = atomic_load_explicit(&w->hpos[which], memory_order_acquire),
			  *expect = NULL;
	size_t off = 8 * (size_t) slots_for(h->count);
	int r;

	if (hp) {
		*ret = hp;
		return 0;
	}
	if (verify_range(s, o->off, o->off + o->len, reterr) < 0)
		return -EBADMSG;
	hp = malloc(sizeof(*hp) + sizeof(uint32_t) * (h->count ? h->count : 1));
	if (!hp)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < h->count; i++) {
		const unsigned char *key;
		size_t len, next, lo = 0, hi = o->count;
		uint32_t t, roff = 0;

		r = hidden_entry(d, hsec, off, &t, &key, &len, &next, reterr);
		if (r >= 0) {
			if (which == 0) {
				struct tu_pw_view v;

				r = one_find_login(s, (const char *) key, &v, &roff, reterr);
			} else {
				struct tu_gr_view v;

				r = one_find_group(s, (const char *) key, &v, &roff, reterr);
			}
		}
		if (r == -ENOENT)
			r = bad(reterr, "delta hides '%.64s', which its base does not have",
				(const char *) key);
		if (r < 0) {
			free(hp);
			return r;
		}
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (snap_le32(o->p + 4 * mid) < roff)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == o->count || snap_le32(o->p + 4 * lo) != roff) {
			free(hp);
			return bad(reterr, "base record at offset %u is not in its order index", roff);
		}
		hp->pos[i] = (uint32_t) lo;
		off = next;
	}
	hp->n = h->count;
	qsort(hp->pos, hp->n, sizeof(hp->pos[0]), cmp_u32);
	for (size_t i = 1; i < hp->n; i++)
		if (hp->pos[i] == hp->pos[i - 1]) {
			free(hp);
			return bad(reterr, "delta hides one base record twice");
		}
	if (!atomic_compare_exchange_strong(&w->hpos[which], &expect, hp)) {
		free(hp);
		hp = expect;
	}
	*ret = hp;
	return 0;
}

/* The base position of the i-th record the delta does not hide (i < base - hidden). */
static size_t unhidden_at(const struct hidden_pos *hp, size_t i)
{
	size_t lo = 0, hi = hp->n;

	/* Hidden positions p[k] with p[k] - k <= i come before it. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (hp->pos[mid] - mid <= i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return i + lo;
}

/* Enumeration with a delta: the base's records it does not hide (name order), then its own. */
int tu_snapshot_passwd_at(const struct tu_snapshot *s, size_t i, struct tu_pw_view *ret,
			  struct tu_err *reterr)
{
	const struct hidden_pos *hp;
	size_t nb;
	int r;

	if (!s->delta)
		return one_passwd_at(s, i, ret, reterr);
	nb = one_count(s, SEC_PW_ORDER) - s->delta->sec[SEC_HIDE_PW].count;
	if (i >= nb)
		return one_passwd_at(s->delta, i - nb, ret, reterr);
	r = hidden_positions(s, 0, &hp, reterr);
	if (r < 0)
		return r;
	return one_passwd_at(s, unhidden_at(hp, i), ret, reterr);
}

int tu_snapshot_group_at(const struct tu_snapshot *s, size_t i, struct tu_gr_view *ret,
			 struct tu_err *reterr)
{
	const struct hidden_pos *hp;
	size_t nb;
	int r;

	if (!s->delta)
		return one_group_at(s, i, ret, reterr);
	nb = one_count(s, SEC_GR_ORDER) - s->delta->sec[SEC_HIDE_GR].count;
	if (i >= nb)
		return one_group_at(s->delta, i - nb, ret, reterr);
	r = hidden_positions(s, 1, &hp, reterr);
	if (r < 0)
		return r;
	return one_group_at(s, unhidden_at(hp, i), ret, reterr);
}

/* The delta kind that goes with a base kind, 0 for none. */
static uint32_t delta_kind_of(uint32_t kind)
{
	return kind == TU_SNAPSHOT_KIND_ACCOUNTS ? TU_SNAPSHOT_KIND_ACCOUNTS_DELTA
	       : kind == TU_SNAPSHOT_KIND_STATE  ? TU_SNAPSHOT_KIND_STATE_DELTA
						 : 0;
}

/* 1: d applies to base; 0: stale; -EAGAIN: d names a newer base; -EBADMSG. */
static int delta_applies(const struct tu_snapshot *base, const struct tu_snapshot *d,
			 struct tu_err *reterr)
{
	const unsigned char *info = d->sec[SEC_DELTA].p;

	if (d->generation > base->generation)
		return tu_err_set(reterr, -EAGAIN,
				  "delta for base generation %llu, newer than the base's %llu",
				  (unsigned long long) d->generation,
				  (unsigned long long) base->generation);
	if (d->generation < base->generation || snap_le64(info) != base->size ||
	    snap_le32(info + 8) != snap_le32(base->base + H_HEADER_CRC))
		return 0;
	if (kind_is_accounts(base->kind) &&
	    (d->sec[SEC_HIDE_PW].count > base->sec[SEC_PW_ORDER].count ||
	     d->sec[SEC_HIDE_GR].count > base->sec[SEC_GR_ORDER].count))
		return bad(reterr, "delta hides more records than its base has");
	if (!kind_is_accounts(base->kind) &&
	    d->sec[SEC_HIDE_BLOB].count > base->sec[SEC_BLOB_INDEX].count)
		return bad(reterr, "delta hides more blobs than its base has");
	return 1;
}

int tu_snapshot_attach_delta_buffer(struct tu_snapshot *base, const void *data, size_t size,
				    unsigned flags, struct tu_err *reterr)
{
	struct tu_snapshot *d = NULL;
	uint32_t want;
	int r;

	if (!base || base->delta || kind_is_delta(base->kind))
		return tu_err_set(reterr, -EINVAL, "not a base snapshot without a delta");
	want = delta_kind_of(base->kind);
	if (!want)
		return tu_err_set(reterr, -EBADMSG, "snapshots of kind %u have no delta", base->kind);
	r = tu_snapshot_open_buffer(data, size, want, flags & ~TU_SNAPSHOT_OVERLAY, &d, reterr);
	if (r < 0)
		return r;
	r = delta_applies(base, d, reterr);
	if (r <= 0) {
		tu_snapshot_close(d);
		return r;
	}
	base->delta = d;
	if (!kind_is_accounts(base->kind) && (r = build_blob_overlay(base, reterr)) < 0) {
		base->delta = tu_snapshot_close(d);
		return r;
	}
	return 1;
}

int tu_snapshot_delta_path(const char *base_path, char *buf, size_t size)
{
	/* The file may be a symlink (the default dir's accounts.db): the delta is next to its
	 * target, named after it. */
	_cleanup_free_ char *real = base_path ? realpath(base_path, NULL) : NULL;
	const char *slash, *name;
	size_t nlen;

	if (!base_path)
		return -EINVAL;
	if (!real)
		return -errno;
	slash = strrchr(real, '/');
	if (!slash)
		return -EINVAL;
	name = slash + 1;
	nlen = strlen(name);
	if (nlen > 3 && strcmp(name + nlen - 3, ".db") == 0)
		nlen -= 3;
	if ((size_t) (name - real) + nlen + sizeof(".delta") > size)
		return -ENAMETOOLONG;
	memcpy(buf, real, (size_t) (name - real) + nlen);
	memcpy(buf + (name - real) + nlen, ".delta", sizeof(".delta"));
	return 0;
}

/* ---- writing a delta -------------------------------------------------- */

#define DELTA_MIN_BYTES_LIMIT (1024u * 1024u) /* a delta may always be this big */

size_t tu_snapshot_delta_max_changes(size_t n_records)
{
	return n_records / 16 > 256 ? n_records / 16 : 256;
}

uint64_t tu_snapshot_next_generation(const char *base_path)
{
	struct tu_snapshot *s = NULL;
	char dpath[PATH_MAX];
	uint64_t g = 0;

	/* Headers only (LAZY): the generation is in the checksummed header. */
	if (open_one(base_path, 0, TU_SNAPSHOT_LAZY, false, &s, NULL) >= 0) {
		g = s->generation;
		s = tu_snapshot_close(s);
	}
	if (tu_snapshot_delta_path(base_path, dpath, sizeof(dpath)) >= 0 &&
	    open_one(dpath, 0, TU_SNAPSHOT_LAZY, true, &s, NULL) >= 0) {
		if (kind_is_delta(s->kind) && s->generation > g)
			g = s->generation;
		s = tu_snapshot_close(s);
	}
	return g + 1;
}

/* A growing list of names (borrowed) for a hidden set. */
struct name_list {
	const char **v;
	size_t n, cap;
};

static int name_list_add(struct name_list *l, const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		const char **v = reallocarray(l->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v, l->cap = cap;
	}
	l->v[l->n++] = name;
	return 0;
}

/* A hidden-set section for names already in ascending bytewise order. */
static int build_hidden(const struct name_list *l, unsigned char **ret, size_t *ret_len)
{
	size_t slots = slots_for(l->n), len = 8 * slots, off;
	unsigned char *b;

	for (size_t i = 0; i < l->n; i++)
		len += align_up(HIDE_FIXED + strlen(l->v[i]) + 1, 4);
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	b = calloc(1, len);
	if (!b)
		return -ENOMEM;
	memset(b, 0xff, 8 * slots);
	off = 8 * slots;
	for (size_t i = 0; i < l->n; i++) {
		size_t nl = strlen(l->v[i]);
		uint32_t h = snap_hash_key(0, l->v[i], nl);

		snap_put32(b + off, 0);
		snap_put32(b + off + 4, (uint32_t) nl);
		memcpy(b + off + HIDE_FIXED, l->v[i], nl);
		(void) slot_insert(b, (uint32_t) slots, h, h, (uint32_t) off, false);
		off += align_up(HIDE_FIXED + nl + 1, 4);
	}
	*ret = b;
	*ret_len = len;
	return 0;
}

/* Whether input record r is exactly base record v (what the builder would write for r). */
static bool pw_same(const struct tu_pw_rec *r, const struct tu_pw_view *v)
{
	if (r->uid != v->uid || r->gid != v->gid || r->n_gids != v->n_gids ||
	    strcmp(r->gecos, v->gecos) || strcmp(r->dir, v->dir) || strcmp(r->shell, v->shell))
		return false;
	for (size_t i = 0; i < r->n_gids; i++)
		if (r->gids[i] != snap_le32(v->gids_raw + 4 * i))
			return false;
	return true;
}

static bool gr_same(const struct tu_gr_rec *r, const struct tu_gr_view *v)
{
	size_t cur = 0;

	if (r->gid != v->gid || r->n_members != v->n_members)
		return false;
	/* The view's members are back to back, each NUL-terminated (checked by gr_parse). */
	for (size_t i = 0; i < r->n_members; i++) {
		size_t len = strlen(r->members[i]) + 1;

		if (len > v->members_size - cur || memcmp(v->members + cur, r->members[i], len))
			return false;
		cur += len;
	}
	return cur == v->members_size;
}

int tu_snapshot_build_accounts_delta(const struct tu_snapshot *base, const struct tu_pw_rec *pw,
				     size_t n_pw, const struct tu_gr_rec *gr, size_t n_gr,
				     const struct tu_snapshot_meta *meta, int64_t now_usec,
				     size_t max_changes, void **ret_data, size_t *ret_size,
				     struct tu_snapshot_delta_stats *ret_stats,
				     struct tu_err *reterr)
{
	_cleanup_free_ const struct tu_pw_rec **spw = NULL;
	_cleanup_free_ const struct tu_gr_rec **sgr = NULL;
	_cleanup_free_ unsigned char *hide_pw = NULL, *hide_gr = NULL;
	_cleanup_free_ struct tu_pw_rec *cpw = NULL;
	_cleanup_free_ struct tu_gr_rec *cgr = NULL;
	_cleanup_free_ void *out = NULL;
	struct name_list hpw = {0}, hgr = {0};
	struct tu_snapshot_delta_stats st = {0};
	struct tu_snapshot *d = NULL;
	unsigned char info[DELTA_SIZE] = {0};
	size_t out_size = 0, hpw_len = 0, hgr_len = 0, n_cpw = 0, n_cgr = 0, nb, i, j;
	int r = 0;

	if (!base || base->kind != TU_SNAPSHOT_KIND_ACCOUNTS || base->delta)
		return tu_err_set(reterr, -EINVAL, "the base of a delta must be a plain accounts snapshot");
	if (n_pw > TU_SNAPSHOT_MAX_RECORDS || n_gr > TU_SNAPSHOT_MAX_RECORDS)
		return tu_err_set(reterr, -EMSGSIZE,
				  "too many records (%zu passwd, %zu group; limit %u)", n_pw, n_gr,
				  TU_SNAPSHOT_MAX_RECORDS);
	if ((n_pw && !pw) || (n_gr && !gr))
		return tu_err_set(reterr, -EINVAL, "NULL record array");
	st.base_generation = base->generation;
	st.max_changes = max_changes ? max_changes : tu_snapshot_delta_max_changes(n_pw + n_gr);
	spw = calloc(n_pw ? n_pw : 1, sizeof(*spw));
	sgr = calloc(n_gr ? n_gr : 1, sizeof(*sgr));
	cpw = calloc(n_pw ? n_pw : 1, sizeof(*cpw));
	cgr = calloc(n_gr ? n_gr : 1, sizeof(*cgr));
	if (!spw || !sgr || !cpw || !cgr)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	for (i = 0; i < n_pw; i++) {
		if (!pw[i].name || !pw[i].gecos || !pw[i].dir || !pw[i].shell ||
		    (pw[i].n_gids && !pw[i].gids))
			return tu_err_set(reterr, -EINVAL, "passwd record %zu: NULL field", i);
		spw[i] = &pw[i];
	}
	for (i = 0; i < n_gr; i++) {
		if (!gr[i].name || (gr[i].n_members && !gr[i].members))
			return tu_err_set(reterr, -EINVAL, "group record %zu: NULL field", i);
		for (size_t m = 0; m < gr[i].n_members; m++)
			if (!gr[i].members[m])
				return tu_err_set(reterr, -EINVAL, "group '%.64s': NULL member",
						  gr[i].name);
		sgr[i] = &gr[i];
	}
	sort_pw(spw, n_pw);
	sort_gr(sgr, n_gr);

	/*
	 * Merge-join in name order with the mapped base: a record equal to the base's is
	 * unchanged (it was checked when the base was written); the others are written to the
	 * delta (which checks them as a full write would), and the base's name is hidden.
	 */
	nb = one_count(base, SEC_PW_ORDER);
	for (i = 0, j = 0; r >= 0 && (i < nb || j < n_pw);) {
		struct tu_pw_view bv = {0};
		int c;

		if (i < nb && (r = one_passwd_at(base, i, &bv, reterr)) < 0)
			break;
		if (j > 0 && j < n_pw && strcmp(spw[j - 1]->name, spw[j]->name) == 0) {
			r = tu_err_set(reterr, -EINVAL, "duplicate login '%s'", spw[j]->name);
			break;
		}
		c = i >= nb ? 1 : j >= n_pw ? -1 : strcmp(bv.name, spw[j]->name);
		if (c == 0 && pw_same(spw[j], &bv)) {
			i++, j++;
			continue;
		}
		if (c <= 0) {
			r = name_list_add(&hpw, bv.name);
			i++;
		}
		if (r >= 0 && c >= 0)
			cpw[n_cpw++] = *spw[j++];
	}
	nb = one_count(base, SEC_GR_ORDER);
	for (i = 0, j = 0; r >= 0 && (i < nb || j < n_gr);) {
		struct tu_gr_view bv = {0};
		int c;

		if (i < nb && (r = one_group_at(base, i, &bv, reterr)) < 0)
			break;
		if (j > 0 && j < n_gr && strcmp(sgr[j - 1]->name, sgr[j]->name) == 0) {
			r = tu_err_set(reterr, -EINVAL, "duplicate group '%s'", sgr[j]->name);
			break;
		}
		c = i >= nb ? 1 : j >= n_gr ? -1 : strcmp(bv.name, sgr[j]->name);
		if (c == 0 && gr_same(sgr[j], &bv)) {
			i++, j++;
			continue;
		}
		if (c <= 0) {
			r = name_list_add(&hgr, bv.name);
			i++;
		}
		if (r >= 0 && c >= 0)
			cgr[n_cgr++] = *sgr[j++];
	}
	if (r == -ENOMEM)
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
	if (r < 0)
		goto out;
	/* Both name lists came out in order: a base whose names are not is not ours. */
	for (i = 1; i < hpw.n; i++)
		if (strcmp(hpw.v[i - 1], hpw.v[i]) >= 0) {
			r = bad(reterr, "base passwd records out of order ('%.64s')", hpw.v[i]);
			goto out;
		}
	for (i = 1; i < hgr.n; i++)
		if (strcmp(hgr.v[i - 1], hgr.v[i]) >= 0) {
			r = bad(reterr, "base group records out of order ('%.64s')", hgr.v[i]);
			goto out;
		}

	st.n_records = n_cpw + n_cgr;
	st.n_hidden = hpw.n + hgr.n;
	if (st.n_records + st.n_hidden > st.max_changes) {
		r = tu_err_set(reterr, -E2BIG, "%zu changed records and %zu hidden names, over the delta limit of %zu",
			       st.n_records, st.n_hidden, st.max_changes);
		goto out;
	}

	r = build_hidden(&hpw, &hide_pw, &hpw_len);
	if (r >= 0)
		r = build_hidden(&hgr, &hide_gr, &hgr_len);
	if (r < 0) {
		r = tu_err_set(reterr, r, r == -ENOMEM ? "out of memory" : "hidden set too large");
		goto out;
	}
	snap_put64(info, base->size);
	snap_put32(info + 8, snap_le32(base->base + H_HEADER_CRC));
	{
		const struct extra_sec extra[] = {
		    {.type = SEC_DELTA, .count = 0, .data = info, .len = DELTA_SIZE},
		    {.type = SEC_HIDE_PW, .count = (uint32_t) hpw.n, .data = hide_pw, .len = hpw_len},
		    {.type = SEC_HIDE_GR, .count = (uint32_t) hgr.n, .data = hide_gr, .len = hgr_len},
		};

		/* Checks the changed records as a full write checks every record. */
		r = build_accounts(TU_SNAPSHOT_KIND_ACCOUNTS_DELTA, cpw, n_cpw, cgr, n_cgr, meta,
				   extra, ELEMENTSOF(extra), base->generation, now_usec, &out,
				   &out_size, reterr);
	}
	if (r < 0)
		goto out;
	/* A written id must not be one an unchanged base record keeps (the full writer's
	 * duplicate check, for the records it did not see). */
	r = tu_snapshot_open_buffer(out, out_size, TU_SNAPSHOT_KIND_ACCOUNTS_DELTA, 0, &d, reterr);
	for (i = 0; r >= 0 && i < n_cpw; i++) {
		struct tu_pw_view v;

		r = one_find_uid(base, cpw[i].uid, &v, reterr);
		if (r == 0 && hidden_has(d, SEC_HIDE_PW, 0, v.name, v.name_len, NULL) == 0)
			r = tu_err_set(reterr, -EINVAL, "duplicate uid %u ('%s')",
				       (unsigned) cpw[i].uid, cpw[i].name);
		else if (r == -ENOENT || r == 0)
			r = 0;
	}
	for (i = 0; r >= 0 && i < n_cgr; i++) {
		struct tu_gr_view v;

		r = one_find_gid(base, cgr[i].gid, &v, reterr);
		if (r == 0 && hidden_has(d, SEC_HIDE_GR, 0, v.name, v.name_len, NULL) == 0)
			r = tu_err_set(reterr, -EINVAL, "duplicate gid %u ('%s')",
				       (unsigned) cgr[i].gid, cgr[i].name);
		else if (r == -ENOENT || r == 0)
			r = 0;
	}
	if (r < 0)
		goto out;
	/* Big records (a group of thousands of members) can make a few changes heavy. */
	if (out_size > base->size / 2 && out_size > DELTA_MIN_BYTES_LIMIT) {
		r = tu_err_set(reterr, -E2BIG, "a delta of %zu bytes is not worth it over a base of %zu",
			       out_size, base->size);
		goto out;
	}
	st.bytes = out_size;
	*ret_data = TAKE_PTR(out);
	*ret_size = out_size;
	r = 0;
out:
	if (ret_stats)
		*ret_stats = st;
	free(hpw.v);
	free(hgr.v);
	tu_snapshot_close(d);
	return r;
}

int tu_snapshot_write_accounts_delta(const char *base_path, const struct tu_pw_rec *pw,
				     size_t n_pw, const struct tu_gr_rec *gr, size_t n_gr,
				     const struct tu_snapshot_meta *meta, int64_t now_usec,
				     size_t max_changes, struct tu_snapshot_delta_stats *ret_stats,
				     struct tu_err *reterr)
{
	_cleanup_free_ void *data = NULL;
	struct tu_snapshot_delta_stats st = {0};
	struct tu_snapshot *base = NULL;
	char dpath[PATH_MAX];
	size_t size = 0;
	int r;

	/* LAZY: the merge-join reads (and so checksums) the records; the slot tables are only
	 * probed for the few ids written. */
	r = open_one(base_path, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_LAZY, false, &base, reterr);
	if (r >= 0) {
		r = tu_snapshot_delta_path(base_path, dpath, sizeof(dpath));
		if (r < 0)
			r = tu_err_set(reterr, r, "%s: the delta's path: %s", base_path, strerror(-r));
	}
	if (r >= 0)
		r = tu_snapshot_build_accounts_delta(base, pw, n_pw, gr, n_gr, meta, now_usec,
						     max_changes, &data, &size, &st, reterr);
	if (r >= 0) {
		r = tu_snapshot_replace_file(dpath, 0644, data, size, reterr);
		if (r < 0)
			st.bytes = 0;
	}
	if (ret_stats)
		*ret_stats = st;
	tu_snapshot_close(base);
	return r;
}

/* ---- state deltas: reading ---------------------------------------------- */

/* Bit b set: base blob b has a key (a slot of the key index). */
static int keyed_blobs(const struct tu_snapshot *s, uint64_t **ret, struct tu_err *reterr)
{
	const struct section *k = &s->sec[SEC_BLOB_KEYS];
	size_t nb = s->sec[SEC_BLOB_INDEX].count;
	uint64_t *bits;

	if (verify_range(s, s->key_slots_off, s->key_slots_off + KEYS_SLOT * (size_t) k->count,
			 reterr) < 0)
		return -EBADMSG;
	bits = calloc(nb / 64 + 1, sizeof(*bits));
	if (!bits)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < k->count; i++) {
		uint32_t b = snap_le32(s->base + s->key_slots_off + KEYS_SLOT * (size_t) i + 4);

		if (b != SNAP_EMPTY_SLOT && b < nb)
			bits[b / 64] |= UINT64_C(1) << (b % 64);
	}
	*ret = bits;
	return 0;
}

static size_t count_below(const uint32_t *v, size_t n, size_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The merged order of base + state delta, computed when the delta is attached (the counts
 * cannot fail later): the base blobs it hides (by (type, key) through the base's key index,
 * and for a key of length 0 every blob of the type without a key), then per type (increasing,
 * as the base's key index ranges are) the base's remaining blobs and the delta's.
 */
static int build_blob_overlay(struct tu_snapshot *s, struct tu_err *reterr)
{
	const struct tu_snapshot *d = s->delta;
	const struct section *h = &d->sec[SEC_HIDE_BLOB], *k = &s->sec[SEC_BLOB_KEYS];
	size_t nb = s->sec[SEC_BLOB_INDEX].count, nd = d->sec[SEC_BLOB_INDEX].count;
	size_t off = 8 * (size_t) slots_for(h->count), nbr, ndr = 0, total = 0;
	_cleanup_free_ uint64_t *keyed = NULL;
	_cleanup_free_ uint32_t *dtypes = NULL;
	_cleanup_free_ size_t *dfirst = NULL, *dcount = NULL;
	struct blob_overlay *o;
	int r = 0;

	if (!k->present)
		return bad(reterr, "a state delta over a base without a key index");
	o = calloc(1, sizeof(*o));
	if (!o || !(o->hidden = malloc(sizeof(uint32_t) * (nb ? nb : 1))) ||
	    !(dtypes = malloc(sizeof(uint32_t) * (nd ? nd : 1))) ||
	    !(dfirst = malloc(sizeof(size_t) * (nd ? nd : 1))) ||
	    !(dcount = malloc(sizeof(size_t) * (nd ? nd : 1)))) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < h->count; i++) {
		const unsigned char *key;
		size_t len, next, first, count;
		uint32_t t, b;
		const void *data;
		size_t size;

		r = hidden_entry(d, SEC_HIDE_BLOB, off, &t, &key, &len, &next, reterr);
		if (r < 0)
			goto fail;
		off = next;
		if (len > 0) {
			r = one_find_blob(s, t, (const char *) key, len, &data, &size, &b, reterr);
			if (r == -ENOENT || r == -ENOTUNIQ)
				r = bad(reterr, "delta hides blob type %u key '%.64s', which its base %s",
					t, (const char *) key,
					r == -ENOENT ? "does not have" : "has more than once");
			if (r < 0)
				goto fail;
			if (o->n_hidden == nb) {
				r = bad(reterr, "delta hides more blobs than its base has");
				goto fail;
			}
			o->hidden[o->n_hidden++] = b;
			continue;
		}
		if (!keyed && (r = keyed_blobs(s, &keyed, reterr)) < 0)
			goto fail;
		r = tu_snapshot_blob_type_range(s, t, &first, &count, reterr);
		if (r < 0)
			goto fail;
		for (size_t x = first; x < first + count; x++)
			if (!(keyed[x / 64] & (UINT64_C(1) << (x % 64)))) {
				if (o->n_hidden == nb) {
					r = bad(reterr, "delta hides more blobs than its base has");
					goto fail;
				}
				o->hidden[o->n_hidden++] = (uint32_t) x;
			}
	}
	qsort(o->hidden, o->n_hidden, sizeof(*o->hidden), cmp_u32);
	for (size_t i = 1; i < o->n_hidden; i++)
		if (o->hidden[i] == o->hidden[i - 1]) {
			r = bad(reterr, "delta hides base blob %u twice", o->hidden[i]);
			goto fail;
		}
	/* The delta's blobs, grouped by type in increasing order. */
	for (size_t i = 0; i < nd; i++) {
		uint32_t t;
		const void *data;
		size_t size;

		r = blob_entry(d, i, &t, &data, &size, reterr);
		if (r < 0)
			goto fail;
		if (ndr > 0 && t == dtypes[ndr - 1]) {
			dcount[ndr - 1]++;
			continue;
		}
		if (ndr > 0 && t < dtypes[ndr - 1]) {
			r = bad(reterr, "delta blob %zu: types not in increasing order", i);
			goto fail;
		}
		dtypes[ndr] = t, dfirst[ndr] = i, dcount[ndr] = 1;
		ndr++;
	}
	nbr = s->key_ranges;
	o->segs = calloc(nbr + ndr + 1, sizeof(*o->segs));
	if (!o->segs) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0, j = 0; i < nbr || j < ndr;) {
		const unsigned char *e = i < nbr ? k->p + KEYS_HEAD + KEYS_RANGE * i : NULL;
		uint32_t bt = e ? snap_le32(e) : 0;
		struct blob_seg *g = &o->segs[o->n_segs++];
		size_t first = 0, count = 0, below;

		if (e && (j >= ndr || bt <= dtypes[j])) {
			g->type = bt;
			first = snap_le32(e + 8), count = snap_le32(e + 12);
			i++;
		} else
			g->type = dtypes[j];
		if (j < ndr && dtypes[j] == g->type) {
			g->dfirst = dfirst[j], g->ndelta = dcount[j];
			j++;
		}
		below = count_below(o->hidden, o->n_hidden, first);
		g->nbase = count - (count_below(o->hidden, o->n_hidden, first + count) - below);
		g->unhidden_before = first - below;
		g->start = total;
		total += g->nbase + g->ndelta;
	}
	o->count = total;
	s->bov = o;
	return 0;
fail:
	if (o) {
		free(o->hidden);
		free(o->segs);
		free(o);
	}
	return r;
}

/* ---- state deltas: writing ---------------------------------------------- */

/* A blob's identity for the delta: (type, key); key_len 0 = one of its type's keyless blobs. */
struct blob_id {
	uint32_t type;
	const unsigned char *key;
	size_t key_len;
	const void *data;
	size_t size;
	size_t idx; /* base blob index, or input position */
};

static int cmp_blob_id(const void *a, const void *b)
{
	const struct blob_id *x = a, *y = b;
	int c = cmp_key(x->type, x->key, x->key_len, y->type, y->key, y->key_len);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx; /* keyless: keep their order */
}

static bool blob_same(const struct blob_id *x, const struct blob_id *y)
{
	return x->size == y->size && (x->size == 0 || memcmp(x->data, y->data, x->size) == 0);
}

/* A hidden-set section for (type, key) entries in cmp_key order. */
static int build_hidden_ids(const struct blob_id *v, size_t n, unsigned char **ret, size_t *ret_len)
{
	size_t slots = slots_for(n), len = 8 * slots, off;
	unsigned char *b;

	for (size_t i = 0; i < n; i++)
		len += align_up(HIDE_FIXED + v[i].key_len + 1, 4);
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	b = calloc(1, len);
	if (!b)
		return -ENOMEM;
	memset(b, 0xff, 8 * slots);
	off = 8 * slots;
	for (size_t i = 0; i < n; i++) {
		uint32_t h = snap_hash_key(v[i].type, v[i].key, v[i].key_len);

		snap_put32(b + off, v[i].type);
		snap_put32(b + off + 4, (uint32_t) v[i].key_len);
		if (v[i].key_len)
			memcpy(b + off + HIDE_FIXED, v[i].key, v[i].key_len);
		(void) slot_insert(b, (uint32_t) slots, h, h, (uint32_t) off, false);
		off += align_up(HIDE_FIXED + v[i].key_len + 1, 4);
	}
	*ret = b;
	*ret_len = len;
	return 0;
}

int tu_snapshot_build_blobs_delta(const struct tu_snapshot *base, const struct tu_blob *blobs,
				  size_t n_blobs, int64_t now_usec, size_t max_changes,
				  void **ret_data, size_t *ret_size,
				  struct tu_snapshot_delta_stats *ret_stats, struct tu_err *reterr)
{
	_cleanup_free_ struct blob_id *bv = NULL, *nv = NULL, *hid = NULL;
	_cleanup_free_ struct tu_blob *out = NULL;
	_cleanup_free_ uint64_t *keyed = NULL;
	_cleanup_free_ unsigned char *hide = NULL;
	_cleanup_free_ void *img = NULL;
	struct tu_snapshot_delta_stats st = {0};
	unsigned char info[DELTA_SIZE] = {0};
	size_t nb, n_hid = 0, n_out = 0, hide_len = 0, img_size = 0, i, j;
	int r = 0;

	if (!base || base->kind != TU_SNAPSHOT_KIND_STATE || base->delta)
		return tu_err_set(reterr, -EINVAL, "the base of a state delta must be a plain state snapshot");
	if (n_blobs > TU_SNAPSHOT_MAX_RECORDS || (n_blobs && !blobs))
		return tu_err_set(reterr, -EINVAL, "bad blob array");
	st.base_generation = base->generation;
	st.max_changes = max_changes ? max_changes : tu_snapshot_delta_max_changes(n_blobs);
	if (!base->sec[SEC_BLOB_KEYS].present) {
		r = tu_err_set(reterr, -E2BIG, "the base has no key index: write it in full");
		goto out;
	}
	nb = base->sec[SEC_BLOB_INDEX].count;
	bv = calloc(nb ? nb : 1, sizeof(*bv));
	nv = calloc(n_blobs ? n_blobs : 1, sizeof(*nv));
	hid = calloc(nb + 1, sizeof(*hid));
	out = calloc(n_blobs ? n_blobs : 1, sizeof(*out));
	if (!bv || !nv || !hid || !out) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	r = keyed_blobs(base, &keyed, reterr);
	if (r < 0)
		goto out;
	for (i = 0; i < nb; i++) {
		r = blob_entry(base, i, &bv[i].type, &bv[i].data, &bv[i].size, reterr);
		if (r < 0)
			goto out;
		bv[i].idx = i;
	}
	/* The base's keys, from its slots (checksummed by keyed_blobs) and key bytes. */
	if (verify_range(base, base->key_bytes_off, base->key_bytes_off + base->key_bytes, reterr) < 0) {
		r = -EBADMSG;
		goto out;
	}
	for (uint32_t k = 0; k < base->sec[SEC_BLOB_KEYS].count; k++) {
		const unsigned char *slot = base->base + base->key_slots_off + KEYS_SLOT * (size_t) k;
		uint32_t b = snap_le32(slot + 4), koff = snap_le32(slot + 8), klen = snap_le32(slot + 12);

		if (b == SNAP_EMPTY_SLOT)
			continue;
		if (b >= nb || klen == 0 || koff > base->key_bytes || base->key_bytes - koff < klen) {
			r = bad(reterr, "base key index slot %u out of range", k);
			goto out;
		}
		bv[b].key = base->base + base->key_bytes_off + koff;
		bv[b].key_len = klen;
	}
	for (i = 0; i < n_blobs; i++) {
		if ((blobs[i].size && !blobs[i].data) || (blobs[i].key_len && !blobs[i].key)) {
			r = tu_err_set(reterr, -EINVAL, "blob %zu: NULL data or key", i);
			goto out;
		}
		nv[i] = (struct blob_id){.type = blobs[i].type,
					 .key = (const unsigned char *) blobs[i].key,
					 .key_len = blobs[i].key_len,
					 .data = blobs[i].data,
					 .size = blobs[i].size,
					 .idx = i};
	}
	qsort(bv, nb, sizeof(*bv), cmp_blob_id);
	qsort(nv, n_blobs, sizeof(*nv), cmp_blob_id);
	/* A key twice (either side): the merge below could not say which one changed. */
	for (i = 1; i < nb; i++)
		if (bv[i].key_len && bv[i].key_len == bv[i - 1].key_len &&
		    cmp_key(bv[i].type, bv[i].key, bv[i].key_len, bv[i - 1].type, bv[i - 1].key,
			    bv[i - 1].key_len) == 0) {
			r = tu_err_set(reterr, -E2BIG, "the base has a key twice: write it in full");
			goto out;
		}
	for (i = 1; i < n_blobs; i++)
		if (nv[i].key_len && cmp_key(nv[i].type, nv[i].key, nv[i].key_len, nv[i - 1].type,
					     nv[i - 1].key, nv[i - 1].key_len) == 0) {
			r = tu_err_set(reterr, -E2BIG, "a key twice: write it in full");
			goto out;
		}
	/* Merge-join on (type, key); the keyless blobs of a type are compared as one list. */
	for (i = 0, j = 0; i < nb || j < n_blobs;) {
		const struct blob_id *x = i < nb ? &bv[i] : NULL, *y = j < n_blobs ? &nv[j] : NULL;
		uint32_t t = x && (!y || x->type <= y->type) ? x->type : y->type;

		if ((x && x->type == t && x->key_len == 0) || (y && y->type == t && y->key_len == 0)) {
			size_t i2 = i, j2 = j;
			bool same = true;

			while (i2 < nb && bv[i2].type == t && bv[i2].key_len == 0)
				i2++;
			while (j2 < n_blobs && nv[j2].type == t && nv[j2].key_len == 0)
				j2++;
			same = i2 - i == j2 - j;
			for (size_t q = 0; same && q < i2 - i; q++)
				same = blob_same(&bv[i + q], &nv[j + q]);
			if (!same) {
				if (i2 > i)
					hid[n_hid++] = (struct blob_id){.type = t};
				for (size_t q = j; q < j2; q++)
					out[n_out++] = blobs[nv[q].idx];
			}
			i = i2, j = j2;
			continue;
		}
		{
			int c = !x ? 1 : !y ? -1 : cmp_key(x->type, x->key, x->key_len, y->type, y->key, y->key_len);

			if (c == 0 && blob_same(x, y)) {
				i++, j++;
				continue;
			}
			if (c <= 0) {
				hid[n_hid++] = *x;
				i++;
			}
			if (c >= 0) {
				out[n_out++] = blobs[y->idx];
				j++;
			}
		}
	}
	st.n_records = n_out;
	st.n_hidden = n_hid;
	if (n_out + n_hid > st.max_changes) {
		r = tu_err_set(reterr, -E2BIG, "%zu changed blobs and %zu hidden keys, over the delta limit of %zu",
			       n_out, n_hid, st.max_changes);
		goto out;
	}
	/* hid came out in (type, key) order: keyless (length 0) first within a type */
	qsort(hid, n_hid, sizeof(*hid), cmp_blob_id);
	r = build_hidden_ids(hid, n_hid, &hide, &hide_len);
	if (r < 0) {
		r = tu_err_set(reterr, r, r == -ENOMEM ? "out of memory" : "hidden set too large");
		goto out;
	}
	snap_put64(info, base->size);
	snap_put32(info + 8, snap_le32(base->base + H_HEADER_CRC));
	{
		const struct extra_sec extra[] = {
		    {.type = SEC_DELTA, .count = 0, .data = info, .len = DELTA_SIZE},
		    {.type = SEC_HIDE_BLOB, .count = (uint32_t) n_hid, .data = hide, .len = hide_len},
		};

		/* build_blobs groups by type (stable) when a blob has a key; keyless ones are in
		 * input order, grouped already when the input is (the cache writer's is). */
		if (n_out > 1) {
			bool grouped = true;

			for (i = 1; grouped && i < n_out; i++)
				grouped = out[i - 1].type <= out[i].type;
			if (!grouped) {
				r = tu_err_set(reterr, -E2BIG, "blobs not grouped by type: write in full");
				goto out;
			}
		}
		r = build_blobs(TU_SNAPSHOT_KIND_STATE_DELTA, out, n_out, extra, ELEMENTSOF(extra),
				base->generation, now_usec, &img, &img_size, reterr);
	}
	if (r < 0)
		goto out;
	if (img_size > base->size / 2 && img_size > DELTA_MIN_BYTES_LIMIT) {
		r = tu_err_set(reterr, -E2BIG, "a delta of %zu bytes is not worth it over a base of %zu",
			       img_size, base->size);
		goto out;
	}
	st.bytes = img_size;
	*ret_data = TAKE_PTR(img);
	*ret_size = img_size;
	r = 0;
out:
	if (ret_stats)
		*ret_stats = st;
	return r;
}

int tu_snapshot_write_blobs_delta(const char *base_path, mode_t mode, const struct tu_blob *blobs,
				  size_t n_blobs, int64_t now_usec, size_t max_changes,
				  struct tu_snapshot_delta_stats *ret_stats, struct tu_err *reterr)
{
	_cleanup_free_ void *data = NULL;
	struct tu_snapshot_delta_stats st = {0};
	struct tu_snapshot *base = NULL;
	char dpath[PATH_MAX];
	size_t size = 0;
	int r;

	r = open_one(base_path, TU_SNAPSHOT_KIND_STATE, TU_SNAPSHOT_LAZY, false, &base, reterr);
	if (r >= 0) {
		r = tu_snapshot_delta_path(base_path, dpath, sizeof(dpath));
		if (r < 0)
			r = tu_err_set(reterr, r, "%s: the delta's path: %s", base_path, strerror(-r));
	}
	if (r >= 0)
		r = tu_snapshot_build_blobs_delta(base, blobs, n_blobs, now_usec, max_changes, &data,
						  &size, &st, reterr);
	if (r >= 0) {
		r = tu_snapshot_replace_file(dpath, mode, data, size, reterr);
		if (r < 0)
			st.bytes = 0;
	}
	if (ret_stats)
		*ret_stats = st;
	tu_snapshot_close(base);
	return r;
}
