/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sshsig.h - the signature of an OpenSSH certificate, checked with OpenSSL
 * in the crypto module (crypto.h: sshsig.c is built into
 * teleport-unix-crypto.so; the core's tu_sshsig_verify loads it).
 * Layer: libcore.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tu_err;

/*
 * Whether sig (the certificate's signature field: string algorithm, string
 * blob) is a valid signature by key (the CA public key in SSH wire format)
 * over data (the certificate up to its signature field).  ssh-ed25519,
 * ecdsa-sha2-nistp256/384/521 and rsa-sha2-256/512; SHA-1 RSA signatures and
 * anything malformed are 0.  1 valid; -EIO when the crypto module cannot be
 * loaded (reterr names it).  Leaves OpenSSL's error queue empty.
 */
int tu_sshsig_verify(const uint8_t *key, size_t klen, const uint8_t *sig, size_t slen, const uint8_t *data,
		     size_t dlen, struct tu_err *reterr);

/* The module's implementation (sshsig.c, OpenSSL): true when valid. */
bool tu_crypto_sshsig_verify(const uint8_t *key, size_t klen, const uint8_t *sig, size_t slen,
			     const uint8_t *data, size_t dlen);
