/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grpc.h - gRPC over a struct tu_transport: length-prefixed message
 * framing (both directions), the grpc-timeout header value, percent-decoding
 * of grpc-message, and the one table that turns a gRPC status into a
 * negative errno plus a readable message.  Layer: libcore.  Knows nothing of
 * libcurl or protobuf: messages are opaque bytes here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

struct tu_err;

#define TU_GRPC_FRAME_HEADER        5u
#define TU_GRPC_DEFAULT_MAX_MESSAGE ((size_t) 64 * 1024 * 1024) /* SPEC §2: 64 MiB per message */

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum tu_grpc_code {
	TU_GRPC_OK = 0,
	TU_GRPC_CANCELLED = 1,
	TU_GRPC_UNKNOWN = 2,
	TU_GRPC_INVALID_ARGUMENT = 3,
	TU_GRPC_DEADLINE_EXCEEDED = 4,
	TU_GRPC_NOT_FOUND = 5,
	TU_GRPC_ALREADY_EXISTS = 6,
	TU_GRPC_PERMISSION_DENIED = 7,
	TU_GRPC_RESOURCE_EXHAUSTED = 8,
	TU_GRPC_FAILED_PRECONDITION = 9,
	TU_GRPC_ABORTED = 10,
	TU_GRPC_OUT_OF_RANGE = 11,
	TU_GRPC_UNIMPLEMENTED = 12,
	TU_GRPC_INTERNAL = 13,
	TU_GRPC_UNAVAILABLE = 14,
	TU_GRPC_DATA_LOSS = 15,
	TU_GRPC_UNAUTHENTICATED = 16,
};

/*
 * Receives one complete message (borrowed for the duration of the call;
 * len may be 0).  Returns 0 or a negative errno with reterr filled, which
 * stops the parse.
 */
typedef int (*tu_grpc_message_fn)(void *userdata, const uint8_t *msg, size_t len,
				  struct tu_err *reterr);

/*
 * Incremental parser of a stream of gRPC frames (5-byte prefix: flag byte,
 * big-endian u32 length; then the message).  Feed it bytes in chunks of any
 * size; it calls fn once per complete message.  Fields are private.
 */
struct tu_grpc_parser {
	size_t max_message;
	tu_grpc_message_fn fn;
	void *userdata;
	uint8_t hdr[TU_GRPC_FRAME_HEADER];
	size_t hdr_got;
	uint8_t *msg;
	size_t msg_cap;
	size_t msg_len; /* announced length of the current message */
	size_t msg_got;
	size_t n_messages;
	uint64_t offset; /* bytes consumed so far, for error messages */
	int failed;      /* sticky error */
};

/* Initialises p; max_message is the largest message accepted (bytes). Never fails. */
void tu_grpc_parser_init(struct tu_grpc_parser *p, size_t max_message, tu_grpc_message_fn fn,
			 void *userdata);

/*
 * Consumes len bytes.  Errors (sticky: later feeds return the same code):
 *   -EPROTO    compressed-flag not 0 ("compressed gRPC message ...")
 *   -EMSGSIZE  announced length over max_message
 *   -ENOMEM
 *   or what fn returned.
 */
int tu_grpc_parser_feed(struct tu_grpc_parser *p, const uint8_t *data, size_t len,
			struct tu_err *reterr);

/*
 * Declares the end of the stream.  -EBADMSG "truncated gRPC frame (got X of
 * Y bytes)" when a frame is incomplete; otherwise the sticky error or 0.
 */
int tu_grpc_parser_finish(struct tu_grpc_parser *p, struct tu_err *reterr);

/* Number of complete messages delivered so far. */
size_t tu_grpc_parser_count(const struct tu_grpc_parser *p);

/* Frees the parser's buffers (p itself is the caller's). Safe twice. */
void tu_grpc_parser_done(struct tu_grpc_parser *p);

/*
 * Frames one message: *ret_body = 5-byte prefix + msg (malloc'ed).
 * -EMSGSIZE when len does not fit in 32 bits, -ENOMEM.
 */
