/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-snapshot.c - libFuzzer target for the snapshot reader
 * (libcore/base/snapshot.c) and the packer.  The first input byte is a mode:
 * bit 0 set = recompute both CRC-32C fields before opening, so mutations
 * reach the structural checks and the lookups instead of stopping at the
 * checksum; bit 1 = TU_SNAPSHOT_CHECK_RECORDS; bit 2 = TU_SNAPSHOT_LAZY.  Every record found is
 * packed into a struct passwd/group; blob files also go through the key index
 * (tu_snapshot_find_blob, tu_snapshot_blob_type_range) and every byte it returns is read.
 *
 * Build by hand:
 *   clang -g -fsanitize=fuzzer,address,undefined -include build/config.h -Ilibcore/base \
 *     tests/fuzz/fuzz-snapshot.c libcore/base/{snapshot,crc32c,pack,err}.c -o fuzz-snapshot
 *   ./fuzz-snapshot -max_total_time=60 tests/fuzz/corpus/snapshot
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "pack.h"
#include "snapshot-internal.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (1u << 20)

static void pack_pw(const struct tu_pw_view *v)
{
	char buf[512];
	struct passwd pw;

	(void) tu_pack_passwd(v, &pw, buf, sizeof(buf));
	for (size_t i = 0; i < v->n_gids && i < 64; i++)
		(void) tu_pw_view_gid(v, i);
}

static void pack_gr(const struct tu_gr_view *v)
{
	static char buf[1u << 16] __attribute__((aligned(8)));
	struct group gr;
	size_t cur = 0, n = 0;

	while (tu_gr_view_next_member(v, &cur))
		n++;
	if (n != v->n_members)
		abort();
	(void) tu_pack_group(v, &gr, buf, sizeof(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"root", "alice", "u0", "u1", "g0", "x", "",
					    "bob", "access", "dev", "admin"};
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pv;
	struct tu_gr_view gv;
	unsigned char *copy;
	uint8_t mode;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	mode = data[0];
	data++, size--;
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if ((mode & 1) && size >= SNAP_HDR_SIZE) {
		uint32_t hdr = snap_le32(copy + H_HDR_SIZE), crc;

		if (hdr >= SNAP_HDR_SIZE && hdr <= size) {
			snap_put32(copy + H_PAYLOAD_CRC, tu_crc32c(0, copy + hdr, size - hdr));
			crc = tu_crc32c(0, copy, H_HEADER_CRC);
			crc = tu_crc32c(crc, copy + H_HEADER_CRC + 4, hdr - H_HEADER_CRC - 4);
			snap_put32(copy + H_HEADER_CRC, crc);
		}
	}
	if (tu_snapshot_open_buffer(copy, size, 0,
				    ((mode & 2) ? TU_SNAPSHOT_CHECK_RECORDS : 0) |
					((mode & 4) ? TU_SNAPSHOT_LAZY : 0),
				    &s, NULL) == 0) {
		size_t n = tu_snapshot_passwd_count(s), m = tu_snapshot_group_count(s),
		       b = tu_snapshot_blob_count(s);

		for (size_t i = 0; i < n && i < 256; i++)
			if (tu_snapshot_passwd_at(s, i, &pv, NULL) == 0) {
				struct tu_pw_view again;

				pack_pw(&pv);
				(void) tu_snapshot_find_login(s, pv.name, &again, NULL);
				(void) tu_snapshot_find_uid(s, pv.uid, &again, NULL);
			}
		for (size_t i = 0; i < m && i < 256; i++)
			if (tu_snapshot_group_at(s, i, &gv, NULL) == 0) {
				struct tu_gr_view again;

				pack_gr(&gv);
				(void) tu_snapshot_find_group(s, gv.name, &again, NULL);
				(void) tu_snapshot_find_gid(s, gv.gid, &again, NULL);
			}
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (tu_snapshot_find_login(s, names[i], &pv, NULL) == 0)
				pack_pw(&pv);
			if (tu_snapshot_find_group(s, names[i], &gv, NULL) == 0)
				pack_gr(&gv);
		}
		for (size_t i = 0; i < b && i < 256; i++) {
			uint32_t type;
			const void *p;
			size_t sz;

			if (tu_snapshot_blob_at(s, i, &type, &p, &sz) == 0 && sz > 0) {
				volatile unsigned char c = ((const unsigned char *) p)[sz - 1];

				(void) c;
			}
		}
		for (uint32_t type = 0; b > 0 && type < 8; type++) {
			size_t first = 0, count = 0, sz;
			const void *p;
			uint32_t t;

			for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (tu_snapshot_find_blob(s, type, names[i], strlen(names[i]), &p, &sz,
							  NULL) == 0 &&
				    sz > 0) {
					volatile unsigned char c = ((const unsigned char *) p)[sz - 1];

					(void) c;
				}
			if (tu_snapshot_blob_type_range(s, type, &first, &count, NULL) == 0) {
				if (first > b || count > b - first)
					abort(); /* checked at open: inside the blobs */
				for (size_t i = first; i < first + count && i < first + 64; i++)
					(void) tu_snapshot_blob_at(s, i, &t, &p, &sz);
			}
		}
		tu_snapshot_close(s);
	}
	free(copy);
	return 0;
}
