/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tunnel-pump.h - a byte stream to Auth's TLS that libcurl cannot open by
 * itself (WebSocket frames through the Proxy, an SSH channel through the
 * reverse tunnel), handed to curl as one end of a socket pair.
 * Layer: libcore (no OpenSSL, libssh or curl types here).
 *
 * A *carrier* moves Auth's bytes in its own framing over its own socket.
 * The *pump* copies bytes between the carrier and our end of an AF_UNIX
 * socket pair whose other end curl uses as its connection (h2.c's open
 * socket callback).  Nothing runs by itself: no thread, no signal.  The
 * caller's thread drives the pump from the same poll loop as curl
 * (tu_stream_dialer_pollfds() gives the descriptors, tu_stream_dialer_step()
 * moves what can be moved without blocking).  A carrier that fails or ends
 * closes our end, so curl sees the connection end and reports it.
 *
 * A *stream dialer* opens carriers on demand (curl asks for a socket when it
 * has no live connection) with a deadline, and owns the pumps.  Not
 * thread-safe: one per transport.
 */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

struct tu_err;
struct tu_carrier;

struct tu_carrier_ops {
	/*
	 * Reads decoded bytes without blocking: *ret_n > 0 bytes put in buf, or
	 * 0 when nothing is available now.  Returns 0, -EPIPE at a clean end of
	 * the stream, or another negative errno (reterr filled).
	 */
	int (*read)(struct tu_carrier *c, uint8_t *buf, size_t size, size_t *ret_n,
		    struct tu_err *reterr);
	/*
	 * Takes up to len bytes for sending (buffered or sent), *ret_n taken
	 * (may be 0 when its buffers are full); never blocks.  Returns 0 or a
	 * negative errno (reterr filled).
	 */
	int (*write)(struct tu_carrier *c, const uint8_t *buf, size_t len, size_t *ret_n,
		     struct tu_err *reterr);
	/* Sends what is buffered as far as the socket takes it, without blocking. */
	int (*flush)(struct tu_carrier *c, struct tu_err *reterr);
	/* Its descriptor and the poll events it waits for now (POLLOUT while output waits). */
	void (*poll)(struct tu_carrier *c, int *ret_fd, short *ret_events);
	/* Closes the carrier's connection and frees it. */
	void (*free)(struct tu_carrier *c);
};

struct tu_carrier {
	const struct tu_carrier_ops *ops;
};

/*
 * Opens a carrier by deadline_usec (CLOCK_MONOTONIC, tu_transport_now_usec()).
 * Returns 0 with *ret set, or a negative errno with reterr naming the hop
 * and why (-ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EPROTO, -EKEYREJECTED...).
 */
typedef int (*tu_carrier_open_fn)(void *userdata, uint64_t deadline_usec, struct tu_carrier **ret,
				  struct tu_err *reterr);

struct tu_stream_dialer;

#define TU_STREAM_MAX_FDS 8 /* descriptors one dialer asks to poll, at most */

/*
 * A dialer around open_fn.  userdata is owned by the dialer from now on and
 * freed with free_userdata (may be NULL) when the dialer is freed, also on
 * failure.  via: the name of the path for `ping` and messages (copied).
 * Errors: -ENOMEM.
 */
int tu_stream_dialer_new(const char *via, tu_carrier_open_fn open_fn, void *userdata,
			 void (*free_userdata)(void *), struct tu_stream_dialer **ret,
			 struct tu_err *reterr);

/*
 * Opens a carrier and a private listening socket for curl: *ret_addr /
 * *ret_len is the address (AF_UNIX, abstract namespace, random name; at
 * most sizeof(struct sockaddr) = 16 bytes, so it fits curl_sockaddr) that
 * curl's own AF_UNIX socket must connect to; the pump accepts that one
 * connection only from this very process (SO_PEERCRED pid and uid) and
 * closes the listener.  (libcurl 7.88 connect()s even a socket marked as
 * connected by its socket-option callback, so curl cannot be handed one end
 * of a socket pair.)  Returns 0, or a negative errno with reterr filled.
 * Pumps whose connection is over are dropped first.
 */
int tu_stream_dialer_open(struct tu_stream_dialer *d, uint64_t deadline_usec,
			  struct sockaddr_un *ret_addr, socklen_t *ret_len, struct tu_err *reterr);

/* The descriptors to poll for the pumps (at most max; returns how many). */
size_t tu_stream_dialer_pollfds(struct tu_stream_dialer *d, struct pollfd *fds, size_t max);

/*
 * Moves what can be moved without blocking.  Never fails: a dead pump closes
 * its end.  Returns true when it stopped with bytes still moving (the caller
 * should poll with a zero timeout before waiting).
 */
bool tu_stream_dialer_step(struct tu_stream_dialer *d);

/* The name given at creation.  Borrowed. */
const char *tu_stream_dialer_via(const struct tu_stream_dialer *d);

/*
 * Why the last pump ended when it ended with an error (the carrier's
 * message, e.g. the tunnel server's reason), so the caller can name it
 * instead of curl's "connection closed"; false when none.  Cleared by
 * tu_stream_dialer_open().
 */
bool tu_stream_dialer_last_error(const struct tu_stream_dialer *d, struct tu_err *ret);

/* Closes every pump and carrier and frees; accepts NULL; returns NULL. */
struct tu_stream_dialer *tu_stream_dialer_free(struct tu_stream_dialer *d);

/*
 * TCP to host:port (a name resolved with resolve.c, or a numeric address),
 * trying each address in turn until one connects, by deadline_usec.
 * *ret_fd is a non-blocking, close-on-exec socket.  what names the hop in
 * messages ("the Proxy", "the reverse tunnel").  Errors: -ETIMEDOUT,
 * -ECONNREFUSED, -EHOSTUNREACH, -ENOMEM, -EMFILE...
 */
int tu_dial_tcp(const char *host, uint16_t port, const char *what, uint64_t deadline_usec,
		int *ret_fd, struct tu_err *reterr);

/*
 * Waits until fd is ready for events or deadline_usec passes.  Returns 0
 * (ready), -ETIMEDOUT, or another negative errno.
 */
int tu_dial_wait(int fd, short events, uint64_t deadline_usec);
