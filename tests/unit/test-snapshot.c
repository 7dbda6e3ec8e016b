/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-snapshot.c - libcore/base/snapshot.c: write -> read round trips,
 * writer input checks, and a hostile-file battery: every truncation and
 * every single-bit flip of a valid file must give -EBADMSG; structural
 * corruptions with a re-computed checksum (a "valid-looking" hostile file)
 * must never make a lookup read outside the file (run under ASan/valgrind).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "crc32c.h"
#include "err.h"
#include "snapshot-internal.h"
#include "snapshot.h"

/*
 * Torture mode (STYLE §2.15, curl's idea): a test-only allocator that fails the Nth
 * allocation once armed.  Not under ASan, whose own allocator must stay in charge.
 */
#if !defined(__SANITIZE_ADDRESS__)
#define TORTURE 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
static long fail_at = -1, n_allocs;

static int should_fail(void)
{
	return fail_at >= 0 && n_allocs++ == fail_at;
}

void *malloc(size_t n)
{
	return should_fail() ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	return should_fail() ? NULL : __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	return should_fail() ? NULL : __libc_realloc(p, n);
}
#endif

static const uint32_t alice_gids[] = { 5000, 27, 100 };
static const char *const devs[] = { "alice", "bob" };
static const char *const ops[] = { "carol" };

static const struct tu_pw_rec pws[] = {
	{ "carol", "Carol C", "/home/carol", "/bin/zsh", 300002, 300002, NULL, 0 },
	{ "alice", "alice@example.com", "/home/alice", "/bin/bash", 300000, 300000, alice_gids, 3 },
	{ "bob", "", "/home/bob", "/bin/sh", 300001, 5000, NULL, 0 },
};

static const struct tu_gr_rec grs[] = {
	{ "devs", 5000, devs, 2 },
	{ "alice", 300000, NULL, 0 },
	{ "ops", 5001, ops, 1 },
	{ "carol", 300002, NULL, 0 },
};

static void build_sample(void **data, size_t *size)
{
	struct tu_err e = {};

	assert_int_equal(tu_snapshot_build_accounts(pws, 3, grs, 4, 42, 1700000000000000, data, size, &e), 0);
}

/* Recomputes both checksums after a deliberate structural edit. */
static void fix_crc(unsigned char *b, size_t size)
{
	uint32_t hdr = snap_le32(b + H_HDR_SIZE), crc;

	if (hdr < SNAP_HDR_SIZE || hdr > size)
		return;
	snap_put32(b + H_PAYLOAD_CRC, tu_crc32c(0, b + hdr, size - hdr));
	crc = tu_crc32c(0, b, H_HEADER_CRC);
	crc = tu_crc32c(crc, b + H_HEADER_CRC + 4, hdr - H_HEADER_CRC - 4);
	snap_put32(b + H_HEADER_CRC, crc);
}

static void test_crc32c(void **state)
{
	unsigned char big[1000];

	assert_int_equal(tu_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(tu_crc32c_sw(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(tu_crc32c(0, "", 0), 0);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char) (i * 7 + 3);
	/* Split feeding and unaligned starts agree with the portable code. */
	for (size_t off = 0; off < 9; off++)
		assert_int_equal(tu_crc32c(tu_crc32c(0, big + off, 100), big + off + 100, 500),
				 tu_crc32c_sw(0, big + off, 600));
	/* Long buffers (three interleaved streams, then the tail), every start alignment, sizes
	 * around the thresholds and a whole 64 KiB chunk, in one piece and split. */
	{
		const size_t n = 3 * 65536 + 64;
		unsigned char *huge = malloc(n);
		static const size_t sizes[] = { 1023, 1024, 1025, 1047, 1048, 1049, 4096, 24 * 1000 + 7,
						65535, 65536, 65537, 3 * 65536 };

		for (size_t i = 0; i < n; i++)
			huge[i] = (unsigned char) (i * 131 + (i >> 9));
		for (size_t off = 0; off < 9; off++)
			for (size_t k = 0; k < ELEMENTSOF(sizes); k++) {
				uint32_t want = tu_crc32c_sw(0, huge + off, sizes[k]);

				assert_int_equal(tu_crc32c(0, huge + off, sizes[k]), want);
				assert_int_equal(tu_crc32c(tu_crc32c(0, huge + off, sizes[k] / 3), huge + off + sizes[k] / 3,
							   sizes[k] - sizes[k] / 3),
						 want);
			}
		free(huge);
	}
}

static void test_round_trip(void **state)
{
	void *data = NULL;
	size_t size = 0, cur = 0;
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pv;
	struct tu_gr_view gv;
	struct tu_err e = {};
	const char *m;

	build_sample(&data, &size);
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_CHECK_RECORDS, &s, &e),
			 0);
	assert_int_equal(tu_snapshot_kind(s), TU_SNAPSHOT_KIND_ACCOUNTS);
	assert_int_equal(tu_snapshot_generation(s), 42);
	assert_int_equal(tu_snapshot_created_usec(s), 1700000000000000);
	assert_int_equal(tu_snapshot_passwd_count(s), 3);
	assert_int_equal(tu_snapshot_group_count(s), 4);

	assert_int_equal(tu_snapshot_find_login(s, "alice", &pv, &e), 0);
	assert_string_equal(pv.name, "alice");
	assert_int_equal(pv.name_len, 5);
	assert_string_equal(pv.gecos, "alice@example.com");
	assert_string_equal(pv.dir, "/home/alice");
	assert_string_equal(pv.shell, "/bin/bash");
	assert_int_equal(pv.uid, 300000);
	assert_int_equal(pv.gid, 300000);
	assert_int_equal(pv.n_gids, 3);
	assert_int_equal(tu_pw_view_gid(&pv, 0), 5000);
	assert_int_equal(tu_pw_view_gid(&pv, 1), 27);
	assert_int_equal(tu_pw_view_gid(&pv, 2), 100);

	assert_int_equal(tu_snapshot_find_uid(s, 300001, &pv, &e), 0);
	assert_string_equal(pv.name, "bob");
	assert_string_equal(pv.gecos, "");
	assert_int_equal(pv.gid, 5000);
	assert_int_equal(tu_snapshot_find_uid(s, 300003, &pv, &e), -ENOENT);
	assert_int_equal(tu_snapshot_find_login(s, "dave", &pv, &e), -ENOENT);
	assert_int_equal(tu_snapshot_find_login(s, "", &pv, &e), -ENOENT);
	assert_int_equal(tu_snapshot_find_login(s, "alic", &pv, &e), -ENOENT);

	assert_int_equal(tu_snapshot_find_group(s, "devs", &gv, &e), 0);
	assert_int_equal(gv.gid, 5000);
	assert_int_equal(gv.n_members, 2);
	m = tu_gr_view_next_member(&gv, &cur);
	assert_string_equal(m, "alice");
	m = tu_gr_view_next_member(&gv, &cur);
	assert_string_equal(m, "bob");
	assert_null(tu_gr_view_next_member(&gv, &cur));
	assert_int_equal(tu_snapshot_find_gid(s, 300002, &gv, &e), 0);
	assert_string_equal(gv.name, "carol");
	assert_int_equal(gv.n_members, 0);
	assert_int_equal(tu_snapshot_find_gid(s, 5002, &gv, &e), -ENOENT);
	assert_int_equal(tu_snapshot_find_group(s, "nogroup", &gv, &e), -ENOENT);

	/* Enumeration is in bytewise name order whatever the input order. */
	assert_int_equal(tu_snapshot_passwd_at(s, 0, &pv, &e), 0);
	assert_string_equal(pv.name, "alice");
	assert_int_equal(tu_snapshot_passwd_at(s, 1, &pv, &e), 0);
	assert_string_equal(pv.name, "bob");
	assert_int_equal(tu_snapshot_passwd_at(s, 2, &pv, &e), 0);
	assert_string_equal(pv.name, "carol");
	assert_int_equal(tu_snapshot_passwd_at(s, 3, &pv, &e), -ENOENT);
	assert_int_equal(tu_snapshot_group_at(s, 0, &gv, &e), 0);
	assert_string_equal(gv.name, "alice");
	assert_int_equal(tu_snapshot_group_at(s, 3, &gv, &e), 0);
	assert_string_equal(gv.name, "ops");
	assert_int_equal(tu_snapshot_group_at(s, 4, &gv, &e), -ENOENT);
	/* Not a blob snapshot. */
	assert_int_equal(tu_snapshot_blob_count(s), 0);

	s = tu_snapshot_close(s);
	assert_null(s);
	free(data);
}

