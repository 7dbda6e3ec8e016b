/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-delta.c - libFuzzer target for the delta overlay reader
 * (libcore/base/snapshot.c, docs/cache-format.md "Delta files").  The input
 * (after a mode byte) is an accounts delta, attached to a fixed base built in
 * memory.  Mode bit 0: make the delta name this base (generation, size,
 * header checksum) and recompute its checksums, so mutations reach the
 * structural checks, the hidden sets and the lookups; bit 1:
 * TU_SNAPSHOT_CHECK_RECORDS; bit 2: TU_SNAPSHOT_LAZY; bit 3: a state delta over a
 * fixed state base (users and roles keyed by name, keyless locks) instead.  Every
 * lookup and the whole enumeration run over base + delta.
 *
 * Build by hand:
 *   clang -g -fsanitize=fuzzer,address,undefined -include build/config.h -Ilibcore/base \
 *     -Iinclude tests/fuzz/fuzz-delta.c libcore/base/{snapshot,crc32c,err,fsutil}.c -o fuzz-delta
 *   ./fuzz-delta -max_total_time=60 tests/fuzz/corpus/delta
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "snapshot-internal.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (1u << 20)
#define BASE_GEN  7

static const uint32_t g1[] = {5000};
static const char *const devs[] = {"alice", "bob"};
static const struct tu_pw_rec pw[] = {
    {"alice", "A", "/home/alice", "/bin/sh", 30000, 30000, g1, 1},
    {"bob", "B", "/home/bob", "/bin/sh", 30001, 30001, g1, 1},
    {"carol", "C", "/home/carol", "/bin/sh", 30002, 30002, NULL, 0},
};
static const struct tu_gr_rec gr[] = {
    {"alice", 30000, NULL, 0},
    {"bob", 30001, NULL, 0},
    {"carol", 30002, NULL, 0},
    {"devs", 5000, devs, 2},
};

static const struct tu_blob state_blobs[] = {
    {1, "user-alice", 10, "alice", 5},
    {1, "user-bob", 8, "bob", 3},
    {2, "role-dev", 8, "dev", 3},
    {3, "lock-1", 6, NULL, 0},
    {3, "lock-2", 6, NULL, 0},
    {4, "pref", 4, NULL, 0},
};

static void *base, *sbase;
static size_t base_size, sbase_size;

