/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot-internal.h - the byte layout of snapshot files (docs/cache-format.md),
 * shared by snapshot.c and its tests only.  Layer: libcore/base.
 */
#pragma once

#include <stdint.h>
#include <string.h>

#define SNAP_MAGIC      "\x89TUSNAP\n"
#define SNAP_MAGIC_LEN  8
#define SNAP_VERSION    1u
#define SNAP_HDR_SIZE   64u /* fixed part; the section table follows */
#define SNAP_SEC_SIZE   32u /* one section table entry */
#define SNAP_MAX_SECS   16u
#define SNAP_EMPTY_SLOT 0xFFFFFFFFu
#define SNAP_CHUNK      65536u /* bytes per chunk checksum */

/* Header field offsets. */
#define H_MAGIC       0
#define H_VERSION     8
#define H_KIND        12
#define H_FLAGS       16
#define H_HDR_SIZE    20
#define H_GENERATION  24
#define H_CREATED     32
#define H_FILE_SIZE   40
#define H_N_SECTIONS  48
#define H_PAYLOAD_CRC 52
#define H_HEADER_CRC  56
#define H_CHUNK_CRC   60 /* CRC-32C of the chunk CRC table section */

/* Section types. */
enum {
	SEC_PW_DATA = 1,
	SEC_PW_ORDER = 2,
	SEC_PW_BYNAME = 3,
	SEC_PW_BYUID = 4,
	SEC_GR_DATA = 5,
	SEC_GR_ORDER = 6,
	SEC_GR_BYNAME = 7,
	SEC_GR_BYGID = 8,
	SEC_BLOB_INDEX = 9,
	SEC_BLOB_DATA = 10,
	SEC_CHUNKS = 11, /* u32 CRC-32C per SNAP_CHUNK bytes of [header end, this section) */
	SEC_META = 12,   /* optional: u64 negative_ttl_usec, u64 zero */
	SEC_BLOB_KEYS = 13, /* optional in blob kinds: per-type ranges and a (type, key) hash index */
	SEC_DELTA = 14,     /* delta kinds: the base it applies to (DELTA_SIZE bytes) */
	SEC_HIDE_PW = 15,   /* accounts delta: logins hidden in the base */
	SEC_HIDE_GR = 16,   /* accounts delta: group names hidden in the base */
	SEC_HIDE_BLOB = 17, /* state delta: (type, key) pairs hidden in the base */
	SEC_TYPE_MAX = 17,
};

/* Record layouts (offsets inside a record). */
#define PW_FIXED   20u /* uid, gid, n_gids, 4 x u16 lengths */
#define GR_FIXED   16u /* gid, n_members, members_size, u16 name_len, u16 zero */
#define BLOB_ENTRY 24u /* type, zero, u64 offset, u64 length */
#define META_SIZE  16u
#define DELTA_SIZE 32u /* u64 base file size, u32 base header CRC, u32 zero, u64 zero, u64 zero */
#define HIDE_FIXED 8u  /* hidden entry: u32 type, u32 key_len, then key, NUL, zero padding to 4 */
/* BLOB_KEYS: a 16-byte head (u32 n_ranges, u32 zero, u64 zero), n_ranges range entries
 * (u32 type, u32 zero, u32 first blob, u32 blob count), then count slots (u32 hash, u32 blob
 * or SNAP_EMPTY_SLOT, u32 key offset in BLOB_DATA, u32 key length). */
#define KEYS_HEAD        16u
#define KEYS_RANGE       16u
#define KEYS_SLOT        16u
#define KEYS_MAX_RANGES  256u

/* The key index's slot for probe step i: the home slot (hash * count) >> 32, then the next
 * ones, wrapping (count need not be a power of two). */
static inline uint32_t snap_key_slot(uint32_t hash, uint32_t count, uint32_t i)
{
	uint64_t at = ((uint64_t) hash * count >> 32) + i;

	return (uint32_t) (at % count);
}

/* The key index's hash (FNV-1a 32-bit over the type, 4 bytes little-endian, then the key). */
static inline uint32_t snap_hash_key(uint32_t type, const void *key, size_t len)
{
	const unsigned char *k = key;
	uint32_t h = 2166136261u;

	for (int i = 0; i < 4; i++)
		h = (h ^ (unsigned char) (type >> (8 * i))) * 16777619u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

static inline uint16_t snap_le16(const unsigned char *p)
{
	return (uint16_t) (p[0] | p[1] << 8);
}

static inline uint32_t snap_le32(const unsigned char *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
	       (uint32_t) p[3] << 24;
}

static inline uint64_t snap_le64(const unsigned char *p)
{
	return (uint64_t) snap_le32(p) | (uint64_t) snap_le32(p + 4) << 32;
}

static inline void snap_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
}

static inline void snap_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
	p[2] = (unsigned char) (v >> 16);
	p[3] = (unsigned char) (v >> 24);
}

static inline void snap_put64(unsigned char *p, uint64_t v)
{
	snap_put32(p, (uint32_t) v);
	snap_put32(p + 4, (uint32_t) (v >> 32));
}

/* The name hash of the by-name indexes (FNV-1a 32-bit). */
static inline uint32_t snap_hash_name(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h;
}

/* The id hash of the by-uid / by-gid indexes. */
static inline uint32_t snap_hash_id(uint32_t id)
{
	uint32_t h = id * 0x9E3779B1u;

	return h ^ (h >> 15);
}