static void test_deterministic(void **state)
{
	const struct tu_pw_rec rev[] = { pws[2], pws[1], pws[0] };
	const struct tu_gr_rec grev[] = { grs[3], grs[2], grs[1], grs[0] };
	void *a = NULL, *b = NULL;
	size_t sa = 0, sb = 0;

	build_sample(&a, &sa);
	assert_int_equal(tu_snapshot_build_accounts(rev, 3, grev, 4, 42, 1700000000000000, &b, &sb, NULL), 0);
	assert_int_equal(sa, sb);
	assert_memory_equal(a, b, sa);
	free(a);
	free(b);
}

static void test_empty(void **state)
{
	void *data = NULL;
	size_t size = 0;
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pv;
	struct tu_gr_view gv;

	assert_int_equal(tu_snapshot_build_accounts(NULL, 0, NULL, 0, 1, 0, &data, &size, NULL), 0);
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_CHECK_RECORDS, &s,
						 NULL),
			 0);
	assert_int_equal(tu_snapshot_passwd_count(s), 0);
	assert_int_equal(tu_snapshot_find_login(s, "root", &pv, NULL), -ENOENT);
	assert_int_equal(tu_snapshot_find_uid(s, 0, &pv, NULL), -ENOENT);
	assert_int_equal(tu_snapshot_find_gid(s, 0, &gv, NULL), -ENOENT);
	assert_int_equal(tu_snapshot_passwd_at(s, 0, &pv, NULL), -ENOENT);
	tu_snapshot_close(s);
	free(data);
}

struct bad_case {
	struct tu_pw_rec pw[2];
	size_t n_pw;
	struct tu_gr_rec gr[2];
	size_t n_gr;
	int r;
	const char *msg;
};

static void test_writer_rejects(void **state)
{
	static char longname[300];
	static const char *const bad_members[] = { "ok", "no,pe" };
	static const char *const nul_member[] = { NULL };
	const struct bad_case cases[] = {
		{ { { "a:b", "", "/", "/bin/sh", 1000, 1000, NULL, 0 } }, 1, {}, 0, -EINVAL, "forbidden character (0x3a)" },
		{ { { "a,b", "", "/", "/bin/sh", 1000, 1000, NULL, 0 } }, 1, {}, 0, -EINVAL, "forbidden character (0x2c)" },
		{ { { "ab", "x\ny", "/", "/bin/sh", 1000, 1000, NULL, 0 } }, 1, {}, 0, -EINVAL, "gecos of 'ab' contains" },
		{ { { "", "", "/", "/bin/sh", 1000, 1000, NULL, 0 } }, 1, {}, 0, -EINVAL, "empty passwd name" },
		{ { { longname, "", "/", "/bin/sh", 1000, 1000, NULL, 0 } }, 1, {}, 0, -EMSGSIZE, "longer than 255 bytes" },
		{ { { "ab", "", NULL, "/bin/sh", 1000, 1000, NULL, 0 } }, 1, {}, 0, -EINVAL, "home of 'ab' is NULL" },
		{ { { "ab", "", "/", "/bin/sh", 1000, 1000, NULL, 0 }, { "ab", "", "/", "/bin/sh", 1001, 1000, NULL, 0 } }, 2, {}, 0,
		  -EINVAL, "duplicate login 'ab'" },
		{ { { "ab", "", "/", "/bin/sh", 1000, 1000, NULL, 0 }, { "cd", "", "/", "/bin/sh", 1000, 1000, NULL, 0 } }, 2, {}, 0,
		  -EINVAL, "duplicate uid 1000" },
		{ { { "ab", "", "/", "/bin/sh", 1000, 1000, NULL, 2 } }, 1, {}, 0, -EINVAL, "NULL gid array" },
		{ {}, 0, { { "g", 10, NULL, 0 }, { "g", 11, NULL, 0 } }, 2, -EINVAL, "duplicate group 'g'" },
		{ {}, 0, { { "g", 10, NULL, 0 }, { "h", 10, NULL, 0 } }, 2, -EINVAL, "duplicate gid 10" },
		{ {}, 0, { { "g", 10, bad_members, 2 } }, 1, -EINVAL, "member of 'g' contains" },
		{ {}, 0, { { "g", 10, nul_member, 1 } }, 1, -EINVAL, "member of 'g' is NULL" },
		{ {}, 0, { { "g", 10, NULL, 3 } }, 1, -EINVAL, "NULL member array" },
	};

	memset(longname, 'a', sizeof(longname) - 1);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		void *data = (void *) 0x1;
		size_t size = 7;
		struct tu_err e = {};
		int r = tu_snapshot_build_accounts(cases[i].pw, cases[i].n_pw, cases[i].gr, cases[i].n_gr, 1, 0, &data,
						   &size, &e);

		if (r != cases[i].r || !strstr(e.msg, cases[i].msg))
			fail_msg("case %zu: r=%d msg='%s', want %d '%s'", i, r, e.msg, cases[i].r, cases[i].msg);
		/* ret_ untouched on failure */
		assert_ptr_equal(data, (void *) 0x1);
		assert_int_equal(size, 7);
	}
}