/* Points the delta at our base and recomputes every checksum the writer would. */
static void adopt(unsigned char *b, size_t size, const void *to, size_t to_size)
{
	uint32_t hdr = snap_le32(b + H_HDR_SIZE), n = snap_le32(b + H_N_SECTIONS), crc;

	if (hdr < SNAP_HDR_SIZE || hdr > size || n > SNAP_MAX_SECS ||
	    SNAP_HDR_SIZE + SNAP_SEC_SIZE * (size_t) n > hdr)
		return;
	snap_put64(b + H_GENERATION, BASE_GEN);
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *e = b + SNAP_HDR_SIZE + SNAP_SEC_SIZE * (size_t) i;
		uint64_t off = snap_le64(e + 8), len = snap_le64(e + 16);

		if (off < hdr || off > size || len > size - off)
			continue;
		if (snap_le32(e) == SEC_DELTA && len >= 12) {
			snap_put64(b + off, to_size);
			snap_put32(b + off + 8, snap_le32((const unsigned char *) to + H_HEADER_CRC));
		}
		if (snap_le32(e) == SEC_CHUNKS) {
			for (uint64_t k = 0; 4 * (k + 1) <= len; k++) {
				uint64_t a = hdr + k * SNAP_CHUNK, z = a + SNAP_CHUNK > off ? off : a + SNAP_CHUNK;

				if (a < z)
					snap_put32(b + off + 4 * k, tu_crc32c(0, b + a, (size_t) (z - a)));
			}
			snap_put32(b + H_CHUNK_CRC, tu_crc32c(0, b + off, (size_t) len));
		}
	}
	snap_put32(b + H_PAYLOAD_CRC, tu_crc32c(0, b + hdr, size - hdr));
	crc = tu_crc32c(0, b, H_HEADER_CRC);
	crc = tu_crc32c(crc, b + H_HEADER_CRC + 4, hdr - H_HEADER_CRC - 4);
	snap_put32(b + H_HEADER_CRC, crc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"alice", "bob", "carol", "dave", "devs", "web", "x", ""};
	static const uint32_t ids[] = {30000, 30001, 30002, 30003, 5000, 5001, 0, 1};
	unsigned flags;
	struct tu_snapshot *s = NULL;
	unsigned char *copy;
	uint8_t mode;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	if (!base && tu_snapshot_build_accounts(pw, 3, gr, 4, BASE_GEN, 1000, &base, &base_size, NULL) < 0)
		abort();
	if (!sbase && tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, state_blobs, 6, BASE_GEN, 1000,
					      &sbase, &sbase_size, NULL) < 0)
		abort();
	mode = data[0];
	data++, size--;
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if ((mode & 1) && size >= SNAP_HDR_SIZE)
		adopt(copy, size, (mode & 8) ? sbase : base, (mode & 8) ? sbase_size : base_size);
	flags = ((mode & 2) ? TU_SNAPSHOT_CHECK_RECORDS : 0) | ((mode & 4) ? TU_SNAPSHOT_LAZY : 0);
	if (mode & 8) {
		static const char *const keys[] = {"alice", "bob", "carol", "dev", "ops", ""};

		if (tu_snapshot_open_buffer(sbase, sbase_size, TU_SNAPSHOT_KIND_STATE, flags, &s, NULL) < 0)
			abort();
		if (tu_snapshot_attach_delta_buffer(s, copy, size, flags, NULL) == 1) {
			for (size_t i = 0; i < tu_snapshot_blob_count(s) && i < 512; i++) {
				uint32_t t;
				const void *d;
				size_t n;

				if (tu_snapshot_blob_at(s, i, &t, &d, &n) == 0 && n > 0) {
					volatile unsigned char c = ((const unsigned char *) d)[n - 1];

					(void) c;
				}
			}
			for (uint32_t t = 0; t < 6; t++) {
				size_t first, count;
				const void *d;
				size_t n;

				if (tu_snapshot_blob_type_range(s, t, &first, &count, NULL) == 0 &&
				    first + count > tu_snapshot_blob_count(s))
					abort();
				for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
					(void) tu_snapshot_find_blob(s, t, keys[k], strlen(keys[k]), &d, &n, NULL);
			}
		}
		tu_snapshot_close(s);
		free(copy);
		return 0;
	}
	if (tu_snapshot_open_buffer(base, base_size, TU_SNAPSHOT_KIND_ACCOUNTS, flags, &s, NULL) < 0)
		abort();
	if (tu_snapshot_attach_delta_buffer(s, copy, size, flags, NULL) == 1) {
		struct tu_pw_view pv;
		struct tu_gr_view gv;

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			(void) tu_snapshot_find_login(s, names[i], &pv, NULL);
			(void) tu_snapshot_find_group(s, names[i], &gv, NULL);
		}
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			(void) tu_snapshot_find_uid(s, ids[i], &pv, NULL);
			(void) tu_snapshot_find_gid(s, ids[i], &gv, NULL);
		}
		for (size_t i = 0; i < tu_snapshot_passwd_count(s) + 1 && i < 512; i++)
			if (tu_snapshot_passwd_at(s, i, &pv, NULL) == 0)
				(void) tu_snapshot_find_login(s, pv.name, &pv, NULL);
		for (size_t i = 0; i < tu_snapshot_group_count(s) + 1 && i < 512; i++) {
			size_t cur = 0, n = 0;

			if (tu_snapshot_group_at(s, i, &gv, NULL) != 0)
				continue;
			while (tu_gr_view_next_member(&gv, &cur))
				n++;
			if (n != gv.n_members)
				abort();
		}
		(void) tu_snapshot_created_usec(s);
		(void) tu_snapshot_negative_ttl_usec(s);
	}
	tu_snapshot_close(s);
	free(copy);
	return 0;
}
