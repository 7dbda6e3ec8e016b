/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-pem.c - libFuzzer target for the PEM splitter and the identity-file
 * loader (libcore/creds.c: tu_pem_split, tu_creds_parse_identity, which
 * hands each block to OpenSSL and checks key/certificate/CA).  The input is
 * the file content.  Seeds: tests/fuzz/corpus/pem/ (a throwaway test
 * identity: key, SSH line, certificate, @cert-authority line, CA).
 *
 * Build by hand (not wired into make), from the source dir with a
 * configured build dir B:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include B/config.h \
 *     -Ilibcore -Ilibcore/base tests/fuzz/fuzz-pem.c libcore/creds.c \
 *     libcore/base/err.c libcore/base/fsutil.c -lssl -lcrypto -o fuzz-pem
 *   ./fuzz-pem tests/fuzz/corpus/pem
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "err.h"

#define FUZZ_MAX_INPUT (256u * 1024u)
/* 2026-12-01: inside the seed certificates' validity (2026-11-25 + 10 years) */
#define FUZZ_NOW_USEC  INT64_C(1796083200000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_pem_block blocks[TU_CREDS_MAX_PEM_BLOCKS];
	struct tu_creds *c = NULL;
	struct tu_err e;
	size_t n = 0;
	int r;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	tu_err_clear(&e);
	r = tu_pem_split((const char *) data, size, blocks, TU_CREDS_MAX_PEM_BLOCKS, &n, NULL, &e);
	if (r == 0) {
		for (size_t i = 0; i < n; i++) {
			const char *t = blocks[i].text;
			if (t < (const char *) data ||
			    t + blocks[i].len > (const char *) data + size)
				abort();
			if (blocks[i].label < t || blocks[i].label_len == 0 || blocks[i].len < 16)
				abort();
		}
	} else if ((r != -EBADMSG && r != -EMSGSIZE) || e.msg[0] == '\0' || e.line == 0) {
		abort();
	}

	tu_err_clear(&e);
	r = tu_creds_parse_identity((const char *) data, size, "identity", FUZZ_NOW_USEC, &c, &e);
	if (r == 0) {
		if (!tu_creds_subject_cn(c) || tu_creds_n_ca(c) == 0)
			abort();
		size_t l;
		if (strlen(tu_creds_key_pem(c, &l)) != l || strlen(tu_creds_cert_pem(c, &l)) != l)
			abort();
		/* the SSH side: whole lines, lengths right, a certificate or a reason */
		const char *sc = tu_creds_ssh_cert(c, &l);
		if (sc && (strlen(sc) != l || l == 0 || sc[l - 1] != '\n' || tu_creds_ssh_problem(c)))
			abort();
		const char *kh = tu_creds_ssh_known_hosts(c, &l);
		if (kh && (strlen(kh) != l || strncmp(kh, "@cert-authority ", 16) != 0 ||
			   kh[l - 1] != '\n'))
			abort();
		tu_creds_free(c);
	} else {
		if (c || e.msg[0] == '\0')
			abort();
		if (r != -EBADMSG && r != -EMSGSIZE && r != -EKEYEXPIRED && r != -EKEYREJECTED &&
		    r != -ENOMEM)
			abort();
	}
	return 0;
}