/* Every lookup and enumeration on s: may fail, must not crash or read outside. */
static void poke_all(const struct tu_snapshot *s)
{
	static const char *const names[] = { "alice", "bob", "carol", "devs", "ops", "x" };
	static const uint32_t ids[] = { 300000, 300001, 300002, 5000, 5001, 0 };
	struct tu_pw_view pv;
	struct tu_gr_view gv;
	struct tu_err e;

	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		int r1 = tu_snapshot_find_login(s, names[i], &pv, &e);
		int r2 = tu_snapshot_find_group(s, names[i], &gv, &e);
		int r3 = tu_snapshot_find_uid(s, ids[i], &pv, &e);
		int r4 = tu_snapshot_find_gid(s, ids[i], &gv, &e);

		assert_true(r1 == 0 || r1 == -ENOENT || r1 == -EBADMSG);
		assert_true(r2 == 0 || r2 == -ENOENT || r2 == -EBADMSG);
		assert_true(r3 == 0 || r3 == -ENOENT || r3 == -EBADMSG);
		assert_true(r4 == 0 || r4 == -ENOENT || r4 == -EBADMSG);
		if (r2 == 0) {
			size_t cur = 0, n = 0;

			while (tu_gr_view_next_member(&gv, &cur))
				n++;
			assert_int_equal(n, gv.n_members);
		}
	}
	for (size_t i = 0; i < tu_snapshot_passwd_count(s); i++)
		if (tu_snapshot_passwd_at(s, i, &pv, &e) == 0)
			for (size_t k = 0; k < pv.n_gids; k++)
				(void) tu_pw_view_gid(&pv, k);
	for (size_t i = 0; i < tu_snapshot_group_count(s); i++)
		(void) tu_snapshot_group_at(s, i, &gv, &e);
}

static void test_truncations(void **state)
{
	void *data = NULL;
	size_t size = 0;

	build_sample(&data, &size);
	for (size_t n = 0; n < size; n++) {
		unsigned char *copy = malloc(n ? n : 1);
		struct tu_snapshot *s = NULL;
		struct tu_err e = {};

		memcpy(copy, data, n);
		assert_int_equal(tu_snapshot_open_buffer(copy, n, 0, 0, &s, &e), -EBADMSG);
		assert_null(s);
		assert_true(strstr(e.msg, "truncated") || strstr(e.msg, "header says"));
		free(copy);
	}
	free(data);
}

static void test_bit_flips(void **state)
{
	void *data = NULL;
	size_t size = 0;
	unsigned char *copy;

	build_sample(&data, &size);
	copy = malloc(size);
	for (size_t bit = 0; bit < size * 8; bit++) {
		struct tu_snapshot *s = NULL;
		struct tu_err e = {};

		memcpy(copy, data, size);
		copy[bit / 8] ^= (unsigned char) (1u << (bit % 8));
		/* CRC-32C catches every single-bit error; the earlier checks catch some first. */
		if (tu_snapshot_open_buffer(copy, size, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e) != -EBADMSG)
			fail_msg("bit %zu: flip accepted", bit);
		assert_true(e.msg[0] != 0);
	}
	free(copy);
	free(data);
}

/* Bytes changed to hostile values with the checksums fixed: open may accept, lookups stay in bounds. */
static void test_hostile_with_valid_crc(void **state)
{
	static const unsigned char vals[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	void *data = NULL;
	size_t size = 0, accepted = 0;
	unsigned char *copy;

	build_sample(&data, &size);
	copy = malloc(size);
	for (size_t i = 0; i < size; i++)
		for (size_t v = 0; v < ELEMENTSOF(vals); v++) {
			for (unsigned flags = 0; flags <= TU_SNAPSHOT_CHECK_RECORDS; flags++) {
				struct tu_snapshot *s = NULL;
				struct tu_err e = {};
				int r;

				memcpy(copy, data, size);
				if (copy[i] == vals[v])
					continue;
				copy[i] = vals[v];
				fix_crc(copy, size);
				r = tu_snapshot_open_buffer(copy, size, 0, flags, &s, &e);
				assert_true(r == 0 || r == -EBADMSG);
				if (r == 0) {
					accepted++;
					poke_all(s);
					tu_snapshot_close(s);
				} else {
					assert_true(e.msg[0] != 0);
				}
			}
		}
	/* Some edits (string bytes) are legal files: the walk above did exercise lookups. */
	assert_true(accepted > 0);
	free(copy);
	free(data);
}

static void set_u32_and_expect(const void *data, size_t size, size_t off, uint32_t val, const char *msg)
{
	unsigned char *copy = malloc(size);
	struct tu_snapshot *s = NULL;
	struct tu_err e = {};

	memcpy(copy, data, size);
	snap_put32(copy + off, val);
	fix_crc(copy, size);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), -EBADMSG);
	if (!strstr(e.msg, msg))
		fail_msg("offset %zu = 0x%x: '%s', want '%s'", off, val, e.msg, msg);
	free(copy);
}

static void test_header_errors(void **state)
{
	void *data = NULL;
	size_t size = 0;
	unsigned char *copy;
	struct tu_snapshot *s = NULL;
	struct tu_err e = {};

	build_sample(&data, &size);
	copy = malloc(size);
	memcpy(copy, data, size);
	memcpy(copy, "GARBAGE!", 8);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "bad magic"));

	set_u32_and_expect(data, size, H_VERSION, 2, "unsupported format version 2");
	set_u32_and_expect(data, size, H_KIND, TU_SNAPSHOT_KIND_STATE, "kind 2, expected 1");
	set_u32_and_expect(data, size, H_FLAGS, 1, "unknown header flags");
	set_u32_and_expect(data, size, H_N_SECTIONS, 100, "bad header size");
	set_u32_and_expect(data, size, H_FILE_SIZE, (uint32_t) size + 1, "the header says");
	/* Section 0 (passwd data): count and offsets. */
	set_u32_and_expect(data, size, SNAP_HDR_SIZE + 4, 0xffffffffu, "entries");
	set_u32_and_expect(data, size, SNAP_HDR_SIZE + 8, 0xfffffff0u, "outside the file");
	set_u32_and_expect(data, size, SNAP_HDR_SIZE + 12, 1, "outside the file");
	set_u32_and_expect(data, size, SNAP_HDR_SIZE + 16, 0xfffffff0u, "outside the file");
	set_u32_and_expect(data, size, SNAP_HDR_SIZE, 99, "unknown or repeated type 99");
	set_u32_and_expect(data, size, SNAP_HDR_SIZE + SNAP_SEC_SIZE, 1, "unknown or repeated type 1");
	/* Section 2 (by-name) slot count not a power of two. */
	set_u32_and_expect(data, size, SNAP_HDR_SIZE + 2 * SNAP_SEC_SIZE + 4, 3, "bad slot count 3");

	/* Checksums themselves. */
	memcpy(copy, data, size);
	copy[size - 1] ^= 0x10;
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "payload checksum mismatch"));
	memcpy(copy, data, size);
	copy[H_GENERATION] ^= 1;
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "header checksum mismatch"));
	free(copy);
	free(data);
}

