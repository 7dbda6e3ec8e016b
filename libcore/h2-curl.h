/* SPDX-License-Identifier: Apache-2.0 */
/*
 * h2-curl.h - the libcurl set-up h2.c shares with the other HTTPS users of
 * libcore (dial/find.c; the connection upgrade in dial/ws*.c may use it):
 * one global initialisation, close-on-exec sockets, no resolver thread, a
 * multi handle whose wake-up pair is close-on-exec, and one transfer driven
 * on the caller's thread with the stream dialers' pumps (dial.h).  Layer: libcore.
 */
#pragma once

#include <curl/curl.h>

struct tu_err;
struct tu_dialer;

/* curl_global_init once per process (pthread_once), refusing unsafe environments
 * (tu_h2_check_env).  0, -EPERM, -EIO, -EPROTO (no HTTP/2 or TLS). */
int tu_h2_curl_init(struct tu_err *reterr);

/* curl_multi_init() with curl's wake-up socket pair made close-on-exec.  NULL: out of memory. */
CURLM *tu_h2_multi_new(void);

/* CURLOPT_OPENSOCKETFUNCTION: SOCK_CLOEXEC sockets (clientp unused). */
curl_socket_t tu_h2_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a);

/* CURLOPT_RESOLVER_START_FUNCTION that refuses every lookup (names come from resolve.c). */
int tu_h2_refuse_resolver(void *resolver_state, void *reserved, void *userdata);

/*
 * One transfer of easy on multi; curl's own timeouts end it.  pumping may be
 * NULL; otherwise the stream dialers' (dial.h) descriptors join each wait and
 * their step() runs before and after it.
 */
struct tu_h2_pumping {
	struct tu_dialer *const *d;
	size_t n;
};
CURLcode tu_h2_perform(CURLM *multi, CURL *easy, const struct tu_h2_pumping *pumping);
