/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-dns.c - libFuzzer target for the Auth name resolver's parsers
 * (libcore/resolve.c): DNS answers (what a hostile network sends back),
 * resolv.conf and hosts-file text.  Input: byte 0 selects (% 4): 0 an answer
 * to an A query for auth.example.com, 1 the same for AAAA, 2 resolv.conf
 * text, 3 hosts-file text looked up for "auth.example.com"; the rest is the
 * message or the text.  For answers the query id is taken from the
 * message's own first two bytes, so the parser goes past the id check.
 * Seeds: tests/fuzz/corpus/dns/.
 *
 * Build by hand (or tools/fuzz.sh dns), from the source dir with a
 * configured build dir B:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include B/config.h \
 *     -Ilibcore -Ilibcore/base tests/fuzz/fuzz-dns.c libcore/resolve.c \
 *     libcore/base/err.c -o fuzz-dns
 *   ./fuzz-dns tests/fuzz/corpus/dns
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"

#define FUZZ_MAX_INPUT (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_resolve_result r = {.ttl_sec = TU_RESOLVE_CACHE_MAX_S};
	char list[TU_RESOLVE_MAX_ADDRS * 50];

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	unsigned mode = data[0] % 4;
	const uint8_t *m = data + 1;
	size_t n = size - 1;

	if (mode < 2) {
		int tc = 0;
		uint16_t id = n >= 2 ? (uint16_t) ((m[0] << 8) | m[1]) : 0;
		int rc = tu_dns_parse_answer(m, n, "auth.example.com", mode ? 28 : 1, id, &r, &tc);
		if (rc < -200 || rc > 15 || r.n > TU_RESOLVE_MAX_ADDRS)
			abort();
	} else if (mode == 2) {
		struct tu_resolv_conf c;
		tu_resolv_conf_parse((const char *) m, n, &c);
		if (c.n_ns < 1 || c.n_ns > TU_RESOLVE_MAX_NS || c.n_search > TU_RESOLVE_MAX_SEARCH ||
		    c.ndots > 15 || c.timeout < 1 || c.timeout > 30 || c.attempts < 1 ||
		    c.attempts > 5)
			abort();
		for (size_t i = 0; i < c.n_search; i++)
			if (strlen(c.search[i]) > TU_RESOLVE_MAX_NAME)
				abort();
	} else {
		(void) tu_hosts_lookup((const char *) m, n, "auth.example.com", &r);
		if (r.n > TU_RESOLVE_MAX_ADDRS)
			abort();
	}
	if (tu_resolve_format_list(&r, list, sizeof(list)) < 0)
		abort();
	return 0;
}