static void test_blobs(void **state)
{
	const struct tu_blob blobs[] = { { 7, "hello", 5, NULL, 0 }, { 8, NULL, 0, NULL, 0 }, { 7, "\x00\x01\x02", 3, NULL, 0 } };
	void *data = NULL;
	size_t size = 0, sz = 0;
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pv;
	struct tu_err e = {};
	const void *p = NULL;
	uint32_t type = 0;

	assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_ACCOUNTS, blobs, 3, 1, 0, &data, &size, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "invalid blob snapshot kind 1"));
	assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, blobs, 3, 9, 123, &data, &size, &e), 0);
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "kind 2, expected 1"));
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_STATE, 0, &s, &e), 0);
	assert_int_equal(tu_snapshot_blob_count(s), 3);
	assert_int_equal(tu_snapshot_blob_at(s, 0, &type, &p, &sz), 0);
	assert_int_equal(type, 7);
	assert_int_equal(sz, 5);
	assert_memory_equal(p, "hello", 5);
	assert_int_equal(tu_snapshot_blob_at(s, 1, &type, &p, &sz), 0);
	assert_int_equal(type, 8);
	assert_int_equal(sz, 0);
	assert_int_equal(tu_snapshot_blob_at(s, 2, &type, &p, &sz), 0);
	assert_memory_equal(p, "\x00\x01\x02", 3);
	assert_int_equal(tu_snapshot_blob_at(s, 3, &type, &p, &sz), -ENOENT);
	assert_int_equal(tu_snapshot_find_login(s, "alice", &pv, &e), -ENOENT);
	assert_int_equal(tu_snapshot_passwd_count(s), 0);
	tu_snapshot_close(s);

	/* Every truncation and bit flip of a blob file too. */
	for (size_t n = 0; n < size; n++)
		assert_int_equal(tu_snapshot_open_buffer(data, n, 0, 0, &s, NULL), -EBADMSG);
	for (size_t bit = 0; bit < size * 8; bit++) {
		unsigned char *copy = malloc(size);

		memcpy(copy, data, size);
		copy[bit / 8] ^= (unsigned char) (1u << (bit % 8));
		assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, NULL), -EBADMSG);
		free(copy);
	}
	/* A blob entry pointing past its section, checksum fixed. */
	{
		unsigned char *copy = malloc(size);
		uint64_t ix = snap_le64((unsigned char *) data + SNAP_HDR_SIZE + 8);

		memcpy(copy, data, size);
		snap_put64(copy + ix + 16, 1u << 20);
		fix_crc(copy, size);
		assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, &e), -EBADMSG);
		assert_non_null(strstr(e.msg, "blob 0"));
		free(copy);
	}
	free(data);
}

static void test_files(void **state)
{
	char dir[] = "/tmp/test-snapshot-XXXXXX", path[256], link[300];
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pv;
	struct tu_err e = {};
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/accounts.db", dir);
	assert_int_equal(tu_snapshot_open(path, 0, 0, &s, &e), -ENOENT);
	assert_non_null(strstr(e.msg, path));

	assert_int_equal(tu_snapshot_write_accounts(path, pws, 3, grs, 4, 5, 6, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(tu_snapshot_open(path, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_CHECK_RECORDS, &s, &e), 0);
	assert_int_equal(tu_snapshot_find_login(s, "carol", &pv, &e), 0);
	assert_int_equal(pv.uid, 300002);
	/* Replacing the file does not disturb the open mapping. */
	assert_int_equal(tu_snapshot_write_accounts(path, pws, 1, NULL, 0, 6, 7, &e), 0);
	assert_int_equal(tu_snapshot_find_login(s, "carol", &pv, &e), 0);
	assert_string_equal(pv.shell, "/bin/zsh");
	tu_snapshot_close(s);

	/* Group-writable: refused. */
	assert_int_equal(chmod(path, 0664), 0);
	assert_int_equal(tu_snapshot_open(path, 0, 0, &s, &e), -EPERM);
	assert_non_null(strstr(e.msg, "writable by group or others"));
	assert_int_equal(chmod(path, 0644), 0);

	/* Owned by someone else than root or us: refused (only testable as root). */
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(tu_snapshot_open(path, 0, 0, &s, &e), -EPERM);
		assert_non_null(strstr(e.msg, "owned by uid 65534, neither root nor the reader"));
		assert_int_equal(chown(path, 0, 0), 0);
	}

	/* Through a symlink (the non-default cache.dir scheme). */
	snprintf(link, sizeof(link), "%s/link.db", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(tu_snapshot_open(link, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), 0);
	assert_int_equal(tu_snapshot_generation(s), 6);
	tu_snapshot_close(s);
	unlink(link);

	/* A directory and an empty file. */
	assert_int_equal(tu_snapshot_open(dir, 0, 0, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "not a regular file"));
	{
		int fd = open(link, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(tu_snapshot_open(link, 0, 0, &s, &e), -EBADMSG);
		assert_non_null(strstr(e.msg, "truncated"));
		unlink(link);
	}

	/* Blob file with its own mode. */
	{
		const struct tu_blob b = { 1, "x", 1, NULL, 0 };

		snprintf(link, sizeof(link), "%s/state.db", dir);
		assert_int_equal(tu_snapshot_write_blobs(link, 0600, TU_SNAPSHOT_KIND_STATE, &b, 1, 1, 1, &e), 0);
		assert_int_equal(stat(link, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		unlink(link);
	}
	/* Writing into a missing directory fails cleanly, naming the path. */
	snprintf(link, sizeof(link), "%s/missing/accounts.db", dir);
	assert_int_equal(tu_snapshot_write_accounts(link, pws, 1, NULL, 0, 1, 1, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "missing/accounts.db"));

	unlink(path);
	assert_int_equal(rmdir(dir), 0); /* no temp file left behind */
}

static void test_large(void **state)
{
	const size_t n = 20000;
	struct tu_pw_rec *pw = calloc(n, sizeof(*pw));
	struct tu_gr_rec *gr = calloc(n, sizeof(*gr));
	char (*names)[16] = calloc(n, 16);
	void *data = NULL;
	size_t size = 0;
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pv;
	struct tu_gr_view gv;

	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 16, "u%zu", i);
		pw[i] = (struct tu_pw_rec){ names[i], "g", "/h", "/s", (uid_t) (200000 + i), (gid_t) (200000 + i), NULL, 0 };
		gr[i] = (struct tu_gr_rec){ names[i], (gid_t) (200000 + i), NULL, 0 };
	}
	assert_int_equal(tu_snapshot_build_accounts(pw, n, gr, n, 1, 0, &data, &size, NULL), 0);
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_CHECK_RECORDS, &s,
						 NULL),
			 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(tu_snapshot_find_login(s, names[i], &pv, NULL), 0);
		assert_int_equal(pv.uid, 200000 + i);
		assert_int_equal(tu_snapshot_find_uid(s, (uid_t) (200000 + i), &pv, NULL), 0);
		assert_string_equal(pv.name, names[i]);
		assert_int_equal(tu_snapshot_find_gid(s, (gid_t) (200000 + i), &gv, NULL), 0);
		assert_string_equal(gv.name, names[i]);
	}
	assert_int_equal(tu_snapshot_find_login(s, "u20000", &pv, NULL), -ENOENT);
	tu_snapshot_close(s);
	free(data);
	free(names);
	free(gr);
	free(pw);
}

/* A one-line summary of every answer, to compare a damaged file's answers with the good one's. */
static void answers(const struct tu_snapshot *s, char *out, size_t size)
{
	static const char *const names[] = { "alice", "bob", "carol", "devs", "ops" };
	static const uint32_t ids[] = { 300000, 300001, 300002, 5000, 5001 };
	size_t len = 0;

	out[0] = 0;
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		struct tu_pw_view pv;
		struct tu_gr_view gv;
		int r;

		r = tu_snapshot_find_login(s, names[i], &pv, NULL);
		len += (size_t) snprintf(out + len, size - len, "[%d %s %u %s %s %s %zu]", r, r ? "" : pv.name,
					 r ? 0 : (unsigned) pv.uid, r ? "" : pv.gecos, r ? "" : pv.dir,
					 r ? "" : pv.shell, r ? 0 : pv.n_gids);
		r = tu_snapshot_find_uid(s, ids[i], &pv, NULL);
		len += (size_t) snprintf(out + len, size - len, "[%d %s]", r, r ? "" : pv.name);
		r = tu_snapshot_find_group(s, names[i], &gv, NULL);
		len += (size_t) snprintf(out + len, size - len, "[%d %u %zu]", r, r ? 0 : (unsigned) gv.gid,
					 r ? 0 : gv.n_members);
		r = tu_snapshot_find_gid(s, ids[i], &gv, NULL);
		len += (size_t) snprintf(out + len, size - len, "[%d %s]", r, r ? "" : gv.name);
	}
}

