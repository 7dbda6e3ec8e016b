/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c.c - CRC-32C for snapshot checksums.  Layer: libcore/base.
 * Slicing-by-8 tables built once under pthread_once (no constructor, STYLE
 * §2.9.6); the SSE4.2 crc32 instruction when the CPU has it, because the NSS
 * module checksums the whole snapshot (megabytes at 100k accounts) the first
 * time a process looks a name up (docs/PERFORMANCE.md).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

#include "crc32c.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t tu_crc32c_sw(uint32_t crc, const void *data, size_t size)
{
	const unsigned char *p = data;

	(void) pthread_once(&table_once, table_init);
	crc = ~crc;
	while (size >= 8) {
		uint32_t lo, hi;

		/* Little-endian assembly keeps this correct on any host byte order. */
		lo = (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
		     (uint32_t) p[3] << 24;
		hi = (uint32_t) p[4] | (uint32_t) p[5] << 8 | (uint32_t) p[6] << 16 |
		     (uint32_t) p[7] << 24;
		lo ^= crc;
		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		      table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^ table[3][hi & 0xff] ^
		      table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		size -= 8;
	}
	while (size--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__)
static bool have_sse42;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void cpu_init(void)
{
	unsigned a, b, c, d;

	if (__get_cpuid(1, &a, &b, &c, &d))
		have_sse42 = (c & bit_SSE4_2) != 0;
}

/*
 * Three streams at once: the crc32 instruction takes 3 cycles but a new one can start every
 * cycle, so one chain runs at a third of the speed the CPU offers.  The register is linear
 * over GF(2): after A||B it is (the register after A) x^(8|B|) mod P xor (B's register started
 * from 0), so three blocks are summed with two multiplications.  Polynomials are bit-reflected
 * like the CRC (bit 31 is x^0).
 */
static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	uint32_t prod = 0;

	for (int i = 0; i < 32; i++, a <<= 1) {
		if (a & 0x80000000u)
			prod ^= b;
		b = (b & 1) ? (b >> 1) ^ POLY : b >> 1; /* b * x */
	}
	return prod;
}

static uint32_t x_pow2[64]; /* x^(2^k) mod P */
static pthread_once_t pow_once = PTHREAD_ONCE_INIT;

static void pow_init(void)
{
	x_pow2[0] = 0x40000000u; /* x */
	for (int k = 1; k < 64; k++)
		x_pow2[k] = gf_mul(x_pow2[k - 1], x_pow2[k - 1]);
}

/* x^(8 n) mod P: the register's factor for n more bytes. */
static uint32_t x_pow_bytes(uint64_t n)
{
	uint32_t r = 0x80000000u; /* 1 */

	(void) pthread_once(&pow_once, pow_init);
	n *= 8;
	for (int k = 0; n; k++, n >>= 1)
		if (n & 1)
			r = gf_mul(r, x_pow2[k]);
	return r;
}

#define CRC_3WAY_MIN 1024u

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p,
							    size_t size)
{
	uint64_t c = ~crc;

	while (size && ((uintptr_t) p & 7)) {
		c = _mm_crc32_u8((uint32_t) c, *p++);
		size--;
	}
	if (size >= CRC_3WAY_MIN) {
		size_t len = size / 24 * 8; /* each stream: a multiple of 8 bytes */
		const unsigned char *q = p + len, *r = p + 2 * len;
		uint64_t c2 = 0, c3 = 0, k;

		for (size_t i = 0; i < len; i += 8) {
			uint64_t v1, v2, v3;

			memcpy(&v1, p + i, 8);
			memcpy(&v2, q + i, 8);
			memcpy(&v3, r + i, 8);
			c = _mm_crc32_u64(c, v1);
			c2 = _mm_crc32_u64(c2, v2);
			c3 = _mm_crc32_u64(c3, v3);
		}
		k = x_pow_bytes(len);
		c = gf_mul((uint32_t) k, gf_mul((uint32_t) k, (uint32_t) c) ^ (uint32_t) c2) ^
		    (uint32_t) c3;
		p += 3 * len;
		size -= 3 * len;
	}
	while (size >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		size -= 8;
	}
	while (size--)
		c = _mm_crc32_u8((uint32_t) c, *p++);
	return ~(uint32_t) c;
}
#endif

uint32_t tu_crc32c(uint32_t crc, const void *data, size_t size)
{
#if defined(__x86_64__)
	(void) pthread_once(&cpu_once, cpu_init);
	if (have_sse42)
		return crc32c_hw(crc, data, size);
#endif
	return tu_crc32c_sw(crc, data, size);
}
