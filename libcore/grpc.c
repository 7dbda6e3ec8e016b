/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grpc.c - gRPC framing, grpc-timeout, grpc-message decoding and the status
 * -> errno table, on top of struct tu_transport (see grpc.h).
 * Layer: libcore.  No libcurl, no protobuf: messages are opaque bytes.
 */
#include "grpc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "err.h"

void tu_grpc_parser_init(struct tu_grpc_parser *p, size_t max_message, tu_grpc_message_fn fn,
			 void *userdata)
{
	memset(p, 0, sizeof(*p));
	p->max_message = max_message;
	p->fn = fn;
	p->userdata = userdata;
}

void tu_grpc_parser_done(struct tu_grpc_parser *p)
{
	free(p->msg);
	p->msg = NULL;
	p->msg_cap = 0;
}

size_t tu_grpc_parser_count(const struct tu_grpc_parser *p)
{
	return p->n_messages;
}

static int fail(struct tu_grpc_parser *p, int r)
{
	p->failed = r;
	return r;
}

/* Grows the message buffer towards msg_len step by step, so that an announced
 * length alone (without the bytes) does not make us allocate it all. */
static int reserve(struct tu_grpc_parser *p, size_t need)
{
	if (need <= p->msg_cap)
		return 0;
	size_t cap = p->msg_cap < 4096 ? 4096 : p->msg_cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > p->msg_len)
		cap = p->msg_len;
	uint8_t *n = realloc(p->msg, cap);
	if (!n)
		return -ENOMEM;
	p->msg = n;
	p->msg_cap = cap;
	return 0;
}

static int deliver(struct tu_grpc_parser *p, struct tu_err *reterr)
{
	static const uint8_t empty[1];
	const uint8_t *m = p->msg_len ? p->msg : empty;
	size_t len = p->msg_len;

	p->hdr_got = 0;
	p->msg_len = 0;
	p->msg_got = 0;
	p->n_messages++;
	if (!p->fn)
		return 0;
	int r = p->fn(p->userdata, m, len, reterr);
	if (r > 0)
		r = 0;
	return r;
}

int tu_grpc_parser_feed(struct tu_grpc_parser *p, const uint8_t *data, size_t len,
			struct tu_err *reterr)
{
	int r;

	if (p->failed)
		return p->failed;
	while (len > 0) {
		if (p->hdr_got < TU_GRPC_FRAME_HEADER) {
			size_t n = TU_GRPC_FRAME_HEADER - p->hdr_got;
			if (n > len)
				n = len;
			memcpy(p->hdr + p->hdr_got, data, n);
			p->hdr_got += n;
			data += n;
			len -= n;
			p->offset += n;
			if (p->hdr_got < TU_GRPC_FRAME_HEADER)
				return 0;

			uint64_t frame_at = p->offset - TU_GRPC_FRAME_HEADER;
			if (p->hdr[0] == 1)
				return fail(p, tu_err_set(reterr, -EPROTO,
							  "compressed gRPC message at byte %" PRIu64
							  " (compression was not negotiated)",
							  frame_at));
			if (p->hdr[0] != 0)
				return fail(
				    p, tu_err_set(reterr, -EPROTO,
						  "invalid gRPC frame flags 0x%02x at byte %" PRIu64
						  " (not a gRPC stream?)",
						  p->hdr[0], frame_at));
			uint32_t mlen = (uint32_t) p->hdr[1] << 24 | (uint32_t) p->hdr[2] << 16 |
					(uint32_t) p->hdr[3] << 8 | (uint32_t) p->hdr[4];
			if (mlen > p->max_message)
				return fail(p, tu_err_set(reterr, -EMSGSIZE,
							  "gRPC message of %" PRIu32
							  " bytes is over the limit of %zu bytes",
							  mlen, p->max_message));
			p->msg_len = mlen;
			p->msg_got = 0;
			if (mlen == 0) {
				r = deliver(p, reterr);
				if (r < 0)
					return fail(p, r);
			}
			continue;
		}

		size_t n = p->msg_len - p->msg_got;
		if (n > len)
			n = len;
		if (reserve(p, p->msg_got + n) < 0)
			return fail(
			    p, tu_err_set(reterr, -ENOMEM, "out of memory reading a gRPC message"));
		memcpy(p->msg + p->msg_got, data, n);
		p->msg_got += n;
		data += n;
		len -= n;
		p->offset += n;
		if (p->msg_got == p->msg_len) {
			r = deliver(p, reterr);
			if (r < 0)
				return fail(p, r);
		}
	}
	return 0;
}

