/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ossl-init.h - OpenSSL initialised for libcore's modules without reading
 * openssl.cnf (OPENSSL_INIT_NO_LOAD_CONFIG): OpenSSL would open it without
 * O_CLOEXEC inside sshd, cron or any NSS caller, and our TLS settings are all
 * explicit (h2.h).  Must run before the first OpenSSL call of the process to
 * have an effect; in a process that loaded the config already (sshd) it
 * changes nothing.  Every unit that calls OpenSSL calls this first (crypto.c,
 * sshsig.c: teleport-unix-crypto.so; h2.c, dial/ws-tls.c:
 * teleport-unix-h2.so).  Idempotent, thread-safe.  The core itself links no
 * OpenSSL (crypto.h).
 */
#pragma once

#include <openssl/crypto.h>

static inline void tu_openssl_init(void)
{
	(void) OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
}
