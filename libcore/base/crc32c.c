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

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p,
							    size_t size)
{
	uint64_t c = ~crc;

	while (size && ((uintptr_t) p & 7)) {
		c = _mm_crc32_u8((uint32_t) c, *p++);
		size--;
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