int tu_grpc_parser_finish(struct tu_grpc_parser *p, struct tu_err *reterr)
{
	if (p->failed)
		return p->failed;
	if (p->hdr_got == 0)
		return 0;
	if (p->hdr_got < TU_GRPC_FRAME_HEADER)
		return fail(p, tu_err_set(reterr, -EBADMSG,
					  "truncated gRPC frame (got %zu of %u bytes)", p->hdr_got,
					  TU_GRPC_FRAME_HEADER));
	return fail(p, tu_err_set(reterr, -EBADMSG, "truncated gRPC frame (got %zu of %zu bytes)",
				  TU_GRPC_FRAME_HEADER + p->msg_got,
				  TU_GRPC_FRAME_HEADER + p->msg_len));
}

int tu_grpc_frame(const uint8_t *msg, size_t len, uint8_t **ret_body, size_t *ret_len)
{
	if (len > UINT32_MAX || len > SIZE_MAX - TU_GRPC_FRAME_HEADER)
		return -EMSGSIZE;
	uint8_t *b = malloc(TU_GRPC_FRAME_HEADER + len);
	if (!b)
		return -ENOMEM;
	b[0] = 0;
	b[1] = (uint8_t) (len >> 24);
	b[2] = (uint8_t) (len >> 16);
	b[3] = (uint8_t) (len >> 8);
	b[4] = (uint8_t) len;
	if (len)
		memcpy(b + TU_GRPC_FRAME_HEADER, msg, len);
	*ret_body = b;
	*ret_len = TU_GRPC_FRAME_HEADER + len;
	return 0;
}

int tu_grpc_format_timeout(uint64_t usec, char *buf, size_t size)
{
	/* Units from finest to coarsest, each with its size in microseconds. */
	static const struct {
		char unit;
		uint64_t usec;
	} units[] = {
	    {'m', UINT64_C(1000)},
	    {'S', UINT64_C(1000000)},
	    {'M', UINT64_C(60000000)},
	    {'H', UINT64_C(3600000000)},
	};

	const uint64_t max_value = UINT64_C(99999999); /* 8 ASCII digits */
	uint64_t v = max_value;
	char unit = 'H';

	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		uint64_t n = usec / units[i].usec + (usec % units[i].usec != 0);
		if (n <= max_value) {
			v = n;
			unit = units[i].unit;
			break;
		}
	}
	if (v == 0)
		v = 1;
	int n = snprintf(buf, size, "%" PRIu64 "%c", v, unit);
	if (n < 0 || (size_t) n >= size)
		return -ERANGE;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t tu_grpc_percent_decode(const char *in, size_t in_len, char *out, size_t size)
{
	size_t o = 0;

	if (size == 0)
		return 0;
	for (size_t i = 0; i < in_len && o + 1 < size; i++) {
		unsigned char c = (unsigned char) in[i];
		if (c == '%' && i + 2 < in_len && hexval(in[i + 1]) >= 0 &&
		    hexval(in[i + 2]) >= 0) {
			c = (unsigned char) (hexval(in[i + 1]) << 4 | hexval(in[i + 2]));
			i += 2;
		}
		/* UTF-8 bytes pass; control characters could forge log lines. */
		if (c < 0x20 || c == 0x7f)
			c = '?';
		out[o++] = (char) c;
	}
	out[o] = '\0';
	return o;
}

