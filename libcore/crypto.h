/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.h - the OpenSSL-using code (X.509 and private-key parsing of the
 * credential, OpenSSH signature checks) lives in the module
 * teleport-unix-crypto.so, which the core loads from its own directory on
 * first use (crypto-load.c), as it loads the online transport (h2-load.c).
 * Layer: between the core (creds.c, decide.c: no OpenSSL) and the module
 * (crypto.c, sshsig.c: OpenSSL's libcrypto).
 *
 * Why (issue 10): merely linking libcrypto cost every process that links the
 * core ~5 ms of start-up on a slow VM, plus OpenSSL's own initialisation,
 * although an offline decision (sshd's AuthorizedPrincipalsCommand, a PAM
 * account check while Auth is down) needs none of it.  tools/check-needed.sh
 * keeps libcrypto out of the core's, the CLI's and pam_teleport.so's NEEDED.
 *
 * The module stays loaded once loaded (OpenSSL does not support being
 * unloaded); loading happens once per process (pthread_once).  A module that
 * cannot be loaded is an -EIO of the call that needed it, naming the file,
 * and is never taken for "valid".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tu_err;
struct tu_pem_block;

#define TU_CRYPTO_MODULE_FILE   "teleport-unix-crypto.so"
#define TU_CRYPTO_MODULE_SYMBOL "tu_crypto_module_v1"

/* What the credential's X.509 certificate says (crypto.c). */
struct tu_x509_info {
	int64_t not_before_usec, not_after_usec;
	char *cn;      /* subject CN (malloc'd) */
	char *cluster; /* subject 1.3.9999.1.7, else issuer O; NULL when neither (malloc'd) */
};

/* The module's functions (crypto.c); messages as creds.c gave them before the split. */
struct tu_crypto_ops {
	/*
	 * Parses the client certificate block b: label, DER, validity dates, subject
	 * CN (required), cluster.  Errors carry b->line (the caller adds the file):
	 * -EBADMSG, -ENOMEM.  Does not judge the validity window.
	 */
	int (*x509_info)(const struct tu_pem_block *b, struct tu_x509_info *ret, struct tu_err *reterr);
	/*
	 * The private key parses (not encrypted), the certificate and every CA block
	 * parse, there is at least one CA block, and the key matches the certificate;
	 * errors name the file and line.
	 */
	int (*check_key)(const char *cert_path, const struct tu_pem_block *cert_b, const char *key_path,
			 const struct tu_pem_block *key_b, const char *ca_path, const struct tu_pem_block *ca_b,
			 size_t n_ca, struct tu_err *reterr);
	/* One block is a certificate that parses (what: "a CA"); errors carry b->line. */
	int (*cert_parses)(const struct tu_pem_block *b, const char *what, struct tu_err *reterr);
	/* One block is a private key that parses, not encrypted; errors carry b->line. */
	int (*key_parses)(const struct tu_pem_block *b, struct tu_err *reterr);
	/* sshsig.h: 1 valid, 0 not. */
	bool (*sshsig_verify)(const uint8_t *key, size_t klen, const uint8_t *sig, size_t slen, const uint8_t *data,
			      size_t dlen);
};

typedef const struct tu_crypto_ops *(*tu_crypto_module_fn)(void);

/* The module's one export. */
const struct tu_crypto_ops *tu_crypto_module_v1(void);

/*
 * The module's functions, loading it on the first call (crypto-load.c): 0 with
 * *ret, or -EIO "cannot load the crypto module: <dlerror>" (file named).
 * Thread-safe.
 */
int tu_crypto_get(const struct tu_crypto_ops **ret, struct tu_err *reterr);

/* Whether the module is loaded in this process (tests, benchmarks). */
bool tu_crypto_loaded(void);

/* Frees what x509_info allocated. */
void tu_x509_info_done(struct tu_x509_info *x);
