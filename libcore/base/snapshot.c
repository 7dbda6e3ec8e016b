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
	/* BLOB_KEYS (checked at open): where the slots and the key bytes start in the file. */
	uint32_t key_ranges;
	size_t key_slots_off, key_bytes_off, key_bytes;
};

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
	_cleanup_free_ const struct tu_pw_rec **spw = NULL;
	_cleanup_free_ const struct tu_gr_rec **sgr = NULL;
	_cleanup_free_ unsigned char *buf = NULL;
	struct sec_plan plan[10] = {
	    {.type = SEC_PW_DATA},   {.type = SEC_PW_ORDER}, {.type = SEC_PW_BYNAME},
	    {.type = SEC_PW_BYUID},  {.type = SEC_GR_DATA},  {.type = SEC_GR_ORDER},
	    {.type = SEC_GR_BYNAME}, {.type = SEC_GR_BYGID}, {.type = SEC_META, .len = META_SIZE},
	    {.type = SEC_CHUNKS},
	};
	/* Without meta the chunk table takes the meta slot: 9 sections. */
	size_t nplan = meta ? 10 : 9;
	size_t pw_data = 0, gr_data = 0, size;
	uint32_t pw_slots, gr_slots;
	int r;

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

	qsort(spw, n_pw, sizeof(*spw), cmp_pw);
	qsort(sgr, n_gr, sizeof(*sgr), cmp_gr);
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
	finish_header(buf, size, TU_SNAPSHOT_KIND_ACCOUNTS, plan, nplan, generation, now_usec);
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

