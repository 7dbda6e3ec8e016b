/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2.h - the production struct tu_transport: HTTP/2 over mTLS with libcurl,
 * one easy handle (so one reused connection) per transport, fail-over
 * across the configured Auth addresses.  Layer: libcore; h2.c (libcurl,
 * libssl) is built as the module teleport-unix-h2.so, which the core loads
 * lazily through h2-load.c (libc only).
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
#include <sys/socket.h>

#include "resolve.h"

struct tu_conf;
struct tu_creds;
struct tu_err;
struct tu_transport;

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
 * Errors: -EINVAL (no address, bad server_name), -ENOMEM, -EPERM (see
 * tu_h2_check_env).  Free with tu_transport_free().
 *
 * Lazy (h2-load.c, in the core): nothing is loaded and no descriptor opened
 * here.  The first call dials TCP itself, address after address as the
 * transport would (same order, connect timeouts, deadline and messages);
 * when no address takes the connection it fails like the transport without
 * ever loading libcurl or libssl (an offline decision stays cheap).  Once
 * one does, it loads teleport-unix-h2.so from the core's own directory and
 * hands it the connected socket, which libcurl adopts (no second dial); the
 * module's failures (-EIO: cannot load it or initialise libcurl, -EPROTO:
 * libcurl without HTTP/2) then come from that call.
 */
int tu_h2_new(const struct tu_conf *conf, const struct tu_creds *creds, uint64_t max_body_bytes,
	      struct tu_transport **ret, struct tu_err *reterr);

/* ---- between the core's loader (h2-load.c) and the module (h2.c) ---- */

#define TU_H2_MODULE_FILE   "teleport-unix-h2.so"
#define TU_H2_MODULE_SYMBOL "tu_h2_module_new"

/* A TCP connection the loader made to conf->addresses[index] for the first call. */
struct tu_h2_predial {
	int fd;                /* connected, non-blocking, close-on-exec; the module owns it */
	size_t index;          /* every address before it failed (in order, from 0) */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct tu_resolve_result res; /* the address's answer, the connected address first */
	uint64_t res_until;           /* CLOCK_MONOTONIC usec while res may be reused */
	uint64_t started_usec;        /* when dialling that address began (connect timeout) */
	char tried[1024];             /* the fail-over summary of the addresses before it */
};

/* The module's entry point: tu_h2_new's contract, plus pre (consumed: its fd is the
 * module's whatever the result). */
typedef int (*tu_h2_module_new_fn)(const struct tu_conf *conf, const struct tu_creds *creds,
				   uint64_t max_body_bytes, struct tu_h2_predial *pre,
				   struct tu_transport **ret, struct tu_err *reterr);
int tu_h2_module_new(const struct tu_conf *conf, const struct tu_creds *creds, uint64_t max_body_bytes,
		     struct tu_h2_predial *pre, struct tu_transport **ret, struct tu_err *reterr);

/* The checks both sides make: an address to dial (auth.addresses or auth.proxy) and a
 * valid auth.server_name (-EINVAL, key named in reterr); a server name; an RPC path. */
int tu_h2_check_conf(const struct tu_conf *conf, struct tu_err *reterr);
bool tu_h2_valid_server_name(const char *s);
bool tu_h2_valid_path(const char *p);

/* The transport module's path: TU_H2_MODULE_FILE in core_path's directory when
 * core_path (where dladdr() found the core) is absolute, else in TU_PKGLIBDIR. */
void tu_h2_module_path(const char *core_path, char *buf, size_t size);
/* The same for any module of the core's (file: e.g. TU_CRYPTO_MODULE_FILE, crypto.h). */
void tu_core_module_path(const char *core_path, const char *file, char *buf, size_t size);

/* "host:port" or "[v6]:port" of an Auth address, as messages name it. */
void tu_h2_addr_string(const char *host, uint16_t port, char *buf, size_t size);