static void test_lazy(void **state)
{
	void *data = NULL;
	size_t size = 0, opened = 0;
	unsigned char *copy;
	struct tu_snapshot *s = NULL;
	char good[4096], got[4096];

	build_sample(&data, &size);
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_LAZY, &s, NULL), 0);
	answers(s, good, sizeof(good));
	tu_snapshot_close(s);
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, NULL), 0);
	answers(s, got, sizeof(got));
	tu_snapshot_close(s);
	assert_string_equal(good, got);
	assert_non_null(strstr(good, "[0 alice 300000 alice@example.com /home/alice /bin/bash 3]"));

	/* Every bit flip: the open fails, or every answer is the good one or -EBADMSG (never wrong data). */
	copy = malloc(size);
	for (size_t bit = 0; bit < size * 8; bit++) {
		memcpy(copy, data, size);
		copy[bit / 8] ^= (unsigned char) (1u << (bit % 8));
		if (tu_snapshot_open_buffer(copy, size, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_LAZY, &s, NULL) < 0)
			continue;
		opened++;
		answers(s, got, sizeof(got));
		poke_all(s);
		tu_snapshot_close(s);
		if (strcmp(good, got) != 0 && strstr(got, "[-74") == NULL)
			fail_msg("bit %zu: '%s'", bit, got);
		/* Damaged answers are -EBADMSG (-74), never a different record. */
		for (const char *p = got; (p = strchr(p, '[')); p++)
			assert_true(strncmp(p, "[-74", 4) == 0 || strncmp(p, "[-2", 3) == 0 ||
				    strncmp(p, "[0", 2) == 0);
	}
	assert_true(opened > 0); /* payload flips pass the lazy open and are caught per lookup */
	free(copy);
	free(data);
}

static void test_meta(void **state)
{
	const struct tu_snapshot_meta meta = { .negative_ttl_usec = 60000000 };
	void *data = NULL, *plain = NULL;
	size_t size = 0, psize = 0;
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pv;

	assert_int_equal(tu_snapshot_build_accounts_meta(pws, 3, grs, 4, &meta, 1, 2, &data, &size, NULL), 0);
	for (unsigned flags = 0; flags <= (TU_SNAPSHOT_LAZY | TU_SNAPSHOT_CHECK_RECORDS); flags++) {
		assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, flags, &s, NULL), 0);
		assert_int_equal(tu_snapshot_negative_ttl_usec(s), 60000000);
		assert_int_equal(tu_snapshot_find_login(s, "bob", &pv, NULL), 0);
		tu_snapshot_close(s);
	}
	/* Without meta: 0 (unknown). */
	build_sample(&plain, &psize);
	assert_int_equal(tu_snapshot_open_buffer(plain, psize, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, NULL), 0);
	assert_int_equal(tu_snapshot_negative_ttl_usec(s), 0);
	tu_snapshot_close(s);
	/* Every flip of a file with meta is caught too. */
	for (size_t bit = 0; bit < size * 8; bit++) {
		unsigned char *copy = malloc(size);

		memcpy(copy, data, size);
		copy[bit / 8] ^= (unsigned char) (1u << (bit % 8));
		assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, NULL), -EBADMSG);
		free(copy);
	}
	free(plain);
	free(data);
}

static void test_lazy_chunks(void **state)
{
	const size_t n = 20000;
	struct tu_pw_rec *pw = calloc(n, sizeof(*pw));
	char (*names)[16] = calloc(n, 16);
	void *data = NULL;
	size_t size = 0, ok = 0, badmsg = 0;
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pv;
	struct tu_err e = {};

	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 16, "u%zu", i);
		pw[i] = (struct tu_pw_rec){ names[i], "g", "/h", "/s", (uid_t) (200000 + i), 1, NULL, 0 };
	}
	assert_int_equal(tu_snapshot_build_accounts(pw, n, NULL, 0, 1, 0, &data, &size, NULL), 0);
	assert_true(size > 4 * SNAP_CHUNK);
	/* Damage one byte in the second chunk of the passwd records. */
	((unsigned char *) data)[SNAP_HDR_SIZE + 9 * SNAP_SEC_SIZE + SNAP_CHUNK + 100] ^= 0x01;
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, 0, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "payload checksum mismatch"));
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_LAZY, &s, &e), 0);
	for (size_t i = 0; i < n; i++) {
		int r = tu_snapshot_find_login(s, names[i], &pv, &e);

		if (r == 0) {
			assert_int_equal(pv.uid, 200000 + i);
			ok++;
		} else {
			assert_int_equal(r, -EBADMSG);
			assert_non_null(strstr(e.msg, "checksum mismatch in bytes"));
			badmsg++;
		}
	}
	/* Only the records in the damaged chunk are refused. */
	assert_true(badmsg > 0 && badmsg < n / 10);
	assert_true(ok > n - n / 10);
	tu_snapshot_close(s);
	free(data);
	free(names);
	free(pw);
}