static const char *const code_names[] = {
    [TU_GRPC_OK] = "OK",
    [TU_GRPC_CANCELLED] = "CANCELLED",
    [TU_GRPC_UNKNOWN] = "UNKNOWN",
    [TU_GRPC_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
    [TU_GRPC_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
    [TU_GRPC_NOT_FOUND] = "NOT_FOUND",
    [TU_GRPC_ALREADY_EXISTS] = "ALREADY_EXISTS",
    [TU_GRPC_PERMISSION_DENIED] = "PERMISSION_DENIED",
    [TU_GRPC_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
    [TU_GRPC_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
    [TU_GRPC_ABORTED] = "ABORTED",
    [TU_GRPC_OUT_OF_RANGE] = "OUT_OF_RANGE",
    [TU_GRPC_UNIMPLEMENTED] = "UNIMPLEMENTED",
    [TU_GRPC_INTERNAL] = "INTERNAL",
    [TU_GRPC_UNAVAILABLE] = "UNAVAILABLE",
    [TU_GRPC_DATA_LOSS] = "DATA_LOSS",
    [TU_GRPC_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

const char *tu_grpc_code_name(int code)
{
	if (code < 0 || (size_t) code >= ELEMENTSOF(code_names))
		return "UNKNOWN_STATUS";
	return code_names[code];
}

const char *tu_grpc_rpc_name(const char *path, char *buf, size_t size)
{
	const char *p = path ? path : "";
	const char *slash = strrchr(p, '/');

	if (size == 0)
		return buf;
	if (slash && slash != p) {
		/* service part: from after the last '.' before the method's slash */
		const char *start = slash;
		while (start > p && start[-1] != '.' && start[-1] != '/')
			start--;
		p = start;
	} else if (*p == '/') {
		p++;
	}
	snprintf(buf, size, "%s", p);
	return buf;
}

/* errno per status; 0 marks "not a status we expect from Auth" -> -EIO. */
static const int code_errno[] = {
    [TU_GRPC_NOT_FOUND] = -ENOENT,
    [TU_GRPC_PERMISSION_DENIED] = -EACCES,
    [TU_GRPC_UNAUTHENTICATED] = -EACCES,
    [TU_GRPC_UNIMPLEMENTED] = -EOPNOTSUPP,
    [TU_GRPC_DEADLINE_EXCEEDED] = -ETIMEDOUT,
};

int tu_grpc_status_to_errno(int code, const char *path, const char *grpc_message,
			    struct tu_err *reterr)
{
	char rpc[128];
	const char *msg = grpc_message ? grpc_message : "";
	int r;

	if (code == TU_GRPC_OK)
		return 0;
	tu_grpc_rpc_name(path, rpc, sizeof(rpc));
	if (code == -1)
		return tu_err_set(reterr, -EPROTO,
				  "%s: no grpc-status trailer in the answer (not a gRPC server?)",
				  rpc);
	if (code < 0 || (size_t) code >= ELEMENTSOF(code_names)) {
		r = tu_err_set(reterr, -EPROTO, "%s: invalid grpc-status in the answer%s%s%s", rpc,
			       *msg ? " (" : "", msg, *msg ? ")" : "");
		if (reterr && code >= 0)
			reterr->grpc_status = code;
		return r;
	}

	r = (size_t) code < ELEMENTSOF(code_errno) && code_errno[code] ? code_errno[code] : -EIO;
	if (code == TU_GRPC_PERMISSION_DENIED || code == TU_GRPC_UNAUTHENTICATED)
		tu_err_set(reterr, r, "Auth refused: the credential lacks permission for %s (%s)",
			   rpc, *msg ? msg : tu_grpc_code_name(code));
	else
		tu_err_set(reterr, r, "%s failed: %s%s%s", rpc, tu_grpc_code_name(code),
			   *msg ? ": " : "", msg);
	if (reterr)
		reterr->grpc_status = code;
	return r;
}

struct call_state {
	struct tu_grpc_parser parser;
};

/* The request as one gRPC frame, refused over the message limit (errors named in reterr). */
static int frame_request(const uint8_t *req, size_t req_len, size_t max_message, uint8_t **ret_body,
			 size_t *ret_len, struct tu_err *reterr)
{
	int r;

	if (req_len > max_message)
		return tu_err_set(reterr, -EMSGSIZE,
				  "request of %zu bytes over the message limit of %zu bytes",
				  req_len, max_message);
	r = tu_grpc_frame(req, req_len, ret_body, ret_len);
	if (r < 0)
		return tu_err_set(reterr, r, "cannot frame the request: %s", strerror(-r));
	return 0;
}

static int on_body(void *userdata, const uint8_t *data, size_t len, struct tu_err *reterr)
{
	struct call_state *s = userdata;

	return tu_grpc_parser_feed(&s->parser, data, len, reterr);
}

int tu_grpc_call(struct tu_transport *t, const char *path, const uint8_t *req, size_t req_len,
		 uint64_t deadline_usec, size_t max_message, tu_grpc_message_fn on_message,
		 void *userdata, size_t *ret_count, struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *body = NULL;
	struct tu_transport_status st = {.grpc_status = -1};
	struct call_state s;
	size_t body_len = 0;
	int r;

	r = frame_request(req, req_len, max_message, &body, &body_len, reterr);
	if (r < 0)
		return r;

	tu_grpc_parser_init(&s.parser, max_message, on_message, userdata);
	r = t->call(t, path, body, body_len, deadline_usec, on_body, &s, &st, reterr);
	if (r >= 0)
		r = tu_grpc_parser_finish(&s.parser, reterr);
	if (r >= 0)
		r = tu_grpc_status_to_errno(st.grpc_status, path, st.grpc_message, reterr);
	size_t n = tu_grpc_parser_count(&s.parser);
	tu_grpc_parser_done(&s.parser);
	if (r < 0)
		return r;
	if (ret_count)
		*ret_count = n;
	return 0;
}

struct stream_state {
	struct tu_grpc_parser parser;
	tu_transport_tick_fn tick;
	void *userdata;
};

static int on_stream_body(void *userdata, const uint8_t *data, size_t len, struct tu_err *reterr)
{
	struct stream_state *s = userdata;

	return tu_grpc_parser_feed(&s->parser, data, len, reterr);
}

static int on_stream_tick(void *userdata, struct tu_err *reterr)
{
	struct stream_state *s = userdata;

	return s->tick ? s->tick(s->userdata, reterr) : 0;
}

int tu_grpc_stream(struct tu_transport *t, const char *path, const uint8_t *req, size_t req_len,
		   size_t max_message, tu_grpc_message_fn on_message, tu_transport_tick_fn on_tick,
		   void *userdata, struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *body = NULL;
	struct tu_transport_status st = {.grpc_status = -1};
	struct stream_state s = {.tick = on_tick, .userdata = userdata};
	size_t body_len = 0;
	char rpc[128];
	int r;

	if (!t->stream)
		return tu_err_set(reterr, -EOPNOTSUPP, "this transport cannot hold a stream");
	r = frame_request(req, req_len, max_message, &body, &body_len, reterr);
	if (r < 0)
		return r;

	tu_grpc_parser_init(&s.parser, max_message, on_message, userdata);
	r = t->stream(t, path, body, body_len, on_stream_body, on_stream_tick, &s, &st, reterr);
	if (r >= 0)
		r = tu_grpc_parser_finish(&s.parser, reterr);
	if (r >= 0)
		r = tu_grpc_status_to_errno(st.grpc_status, path, st.grpc_message, reterr);
	if (r >= 0)
		r = tu_err_set(reterr, -EIO, "%s: the server ended the stream",
			       tu_grpc_rpc_name(path, rpc, sizeof(rpc)));
	tu_grpc_parser_done(&s.parser);
	return r;
}

struct unary_state {
	const char *path;
	uint8_t *msg;
	size_t len;
	size_t n;
};

static int on_unary_message(void *userdata, const uint8_t *msg, size_t len, struct tu_err *reterr)
{
	struct unary_state *u = userdata;
	char rpc[128];

	if (++u->n > 1)
		return tu_err_set(reterr, -EBADMSG,
				  "unary RPC %s answered with more than one message",
				  tu_grpc_rpc_name(u->path, rpc, sizeof(rpc)));
	u->msg = malloc(len ? len : 1);
	if (!u->msg)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	if (len)
		memcpy(u->msg, msg, len);
	u->len = len;
	return 0;
}

int tu_grpc_unary(struct tu_transport *t, const char *path, const uint8_t *req, size_t req_len,
		  uint64_t deadline_usec, size_t max_message, uint8_t **ret_msg, size_t *ret_len,
		  struct tu_err *reterr)
{
	struct unary_state u = {.path = path};
	char rpc[128];
	int r;

	r = tu_grpc_call(t, path, req, req_len, deadline_usec, max_message, on_unary_message, &u,
			 NULL, reterr);
	if (r < 0) {
		free(u.msg);
		return r;
	}
	if (u.n != 1) {
		free(u.msg);
		return tu_err_set(reterr, -EBADMSG,
				  "unary RPC %s answered with %zu messages, expected exactly 1",
				  tu_grpc_rpc_name(path, rpc, sizeof(rpc)), u.n);
	}
	*ret_msg = u.msg;
	*ret_len = u.len;
	return 0;
}