int tu_grpc_frame(const uint8_t *msg, size_t len, uint8_t **ret_body, size_t *ret_len);

/*
 * Formats a grpc-timeout header value for a timeout of usec microseconds:
 * the smallest unit whose value fits the protocol's 8 digits, rounded up,
 * at least 1 ("1m", "3000m", "100000S", ...).  -ERANGE when size is too small.
 */
int tu_grpc_format_timeout(uint64_t usec, char *buf, size_t size);

/*
 * Percent-decodes a grpc-message value (in, in_len bytes) into out (always
 * NUL-terminated, truncated to size-1).  Malformed escapes are kept as
 * they are; control characters and NUL become '?'.  Returns strlen(out).
 */
size_t tu_grpc_percent_decode(const char *in, size_t in_len, char *out, size_t size);

/* The name of a status code ("NOT_FOUND"), "UNKNOWN_STATUS" when out of range. */
const char *tu_grpc_code_name(int code);

/*
 * Short RPC name for messages: "/teleport.users.v1.UsersService/GetUser"
 * -> "UsersService/GetUser".  Writes into buf (NUL-terminated); returns buf.
 */
const char *tu_grpc_rpc_name(const char *path, char *buf, size_t size);

/*
 * The one mapping from a gRPC status to errno.  Returns 0 for OK; else fills
 * reterr (message naming the RPC of `path` and quoting grpc_message,
 * reterr->grpc_status = code) and returns:
 *   NOT_FOUND -ENOENT; PERMISSION_DENIED, UNAUTHENTICATED -EACCES ("Auth
 *   refused: the credential lacks permission for <RPC> (<message>)");
 *   UNIMPLEMENTED -EOPNOTSUPP; DEADLINE_EXCEEDED -ETIMEDOUT; status -1
 *   (none received) -EPROTO "no grpc-status trailer"; -2 or out of range
 *   -EPROTO; anything else -EIO.
 */
int tu_grpc_status_to_errno(int code, const char *path, const char *grpc_message,
			    struct tu_err *reterr);

/*
 * One RPC over t: frames req, calls the transport with deadline_usec,
 * parses the response frames (each at most max_message bytes) calling
 * on_message for each, then checks the stream ended on a frame boundary and
 * maps the status.  Error precedence: transport/parse error, truncated
 * frame, missing or non-OK status.  *ret_count (may be NULL) = messages
 * delivered, written on success only.
 */
int tu_grpc_call(struct tu_transport *t, const char *path, const uint8_t *req, size_t req_len,
		 uint64_t deadline_usec, size_t max_message, tu_grpc_message_fn on_message,
		 void *userdata, size_t *ret_count, struct tu_err *reterr);

/*
 * A long-lived server-streaming RPC over t->stream (WatchEvents): frames
 * req, calls on_message for each message as it arrives (each at most
 * max_message bytes) and on_tick as transport.h describes, until the server
 * ends the stream or a callback fails.  No overall deadline (connect is
 * bounded by the transport).  A stream always ends in an error: the
 * callbacks' code, the transport's, a truncated frame (-EBADMSG), or the
 * server's status mapped by tu_grpc_status_to_errno (-EIO for OK too: "the
 * server ended the stream").  -EOPNOTSUPP when t has no stream().
 */
int tu_grpc_stream(struct tu_transport *t, const char *path, const uint8_t *req, size_t req_len,
		   size_t max_message, tu_grpc_message_fn on_message, tu_transport_tick_fn on_tick,
		   void *userdata, struct tu_err *reterr);

/*
 * A unary RPC: like tu_grpc_call but expects exactly one message, returned
 * as a malloc'ed copy in *ret_msg and *ret_len (ret_msg non-NULL even for 0
 * bytes).  0 or 2+ messages -> -EBADMSG "... answered with N messages,
 * expected exactly 1".
 */
int tu_grpc_unary(struct tu_transport *t, const char *path, const uint8_t *req, size_t req_len,
		  uint64_t deadline_usec, size_t max_message, uint8_t **ret_msg, size_t *ret_len,
		  struct tu_err *reterr);
