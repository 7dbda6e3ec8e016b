/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-find.c - libFuzzer target for the reader of a Proxy's /webapi/find
 * answer (libcore/dial/find-parse.c): bounded JSON, depth, escapes,
 * TunnelAddr() address rules.  The whole input is the HTTP body.  Checks
 * that a success fills NUL-terminated, printable fields.
 * Seeds: tests/fuzz/corpus/find/.
 *
 * Build by hand, from the source dir with a configured build dir B:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include B/config.h \
 *     -Ilibcore -Ilibcore/base tests/fuzz/fuzz-find.c libcore/dial/find-parse.c \
 *     libcore/base/err.c libcore/base/parse.c -o fuzz-find
 *   ./fuzz-find tests/fuzz/corpus/find
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dial/dial.h"
#include "err.h"

#define FUZZ_MAX_INPUT (1u << 17)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n >= size)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' &&
		    s[i] != '\b' && s[i] != '\f')
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_dial_memo m = {.upgrade = -1};
	struct tu_err e;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	tu_err_clear(&e);
	if (tu_dial_find_parse((const char *) data, size, 443, &m, &e) == 0) {
		if (!m.found)
			abort();
		check_str(m.cluster, sizeof(m.cluster));
		check_str(m.tunnel_addr, sizeof(m.tunnel_addr));
	} else if (e.code == 0 || !e.msg[0]) {
		abort();
	}
	return 0;
}
