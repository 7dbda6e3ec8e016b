/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sshsig.h - the signature of an OpenSSH certificate, checked with OpenSSL.
 * Layer: libcore.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Whether sig (the certificate's signature field: string algorithm, string
 * blob) is a valid signature by key (the CA public key in SSH wire format)
 * over data (the certificate up to its signature field).  ssh-ed25519,
 * ecdsa-sha2-nistp256/384/521 and rsa-sha2-256/512; SHA-1 RSA signatures and
 * anything malformed are false.  Leaves OpenSSL's error queue empty.
 */
bool tu_sshsig_verify(const uint8_t *key, size_t klen, const uint8_t *sig, size_t slen, const uint8_t *data,
		      size_t dlen);
