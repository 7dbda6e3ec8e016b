/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-profile.c - libFuzzer target for the tsh profile YAML reader
 * (libcore/profile.c: tu_profile_parse).  The input is the "<proxy>.yaml"
 * file content.  Seeds: tests/fuzz/corpus/profile/ (profiles as tsh 16 and
 * 17 write them, with keys we skip).  Every result is either a profile
 * whose names are safe path components or a clean error with a message.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "profile.h"

#define FUZZ_MAX_INPUT (64u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_profile p = {0};
	struct tu_err e;
	int r;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	tu_err_clear(&e);
	r = tu_profile_parse((const char *) data, size, "p.yaml", "name.example", &p, &e);
	if (r == 0) {
		if (!tu_profile_name_ok(p.user) || !tu_profile_name_ok(p.cluster) ||
		    !tu_profile_name_ok(p.proxy_host) || !p.web_proxy_addr || p.proxy_port == 0)
			abort();
		tu_profile_done(&p);
	} else if ((r != -EBADMSG && r != -EMSGSIZE && r != -ENOMEM) || e.msg[0] == '\0' ||
		   p.user || p.name) {
		abort();
	}
	return 0;
}
