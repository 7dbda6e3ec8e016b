/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-parse.c - libFuzzer target for libcore/base/parse.c: integers,
 * durations, sizes and host:port.  Checks the contract too: on failure the
 * ret_ values are untouched; a parsed host never contains brackets.
 *
 * Build by hand (not wired into the Makefile):
 *   clang -g -fsanitize=fuzzer,address,undefined -include build/config.h \
 *     -Ilibcore/base tests/fuzz/fuzz-parse.c libcore/base/parse.c -o fuzz-parse
 *   ./fuzz-parse -max_total_time=60 tests/fuzz/corpus/parse
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL UINT64_C(0x5a5a5a5a5a5a5a5a)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512];
	uint64_t v;
	uint32_t v32;
	char *host;
	uint16_t port;
	const char *cur;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	v = SENTINEL;
	if (tu_parse_u64(s, &v) < 0 && v != SENTINEL)
		abort();
	v32 = 0x5a5a5a5a;
	if (tu_parse_u32(s, &v32) < 0 && v32 != 0x5a5a5a5a)
		abort();
	v = SENTINEL;
	if (tu_parse_duration(s, &v) < 0 && v != SENTINEL)
		abort();
	v = SENTINEL;
	if (tu_parse_size(s, &v) < 0 && v != SENTINEL)
		abort();
	(void) tu_parse_check_hostname(s);

	cur = s;
	if (tu_parse_digits(&cur, s + size, &v) == 0 && (cur == s || cur > s + size))
		abort();

	host = NULL;
	port = 0;
	if (tu_parse_hostport(s, size % 2 ? 3025 : 0, &host, &port) == 0) {
		if (!host || !*host || port == 0 || strchr(host, '[') || strchr(host, ']'))
			abort();
		free(host);
	} else if (host || port) {
		abort();
	}
	return 0;
}
