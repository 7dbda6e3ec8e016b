/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * snapshot checksum.  Layer: libcore/base (libc only).  Portable
 * slicing-by-8 tables; on x86-64 with SSE4.2 (checked once with cpuid) the
 * crc32 instruction is used instead: same results.  Thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Continues a CRC: start with crc = 0, feed the data in any split.
 * tu_crc32c(0, "123456789", 9) == 0xE3069283.
 */
uint32_t tu_crc32c(uint32_t crc, const void *data, size_t size);

/* The portable implementation only (for tests comparing both). */
uint32_t tu_crc32c_sw(uint32_t crc, const void *data, size_t size);
