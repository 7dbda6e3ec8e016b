/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2.h - the production struct tu_transport: HTTP/2 over mTLS with libcurl,
 * one easy handle (so one reused connection) per transport, fail-over
 * across the configured Auth addresses.  Layer: libcore (libcurl, OpenSSL).
 *
 * TLS: client certificate, key and CA from the credential's in-memory PEM
 * (never the system trust store); the name sent as SNI and verified in the
 * server certificate is conf->server_name whatever address is dialled.
 * ALPN h2 is required.  No proxy (environment ignored), no redirects, no
 * signals (CURLOPT_NOSIGNAL); curl_global_init runs once per process under
 * pthread_once.  Not thread-safe per transport: one per thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tu_conf;
struct tu_creds;
struct tu_err;
struct tu_transport;
struct tu_stream_dialer;

/*
 * The environment check made once before libcurl is initialised: in a
 * setuid/setgid process (at_secure: getauxval(AT_SECURE)) whose environment
 * envp holds SSLKEYLOGFILE, libcurl would append TLS secrets to a file the
 * invoking user chose, with our privileges; every tu_h2_new() then fails
 * with -EPERM.  Returns 0 or -EPERM (message in reterr).  Pure; exposed for
 * tests.
 */
int tu_h2_check_env(bool at_secure, char *const *envp, struct tu_err *reterr);

/*
 * Creates the transport.  conf and creds are borrowed and must outlive it
 * (the key is handed to curl without a copy).  max_body_bytes bounds the
 * whole response body of one call (0 = 4 x conf->max_message_size).
 * Errors: -EINVAL (no address, bad server_name), -ENOMEM, -EIO (libcurl
 * initialisation failed), -EPERM (see tu_h2_check_env), -EPROTO (libcurl
 * without HTTP/2).  Free with tu_transport_free().
 */
int tu_h2_new(const struct tu_conf *conf, const struct tu_creds *creds, uint64_t max_body_bytes,
	      struct tu_transport **ret, struct tu_err *reterr);

/*
 * Hands the transport a stream dialer (dial/tunnel-pump.h), taken: from now
 * on every connection curl opens is a stream from d (the WebSocket upgrade,
 * the reverse tunnel) instead of TCP to the Auth address, which then only
 * names the connection; d's pumps run inside each call's poll loop.  The
 * TLS, HTTP/2 and gRPC on top are unchanged.  Replaces (frees) an earlier one.
 */
void tu_h2_set_dialer(struct tu_transport *t, struct tu_stream_dialer *d);
