/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-ws.c - libFuzzer target for what the Proxy (or whatever answers on
 * its address) sends on the connection upgrade (libcore/dial/ws.c): byte 0
 * selects (% 2): 0 the upgrade response head checked against a fixed key;
 * 1 a stream of WebSocket frames decoded through the carrier with no
 * connection, handed over data[1] bytes at a time (0 = all), reading into
 * buffers of 1..64 bytes, and the pongs it queues.  Never a crash, never a
 * loop without end.  Seeds: tests/fuzz/corpus/ws/.
 *
 * Build by hand, from the source dir with a configured build dir B (the
 * dialers live in the transport module, which exports nothing else: compile
 * them in, with the core library for the rest):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include B/config.h \
 *     -Ilibcore -Ilibcore/base tests/fuzz/fuzz-ws.c libcore/dial/ws.c \
 *     libcore/dial/ws-tls.c libcore/dial/tunnel-pump.c \
 *     -LB/.libs -lteleport-unix -lssl -lcrypto -o fuzz-ws
 *   LD_LIBRARY_PATH=B/.libs ./fuzz-ws tests/fuzz/corpus/ws
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dial/tunnel-pump.h"
#include "dial/ws.h"
#include "err.h"

#define FUZZ_MAX_INPUT (1u << 17)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_err e;

	if (size < 2 || size > FUZZ_MAX_INPUT)
		return 0;
	if (data[0] % 2 == 0) {
		(void) tu_ws_check_response((const char *) data + 1, size - 1,
					    "dGhlIHNhbXBsZSBub25jZQ==", "the Proxy", &e);
		return 0;
	}
	struct tu_carrier *c = NULL;
	uint8_t out[64];
	size_t olen = 0, want = 1;
	if (tu_ws_carrier_test_new(data + 2, size - 2, data[1], &c) < 0)
		return 0;
	/* Each read makes progress or ends: size reads of at least one input byte each
	 * are more than enough; a stuck decoder shows up as the bound being reached. */
	for (size_t i = 0; i <= size + 1; i++) {
		size_t n = 0;
		int r = c->ops->read(c, out, want, &n, &e);
		if (r < 0)
			break;
		want = want % sizeof(out) + 1;
	}
	(void) tu_ws_carrier_test_output(c, &olen);
	c->ops->free(c);
	return 0;
}
