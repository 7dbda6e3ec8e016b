/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport.h - the seam between the gRPC/Auth layer and the network: one
 * HTTP/2 request/response exchange carrying opaque gRPC body bytes.
 * Layer: libcore.  Production implementation: h2.c (libcurl).  Unit tests
 * plug in a fake that returns recorded bytes, statuses, errors or timeouts
 * (no linker wrapping needed).
 *
 * What a transport does and does not do:
 *   - it POSTs the already framed request body to `path` and streams the
 *     response body to on_data() chunk by chunk, in order, as it arrives;
 *   - it reports the gRPC status found in the trailers (or in the headers of
 *     a Trailers-Only answer) in *ret_status, percent-decoded, without
 *     interpreting it (grpc.c maps status codes to errno);
 *   - it enforces the deadline, the connect timeout, HTTP/2 (ALPN h2), the
 *     HTTP status (200) and the gRPC content-type.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct tu_err;

#define TU_GRPC_MESSAGE_MAX 256 /* bytes of grpc-message kept (after percent-decoding) */

/* What the server said about the call, besides the body. */
struct tu_transport_status {
	int grpc_status; /* -1: no grpc-status header/trailer at all; -2: unparsable */
	char grpc_message[TU_GRPC_MESSAGE_MAX]; /* percent-decoded, sanitized; "" when absent */
};

/*
 * Receives response body bytes.  Returns 0 to continue or a negative errno
 * (with reterr filled) to abort the exchange; the transport then returns
 * that same code from call() and leaves reterr as the callback filled it.
 */
typedef int (*tu_transport_data_fn)(void *userdata, const uint8_t *data, size_t len,
				    struct tu_err *reterr);

/*
 * Called by a stream() after each batch of received data has been handed to
 * on_data, and at least about once a second while the stream is idle.
 * Returns 0 to go on or a negative errno (with reterr filled) to end the
 * stream; stream() then returns that code.
 */
typedef int (*tu_transport_tick_fn)(void *userdata, struct tu_err *reterr);

struct tu_transport {
	/*
	 * One exchange.  body/body_len: the request body (gRPC frames), borrowed
	 * for the duration of the call.  deadline_usec: CLOCK_MONOTONIC time
	 * (tu_transport_now_usec()) by which the call must be over, connect
	 * included.
	 *
	 * Returns 0 when a complete HTTP/2 response was received (whatever its
	 * grpc-status, which is in *ret_status, written only on success), or:
	 *   -ETIMEDOUT      deadline or connect timeout passed
	 *   -ECONNREFUSED   every address refused the connection
	 *   -EHOSTUNREACH   no address reachable (resolve/route/TLS connect failures)
	 *   -ECONNRESET     the connection closed before the answer was complete
	 *   -EPROTO         TLS verification failed, no ALPN h2, HTTP status not
	 *                   200, content-type not application/grpc, HTTP/2 error
	 *   -EMSGSIZE       response over the transport's byte limits
	 *   -ENOMEM, -EIO   other failures
	 *   or whatever on_data returned.
	 * Not thread-safe: one transport per thread.
	 */
	int (*call)(struct tu_transport *t, const char *path, const uint8_t *body, size_t body_len,
		    uint64_t deadline_usec, tu_transport_data_fn on_data, void *userdata,
		    struct tu_transport_status *ret_status, struct tu_err *reterr);

	/* Frees the transport and everything it holds (connections closed, no fd left). */
	void (*close)(struct tu_transport *t);

	/*
	 * Optional (NULL when the transport cannot): a long-lived server stream
	 * (WatchEvents).  Like call() but with no overall deadline and no byte
	 * limit on the whole body (the caller's gRPC parser bounds each message):
	 * connecting is bounded by the connect timeout; a dead peer on an idle
	 * stream is noticed by TCP keepalive (never by HTTP/2 PINGs, which Auth
	 * answers with GOAWAY when they come more often than its keepalive
	 * period); on_tick runs after each batch of data and about once a second,
	 * and is how the caller stops the stream.  Same returns as call(); 0 when
	 * the server ended the stream (its status in *ret_status).
	 */
	int (*stream)(struct tu_transport *t, const char *path, const uint8_t *body, size_t body_len,
		      tu_transport_data_fn on_data, tu_transport_tick_fn on_tick, void *userdata,
		      struct tu_transport_status *ret_status, struct tu_err *reterr);
};

/* Frees t via its close(); accepts NULL; returns NULL. */
static inline struct tu_transport *tu_transport_free(struct tu_transport *t)
{
	if (t)
		t->close(t);
	return NULL;
}

/* The clock deadlines are expressed in: CLOCK_MONOTONIC, microseconds. */
static inline uint64_t tu_transport_now_usec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}
