/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-conf.c - libFuzzer target for the YAML config loader (tu_conf_parse:
 * libyaml events, bounded tree, schema walker).  Any input must give 0 or a
 * clean negative errno with a message; never a crash or a leak.
 *
 * Build by hand (not wired into the Makefile):
 *   clang -g -fsanitize=fuzzer,address,undefined -include build/config.h \
 *     -DTU_SYSCONFDIR='"/etc"' -Ilibcore -Ilibcore/base tests/fuzz/fuzz-conf.c \
 *     libcore/conf.c libcore/base/{err,parse,fsutil}.c -lyaml -o fuzz-conf
 *   ./fuzz-conf -max_total_time=60 tests/fuzz/corpus/conf
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_conf *c = NULL;
	struct tu_err e;
	char line[1024];
	int r;

	if (size > 64 * 1024)
		return 0;
	tu_err_clear(&e);
	r = tu_conf_parse((const char *) data, size, "fuzz.yaml", &c, &e);
	if (r == 0) {
		if (!c || c->n_addresses == 0 || c->n_addresses > TU_MAX_AUTH_ADDRESSES)
			abort();
		if (!!c->identity_file == !!c->cert_path)
			abort(); /* exactly one credential kind */
		tu_conf_free(c);
		return 0;
	}
	if (c || e.code != r || (r == -EBADMSG && (!e.msg[0] || e.line == 0)))
		abort();
	tu_err_format(&e, line, sizeof(line));
	return 0;
}