int tu_snapshot_build_blobs(uint32_t kind, const struct tu_blob *blobs, size_t n_blobs,
			    uint64_t generation, int64_t now_usec, void **ret_data,
			    size_t *ret_size, struct tu_err *reterr)
{
	_cleanup_free_ unsigned char *buf = NULL;
	_cleanup_free_ uint32_t *order = NULL;
	struct sec_plan plan[4] = {{.type = SEC_BLOB_INDEX},
				   {.type = SEC_BLOB_DATA},
				   {.type = SEC_BLOB_KEYS},
				   {.type = SEC_CHUNKS}};
	size_t data = 0, size, keyed = 0, key_bytes = 0, n_ranges = 0, nplan = 3;
	uint32_t slots = 0;
	int r;

	if (kind == 0 || kind == TU_SNAPSHOT_KIND_ACCOUNTS)
		return tu_err_set(reterr, -EINVAL, "invalid blob snapshot kind %u", kind);
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
	if (!order)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
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
		slots = slots_for(keyed);
		plan[2].count = slots;
		plan[2].len = KEYS_HEAD + KEYS_RANGE * n_ranges + KEYS_SLOT * (size_t) slots +
			      key_bytes;
		nplan = 4;
	} else {
		plan[2] = plan[3];
	}
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
		data += bl->size;
	}
	if (keyed) {
		unsigned char *k = buf + plan[2].off, *rng = k + KEYS_HEAD,
			      *tab = rng + KEYS_RANGE * n_ranges, *keys = tab + KEYS_SLOT * (size_t) slots;
		size_t ri = 0, koff = 0;

		snap_put32(k, (uint32_t) n_ranges);
		snap_put64(k + 8, key_bytes);
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
			h = snap_hash_key(bl->type, bl->key, bl->key_len);
			for (uint32_t j = 0; j < slots; j++) {
				unsigned char *slot = tab + KEYS_SLOT * ((h + j) & (slots - 1));

				if (snap_le32(slot + 4) != SNAP_EMPTY_SLOT)
					continue;
				snap_put32(slot, h);
				snap_put32(slot + 4, (uint32_t) i);
				snap_put32(slot + 8, (uint32_t) koff);
				snap_put32(slot + 12, (uint32_t) bl->key_len);
				break;
			}
			memcpy(keys + koff, bl->key, bl->key_len);
			koff += bl->key_len;
		}
	}
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
	kb = snap_le64(k->p + 8);
	if (nr > KEYS_MAX_RANGES || snap_le32(k->p + 4) != 0 || nslots == 0 ||
	    (nslots & (nslots - 1)) != 0 || nslots > 4 * TU_SNAPSHOT_MAX_RECORDS)
		return bad(reterr, "blob key index at offset %zu: %u ranges, %u slots", k->off, nr,
			   nslots);
	fixed = KEYS_HEAD + KEYS_RANGE * (size_t) nr + KEYS_SLOT * (size_t) nslots;
	if (kb > k->len || k->len - kb != fixed)
		return bad(reterr, "blob key index at offset %zu: %zu bytes, its parts make %zu + %llu",
			   k->off, k->len, fixed, (unsigned long long) kb);
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
	s->key_bytes_off = s->key_slots_off + KEYS_SLOT * (size_t) nslots;
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
		uint32_t i = (uint32_t) ((empty + 1 + n) & (nslots - 1));
		const unsigned char *slot = tab + KEYS_SLOT * (size_t) i;
		uint32_t blob = snap_le32(slot + 4), h;

		if (blob == SNAP_EMPTY_SLOT) {
			run = 0;
			continue;
		}
		h = snap_hash_key(snap_le32(s->sec[SEC_BLOB_INDEX].p + BLOB_ENTRY * (size_t) blob),
				  s->base + s->key_bytes_off + snap_le32(slot + 8),
				  snap_le32(slot + 12));
		if (h != snap_le32(slot) || ((i - h) & (nslots - 1)) > run ||
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

	if (kind == TU_SNAPSHOT_KIND_ACCOUNTS) {
		static const int need[] = {SEC_PW_DATA, SEC_PW_ORDER, SEC_PW_BYNAME, SEC_PW_BYUID,
					   SEC_GR_DATA, SEC_GR_ORDER, SEC_GR_BYNAME, SEC_GR_BYGID};
		int r;

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
			if (s->sec[t].present || s->sec[SEC_META].present)
				return bad(reterr, "blob snapshot with accounts sections");
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

int tu_snapshot_open(const char *path, uint32_t expected_kind, unsigned flags,
		     struct tu_snapshot **ret, struct tu_err *reterr)
{
	_cleanup_close_ int fd = -1;
	struct tu_snapshot *s = NULL;
	struct stat st;
	void *map;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
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
	r = tu_snapshot_open_buffer(map, (size_t) st.st_size, expected_kind, flags, &s, reterr);
	if (r < 0 || !s) {
		(void) munmap(map, (size_t) st.st_size);
		tu_err_prefix(reterr, "%s", path);
		return r < 0 ? r : -EIO;
	}
	s->mapped = true;
	*ret = s;
	return 0;
}

struct tu_snapshot *tu_snapshot_close(struct tu_snapshot *s)
{
	if (!s)
		return NULL;
	if (s->mapped)
		(void) munmap((void *) s->base, s->size);
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
	return s->created_usec;
}

size_t tu_snapshot_size(const struct tu_snapshot *s)
{
	return s->size;
}

uint64_t tu_snapshot_negative_ttl_usec(const struct tu_snapshot *s)
{
	if (s->kind != TU_SNAPSHOT_KIND_ACCOUNTS || !s->sec[SEC_META].present)
		return 0;
	return snap_le64(s->sec[SEC_META].p); /* checked at open */
}

size_t tu_snapshot_passwd_count(const struct tu_snapshot *s)
{
	return s->kind == TU_SNAPSHOT_KIND_ACCOUNTS ? s->sec[SEC_PW_ORDER].count : 0;
}

size_t tu_snapshot_group_count(const struct tu_snapshot *s)
{
	return s->kind == TU_SNAPSHOT_KIND_ACCOUNTS ? s->sec[SEC_GR_ORDER].count : 0;
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

int tu_snapshot_find_login(const struct tu_snapshot *s, const char *name, struct tu_pw_view *ret,
			   struct tu_err *reterr)
{
	uint32_t h, i = 0, off;
	int r;

	if (s->kind != TU_SNAPSHOT_KIND_ACCOUNTS || !name)
		return -ENOENT;
	h = snap_hash_name(name);
	while ((r = probe_next(s, &s->sec[SEC_PW_BYNAME], h, h, &i, &off, reterr)) > 0) {
		struct tu_pw_view v;

		r = pw_parse(s, off, false, &v, reterr);
		if (r < 0)
			return r;
		if (strcmp(v.name, name) == 0) {
			*ret = v;
			return 0;
		}
	}
	return r < 0 ? r : -ENOENT;
}

int tu_snapshot_find_uid(const struct tu_snapshot *s, uid_t uid, struct tu_pw_view *ret,
			 struct tu_err *reterr)
{
	uint32_t i = 0, off;
	int r;

	if (s->kind != TU_SNAPSHOT_KIND_ACCOUNTS)
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

int tu_snapshot_find_group(const struct tu_snapshot *s, const char *name, struct tu_gr_view *ret,
			   struct tu_err *reterr)
{
	uint32_t h, i = 0, off;
	int r;

	if (s->kind != TU_SNAPSHOT_KIND_ACCOUNTS || !name)
		return -ENOENT;
	h = snap_hash_name(name);
	while ((r = probe_next(s, &s->sec[SEC_GR_BYNAME], h, h, &i, &off, reterr)) > 0) {
		struct tu_gr_view v;

		r = gr_parse(s, off, false, &v, reterr);
		if (r < 0)
			return r;
		if (strcmp(v.name, name) == 0) {
			*ret = v;
			return 0;
		}
	}
	return r < 0 ? r : -ENOENT;
}

int tu_snapshot_find_gid(const struct tu_snapshot *s, gid_t gid, struct tu_gr_view *ret,
			 struct tu_err *reterr)
{
	uint32_t i = 0, off;
	int r;

	if (s->kind != TU_SNAPSHOT_KIND_ACCOUNTS)
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

int tu_snapshot_passwd_at(const struct tu_snapshot *s, size_t i, struct tu_pw_view *ret,
			  struct tu_err *reterr)
{
	struct tu_pw_view v;
	int r;

	if (i >= tu_snapshot_passwd_count(s))
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

int tu_snapshot_group_at(const struct tu_snapshot *s, size_t i, struct tu_gr_view *ret,
			 struct tu_err *reterr)
{
	struct tu_gr_view v;
	int r;

	if (i >= tu_snapshot_group_count(s))
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
	return s->kind != TU_SNAPSHOT_KIND_ACCOUNTS ? s->sec[SEC_BLOB_INDEX].count : 0;
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

int tu_snapshot_blob_at(const struct tu_snapshot *s, size_t i, uint32_t *ret_type,
			const void **ret_data, size_t *ret_size)
{
	if (i >= tu_snapshot_blob_count(s))
		return -ENOENT;
	return blob_entry(s, i, ret_type, ret_data, ret_size, NULL);
}

int tu_snapshot_find_blob(const struct tu_snapshot *s, uint32_t type, const char *key,
			  size_t key_len, const void **ret_data, size_t *ret_size,
			  struct tu_err *reterr)
{
	const struct section *k = &s->sec[SEC_BLOB_KEYS];
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
		size_t at = s->key_slots_off + KEYS_SLOT * (size_t) ((h + i) & (k->count - 1));
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
	}
	if (!have)
		return -ENOENT;
	*ret_data = found;
	*ret_size = found_size;
	return 0;
}

int tu_snapshot_blob_type_range(const struct tu_snapshot *s, uint32_t type, size_t *ret_first,
				size_t *ret_count, struct tu_err *reterr)
{
	const struct section *k = &s->sec[SEC_BLOB_KEYS];

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
