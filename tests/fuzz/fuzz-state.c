/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-state.c - libFuzzer target for the private state snapshot reader
 * (tu_cache_parse_state in libcore/cache.c: the snapshot container, then
 * every record through model.c).  Only -EBADMSG, -EMSGSIZE and -ENOMEM may
 * come back, never without a message, and a parsed dataset must be
 * releasable.  Seeds: tests/fuzz/corpus/state/ (state.db files written by
 * `teleport-unix sync` for the test and demo fixtures, and small variants).
 *
 * Build by hand, from the source dir with a configured build dir B:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include B/config.h -Ilibcore \
 *     -Ilibcore/base tests/fuzz/fuzz-state.c B/.libs/libteleport-unix.so -o fuzz-state
 *   ./fuzz-state tests/fuzz/corpus/state
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cache.h"
#include "err.h"
#include "model.h"

#define FUZZ_MAX_INPUT (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_dataset d = {0};
	struct tu_err e;
	int64_t created = 0;
	int r;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	tu_err_clear(&e);
	r = tu_cache_parse_state(data, size, &d, &created, &e);
	if (r == 0) {
		for (size_t i = 0; i < d.n_users; i++)
			if (!d.users[i].name)
				abort();
		tu_dataset_done(&d);
		return 0;
	}
	if (r != -EBADMSG && r != -EMSGSIZE && r != -ENOMEM)
		abort();
	if (r != -ENOMEM && e.msg[0] == '\0')
		abort();
	if (d.n_users || d.users)
		abort(); /* untouched on failure */
	return 0;
}