static void test_torture(void **state)
{
#ifdef TORTURE
	void *good = NULL;
	size_t gsize = 0;
	long n;

	build_sample(&good, &gsize);
	/* Fail allocation 0, 1, 2, ... until a whole build + open + lookup succeeds without failing any. */
	for (n = 0; n < 1000; n++) {
		void *data = NULL;
		size_t size = 0;
		struct tu_snapshot *s = NULL;
		struct tu_pw_view pv;
		struct tu_err e = {};
		int r;

		n_allocs = 0;
		fail_at = n;
		r = tu_snapshot_build_accounts(pws, 3, grs, 4, 42, 1700000000000000, &data, &size, &e);
		if (r == 0)
			r = tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_LAZY, &s, &e);
		fail_at = -1;
		if (r < 0) {
			assert_int_equal(r, -ENOMEM);
			assert_non_null(strstr(e.msg, "out of memory"));
			assert_null(s);
			free(data);
			continue;
		}
		assert_int_equal(size, gsize);
		assert_memory_equal(data, good, size);
		assert_int_equal(tu_snapshot_find_login(s, "alice", &pv, NULL), 0);
		tu_snapshot_close(s);
		free(data);
		if (n_allocs <= n)
			break; /* nothing left to fail */
	}
	assert_true(n > 3 && n < 1000);
	free(good);
#else
	skip();
#endif
}

/* ---- the blob key index (BLOB_KEYS) ---- */

/* Out of type order on purpose: the writer groups them (stable). */
static const struct tu_blob keyed[] = {
	{ 2, "role-admin", 10, "admin", 5 },
	{ 1, "user-alice", 10, "alice", 5 },
	{ 3, "lock-1", 6, NULL, 0 },
	{ 1, "user-bob", 8, "bob", 3 },
	{ 2, "role-dev", 8, "dev", 3 },
	{ 1, "nameless", 8, NULL, 0 },
	{ 5, "ca", 2, NULL, 0 },
	{ 1, "user-admin", 10, "admin", 5 },
};

static void build_keyed(void **data, size_t *size)
{
	struct tu_err e = {};

	assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, keyed, ELEMENTSOF(keyed), 3, 1700000000000000,
						 data, size, &e),
			 0);
}

/* Recomputes the chunk table, its checksum and both others (a LAZY reader's view of "valid"). */
static void fix_all_crc(unsigned char *b, size_t size)
{
	uint32_t hdr = snap_le32(b + H_HDR_SIZE), nsec = snap_le32(b + H_N_SECTIONS);

	if (hdr < SNAP_HDR_SIZE || hdr > size || nsec > SNAP_MAX_SECS || hdr != SNAP_HDR_SIZE + SNAP_SEC_SIZE * nsec)
		return;
	for (uint32_t i = 0; i < nsec; i++) {
		const unsigned char *e = b + SNAP_HDR_SIZE + SNAP_SEC_SIZE * i;
		uint64_t off = snap_le64(e + 8), len = snap_le64(e + 16);

		if (snap_le32(e) != SEC_CHUNKS || off < hdr || off > size || len > size - off)
			continue;
		for (uint64_t k = 0; 4 * k + 4 <= len; k++) {
			size_t a = hdr + k * SNAP_CHUNK, z = a + SNAP_CHUNK > off ? off : a + SNAP_CHUNK;

			if (a < z)
				snap_put32(b + off + 4 * k, tu_crc32c(0, b + a, z - a));
		}
		snap_put32(b + H_CHUNK_CRC, tu_crc32c(0, b + off, len));
	}
	fix_crc(b, size);
}

/* Every key lookup, range and blob: one line, to compare answers; reads every byte it is given. */
static void key_answers(const struct tu_snapshot *s, char *out, size_t size)
{
	static const char *const keys[] = { "alice", "bob", "admin", "dev", "x", "" };
	static const uint32_t types[] = { 1, 2, 3, 5, 9 };
	size_t len = 0;

	out[0] = 0;
	for (size_t t = 0; t < ELEMENTSOF(types); t++) {
		size_t first = 0, count = 0;
		int r = tu_snapshot_blob_type_range(s, types[t], &first, &count, NULL);

		assert_true(r == 0 || r == -EOPNOTSUPP || r == -EBADMSG);
		len += (size_t) snprintf(out + len, size - len, "{%u: %d %zu+%zu}", types[t], r, r ? 0 : first,
					 r ? 0 : count);
		for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
			const void *p = NULL;
			size_t sz = 0;

			r = tu_snapshot_find_blob(s, types[t], keys[k], strlen(keys[k]), &p, &sz, NULL);
			assert_true(r == 0 || r == -ENOENT || r == -ENOTUNIQ || r == -EOPNOTSUPP || r == -EBADMSG);
			len += (size_t) snprintf(out + len, size - len, "[%d %.*s]", r, r ? 0 : (int) sz,
						 r ? "" : (const char *) p);
		}
	}
	for (size_t i = 0; i <= tu_snapshot_blob_count(s); i++) {
		const void *p = NULL;
		size_t sz = 0;
		uint32_t type = 0;
		int r = tu_snapshot_blob_at(s, i, &type, &p, &sz);

		assert_true(r == 0 || r == -ENOENT || r == -EBADMSG);
		len += (size_t) snprintf(out + len, size - len, "<%d %u %.*s>", r, r ? 0 : type, r ? 0 : (int) sz,
					 r ? "" : (const char *) p);
	}
}

