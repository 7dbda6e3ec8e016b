/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-grpc.c - libFuzzer target for the gRPC frame stream parser and the
 * grpc-message decoder (libcore/grpc.c).  Input: byte 0 = chunk size the
 * stream is fed in (0 = all at once), byte 1 = message size limit selector
 * (limit = 1 << (byte % 24)), then the response body.  The same bytes are
 * also percent-decoded as a grpc-message and mapped as a status.
 * Seeds: tests/fuzz/corpus/grpc/.
 *
 * Build by hand (not wired into make), from the source dir with a
 * configured build dir B:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include B/config.h \
 *     -Ilibcore -Ilibcore/base tests/fuzz/fuzz-grpc.c libcore/grpc.c \
 *     libcore/base/err.c -o fuzz-grpc
 *   ./fuzz-grpc tests/fuzz/corpus/grpc
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "grpc.h"

#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	size_t n;
	size_t bytes;
};

static int on_message(void *userdata, const uint8_t *msg, size_t len, struct tu_err *reterr)
{
	struct seen *s = userdata;

	(void) reterr;
	if (!msg)
		abort();
	/* touch every byte so ASan sees the whole buffer */
	for (size_t i = 0; i < len; i++)
		s->bytes += msg[i] != 0;
	s->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_grpc_parser p;
	struct seen s = {0};
	struct tu_err e;
	char out[TU_GRPC_MESSAGE_MAX];
	int r = 0;

	if (size < 2 || size > FUZZ_MAX_INPUT)
		return 0;
	size_t chunk = data[0] ? data[0] : size;
	size_t max = (size_t) 1 << (data[1] % 24);
	data += 2;
	size -= 2;

	tu_err_clear(&e);
	tu_grpc_parser_init(&p, max, on_message, &s);
	for (size_t off = 0; off < size && r == 0; off += chunk)
		r = tu_grpc_parser_feed(&p, data + off, chunk < size - off ? chunk : size - off,
					&e);
	if (r == 0)
		r = tu_grpc_parser_finish(&p, &e);
	if (r != 0 && r != -EPROTO && r != -EMSGSIZE && r != -EBADMSG && r != -ENOMEM)
		abort();
	if (r != 0 && e.msg[0] == '\0')
		abort();
	if (tu_grpc_parser_count(&p) != s.n)
		abort();
	tu_grpc_parser_done(&p);

	size_t n = tu_grpc_percent_decode((const char *) data, size, out, sizeof(out));
	if (n >= sizeof(out) || strlen(out) != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) out[i] < 0x20 || out[i] == 0x7f)
			abort();
	tu_err_clear(&e);
	r = tu_grpc_status_to_errno(size ? data[0] - 1 : 0, "/proto.AuthService/Ping", out, &e);
	if (r > 0 || (r < 0 && e.msg[0] == '\0'))
		abort();
	return 0;
}