static void test_blob_keys(void **state)
{
	static const char want[] =
	    "{1: 0 0+4}[0 user-alice][0 user-bob][0 user-admin][-2 ][-2 ][-2 ]"
	    "{2: 0 4+2}[-2 ][-2 ][0 role-admin][0 role-dev][-2 ][-2 ]"
	    "{3: 0 6+1}[-2 ][-2 ][-2 ][-2 ][-2 ][-2 ]"
	    "{5: 0 7+1}[-2 ][-2 ][-2 ][-2 ][-2 ][-2 ]"
	    "{9: 0 0+0}[-2 ][-2 ][-2 ][-2 ][-2 ][-2 ]"
	    "<0 1 user-alice><0 1 user-bob><0 1 nameless><0 1 user-admin><0 2 role-admin><0 2 role-dev>"
	    "<0 3 lock-1><0 5 ca><-2 0 >";
	const struct tu_blob dup[] = { { 1, "a", 1, "k", 1 }, { 1, "b", 1, "k", 1 }, { 1, "c", 1, "j", 1 } };
	const struct tu_blob bad_key[] = { { 1, "a", 1, NULL, 3 } };
	void *data = NULL, *plain = NULL;
	size_t size = 0, psize = 0, sz = 0, first = 9, count = 9;
	struct tu_snapshot *s = NULL;
	struct tu_err e = {};
	char got[4096];
	const void *p = NULL;

	build_keyed(&data, &size);
	for (unsigned flags = 0; flags <= (TU_SNAPSHOT_LAZY | TU_SNAPSHOT_CHECK_RECORDS); flags++) {
		assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_STATE, flags, &s, &e), 0);
		key_answers(s, got, sizeof(got));
		if (strcmp(got, want) != 0)
			fail_msg("flags %u: '%s'", flags, got);
		tu_snapshot_close(s);
	}

	/* A file without keys (written by an older version, or a caller without keys): the
	 * blobs keep their order and the callers are told to scan. */
	assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE,
						 (const struct tu_blob[]){ { 2, "r", 1, NULL, 0 }, { 1, "u", 1, NULL, 0 } }, 2, 1, 0,
						 &plain, &psize, &e),
			 0);
	assert_int_equal(tu_snapshot_open_buffer(plain, psize, TU_SNAPSHOT_KIND_STATE, TU_SNAPSHOT_LAZY, &s, &e), 0);
	assert_int_equal(tu_snapshot_find_blob(s, 1, "u", 1, &p, &sz, &e), -EOPNOTSUPP);
	assert_int_equal(tu_snapshot_blob_type_range(s, 1, &first, &count, &e), -EOPNOTSUPP);
	tu_snapshot_close(s);
	free(plain);

	/* A key twice in one type: the lookup says so (the caller scans); others still found. */
	assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, dup, 3, 1, 0, &plain, &psize, &e), 0);
	assert_int_equal(tu_snapshot_open_buffer(plain, psize, TU_SNAPSHOT_KIND_STATE, TU_SNAPSHOT_CHECK_RECORDS, &s, &e),
			 0);
	assert_int_equal(tu_snapshot_find_blob(s, 1, "k", 1, &p, &sz, &e), -ENOTUNIQ);
	assert_int_equal(tu_snapshot_find_blob(s, 1, "j", 1, &p, &sz, &e), 0);
	assert_memory_equal(p, "c", 1);
	tu_snapshot_close(s);
	free(plain);

	/* Writer input checks. */
	assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, bad_key, 1, 1, 0, &plain, &psize, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "NULL key"));
	{
		char *big = calloc(1, TU_SNAPSHOT_MAX_KEY + 1);
		const struct tu_blob b[] = { { 1, "a", 1, big, TU_SNAPSHOT_MAX_KEY + 1 } };

		assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, b, 1, 1, 0, &plain, &psize, &e),
				 -EMSGSIZE);
		free(big);
	}
	{
		struct tu_blob many[KEYS_MAX_RANGES + 1];

		for (size_t i = 0; i < ELEMENTSOF(many); i++)
			many[i] = (struct tu_blob){ (uint32_t) i, "x", 1, "k", 1 };
		assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, many, ELEMENTSOF(many), 1, 0, &plain,
							 &psize, &e),
				 -EMSGSIZE);
		assert_int_equal(tu_snapshot_build_blobs(TU_SNAPSHOT_KIND_STATE, many, KEYS_MAX_RANGES, 1, 0, &plain,
							 &psize, &e),
				 0);
		free(plain);
	}

	/* An accounts file has no key index. */
	{
		void *acc = NULL;
		size_t asize = 0;

		build_sample(&acc, &asize);
		assert_int_equal(tu_snapshot_open_buffer(acc, asize, 0, 0, &s, &e), 0);
		assert_int_equal(tu_snapshot_find_blob(s, 1, "alice", 5, &p, &sz, &e), -EOPNOTSUPP);
		assert_int_equal(tu_snapshot_blob_type_range(s, 1, &first, &count, &e), -EOPNOTSUPP);
		tu_snapshot_close(s);
		free(acc);
	}
	free(data);
}

/* Truncations and bit flips of a keyed file: refused at open, or (LAZY) answers that are the
 * good ones or -EBADMSG, never other data. */
static void test_blob_keys_damage(void **state)
{
	void *data = NULL;
	size_t size = 0, opened = 0;
	unsigned char *copy;
	struct tu_snapshot *s = NULL;
	char good[4096], got[4096];

	build_keyed(&data, &size);
	assert_int_equal(tu_snapshot_open_buffer(data, size, TU_SNAPSHOT_KIND_STATE, 0, &s, NULL), 0);
	key_answers(s, good, sizeof(good));
	tu_snapshot_close(s);
	for (size_t n = 0; n < size; n++)
		for (unsigned flags = 0; flags <= TU_SNAPSHOT_LAZY; flags += TU_SNAPSHOT_LAZY)
			assert_int_equal(tu_snapshot_open_buffer(data, n, 0, flags, &s, NULL), -EBADMSG);
	copy = malloc(size);
	for (size_t bit = 0; bit < size * 8; bit++) {
		memcpy(copy, data, size);
		copy[bit / 8] ^= (unsigned char) (1u << (bit % 8));
		assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, NULL), -EBADMSG);
		assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, TU_SNAPSHOT_CHECK_RECORDS, &s, NULL), -EBADMSG);
		if (tu_snapshot_open_buffer(copy, size, 0, TU_SNAPSHOT_LAZY, &s, NULL) < 0)
			continue;
		opened++;
		key_answers(s, got, sizeof(got));
		tu_snapshot_close(s);
		/* answer by answer: the good file's, or -EBADMSG (-74) */
		const char *g = good, *p = got;

		while (*g && *p) {
			size_t gn = strcspn(g + 1, "[<{") + 1, pn = strcspn(p + 1, "[<{") + 1;

			if (!(gn == pn && strncmp(g, p, gn) == 0) && !memmem(p, pn, " -74 ", 5) &&
			    strncmp(p + 1, "-74", 3) != 0)
				fail_msg("bit %zu: '%.*s' instead of '%.*s'", bit, (int) pn, p, (int) gn, g);
			g += gn;
			p += pn;
		}
		if (*g || *p)
			fail_msg("bit %zu: '%s' vs '%s'", bit, got, good);
	}
	assert_true(opened > 0);
	free(copy);
	free(data);
}

/* Every byte set to hostile values, every checksum recomputed (the chunk table too): open may
 * accept with any flags, and lookups never read outside the file (ASan/valgrind). */
static void test_blob_keys_hostile(void **state)
{
	static const unsigned char vals[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	static const unsigned flag_sets[] = { 0, TU_SNAPSHOT_LAZY, TU_SNAPSHOT_CHECK_RECORDS };
	void *data = NULL;
	size_t size = 0, accepted = 0, strict_refused = 0;
	unsigned char *copy;
	char got[4096];

	build_keyed(&data, &size);
	copy = malloc(size);
	for (size_t i = 0; i < size; i++)
		for (size_t v = 0; v < ELEMENTSOF(vals); v++)
			for (size_t f = 0; f < ELEMENTSOF(flag_sets); f++) {
				struct tu_snapshot *s = NULL;
				struct tu_err e = {};
				int r;

				memcpy(copy, data, size);
				if (copy[i] == vals[v])
					continue;
				copy[i] = vals[v];
				fix_all_crc(copy, size);
				r = tu_snapshot_open_buffer(copy, size, 0, flag_sets[f], &s, &e);
				assert_true(r == 0 || r == -EBADMSG);
				if (r < 0) {
					assert_true(e.msg[0] != 0);
					strict_refused += flag_sets[f] == TU_SNAPSHOT_CHECK_RECORDS;
					continue;
				}
				accepted++;
				key_answers(s, got, sizeof(got));
				tu_snapshot_close(s);
			}
	assert_true(accepted > 0);
	assert_true(strict_refused > 0);
	free(copy);
	free(data);
}

/* The strict check (CHECK_RECORDS) catches an index a lookup would misread: a slot whose hash
 * is not its key's, a slot moved out of its probe chain, a blob in two slots, a blob of
 * another type inside a range. */
static void test_blob_keys_strict(void **state)
{
	void *data = NULL;
	size_t size = 0, koff = 0, slots = 0, used[4], nused = 0;
	struct tu_snapshot *s = NULL;
	struct tu_err e = {};
	unsigned char *b, *copy;
	uint32_t nsec, nr;

	build_keyed(&data, &size);
	b = data;
	nsec = snap_le32(b + H_N_SECTIONS);
	for (uint32_t i = 0; i < nsec; i++)
		if (snap_le32(b + SNAP_HDR_SIZE + SNAP_SEC_SIZE * i) == SEC_BLOB_KEYS) {
			koff = (size_t) snap_le64(b + SNAP_HDR_SIZE + SNAP_SEC_SIZE * i + 8);
			slots = snap_le32(b + SNAP_HDR_SIZE + SNAP_SEC_SIZE * i + 4);
		}
	assert_true(koff > 0 && slots > 5); /* 5 keys, load <= 3/4 */
	nr = snap_le32(b + koff);
	assert_int_equal(nr, 4); /* types 1, 2, 3, 5 */
	size_t tab = koff + KEYS_HEAD + KEYS_RANGE * nr;
	for (size_t i = 0; i < slots && nused < 4; i++)
		if (snap_le32(b + tab + KEYS_SLOT * i + 4) != SNAP_EMPTY_SLOT)
			used[nused++] = i;
	assert_int_equal(nused, 4);
	copy = malloc(size);

	/* wrong hash */
	memcpy(copy, data, size);
	snap_put32(copy + tab + KEYS_SLOT * used[0], snap_le32(copy + tab + KEYS_SLOT * used[0]) ^ 0x100);
	fix_all_crc(copy, size);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, &e), 0);
	tu_snapshot_close(s);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, TU_SNAPSHOT_CHECK_RECORDS, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "wrong hash, unreachable or a second slot"));

	/* a second slot for the same blob (an empty slot filled with a copy of a used one) */
	memcpy(copy, data, size);
	for (size_t i = 0; i < slots; i++)
		if (snap_le32(copy + tab + KEYS_SLOT * i + 4) == SNAP_EMPTY_SLOT) {
			memcpy(copy + tab + KEYS_SLOT * i, copy + tab + KEYS_SLOT * used[1], KEYS_SLOT);
			break;
		}
	fix_all_crc(copy, size);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, TU_SNAPSHOT_CHECK_RECORDS, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "blob key index slot"));

	/* a slot pointing past the blobs, or its key past the key bytes: refused without LAZY */
	memcpy(copy, data, size);
	snap_put32(copy + tab + KEYS_SLOT * used[2] + 4, 1000);
	fix_all_crc(copy, size);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "out of range"));
	memcpy(copy, data, size);
	snap_put32(copy + tab + KEYS_SLOT * used[2] + 8, 0xfffffff0u);
	fix_all_crc(copy, size);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, &e), -EBADMSG);
	/* LAZY: the open accepts it, the lookup that reaches the slot refuses it */
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, TU_SNAPSHOT_LAZY, &s, &e), 0);
	{
		static const char *const keys[] = { "alice", "bob", "admin", "dev" };
		static const uint32_t types[] = { 1, 1, 1, 2 };
		size_t refused = 0;

		for (size_t k = 0; k < 4; k++) {
			const void *p;
			size_t sz;
			int r = tu_snapshot_find_blob(s, types[k], keys[k], strlen(keys[k]), &p, &sz, &e);

			assert_true(r == 0 || r == -EBADMSG || r == -ENOENT);
			refused += r == -EBADMSG;
		}
		const void *p;
		size_t sz;
		refused += tu_snapshot_find_blob(s, 2, "admin", 5, &p, &sz, &e) == -EBADMSG;
		assert_true(refused >= 1);
	}
	tu_snapshot_close(s);

	/* ranges: not contiguous, not covering, types not increasing */
	memcpy(copy, data, size);
	snap_put32(copy + koff + KEYS_HEAD + KEYS_RANGE + 8, 3);
	fix_all_crc(copy, size);
	for (unsigned flags = 0; flags <= TU_SNAPSHOT_LAZY; flags += TU_SNAPSHOT_LAZY) {
		assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, flags, &s, &e), -EBADMSG);
		assert_non_null(strstr(e.msg, "not the next type or blobs"));
	}
	memcpy(copy, data, size);
	snap_put32(copy + koff + KEYS_HEAD + 3 * KEYS_RANGE + 12, 2);
	fix_all_crc(copy, size);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, TU_SNAPSHOT_LAZY, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "ranges cover 9 of 8 blobs"));
	memcpy(copy, data, size);
	snap_put32(copy + koff + KEYS_HEAD + KEYS_RANGE, 1);
	fix_all_crc(copy, size);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, TU_SNAPSHOT_LAZY, &s, &e), -EBADMSG);

	/* a blob of another type inside a range: caught without LAZY */
	memcpy(copy, data, size);
	{
		size_t ix = (size_t) snap_le64(copy + SNAP_HDR_SIZE + 8);

		snap_put32(copy + ix + BLOB_ENTRY * 1, 2);
	}
	fix_all_crc(copy, size);
	assert_int_equal(tu_snapshot_open_buffer(copy, size, 0, 0, &s, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "is not of its key index range's type"));
	free(copy);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_writer_rejects),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_hostile_with_valid_crc),
		cmocka_unit_test(test_header_errors),
		cmocka_unit_test(test_blobs),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_lazy),
		cmocka_unit_test(test_lazy_chunks),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_torture),
		cmocka_unit_test(test_blob_keys),
		cmocka_unit_test(test_blob_keys_damage),
		cmocka_unit_test(test_blob_keys_hostile),
		cmocka_unit_test(test_blob_keys_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
