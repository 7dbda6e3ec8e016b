/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws.c - the WebSocket connection upgrade (see ws.h).  Layer: libcore.
 *
 * Framing (RFC 6455) as Teleport's Proxy speaks it after the 101: every
 * frame we send is one FIN binary frame, masked with an all-zero key (the
 * payload is unchanged); from the Proxy, binary and continuation frames are
 * Auth's bytes, a ping is answered with a pong holding the same payload, a
 * close ends the stream, anything else is skipped.  Data frames are
 * streamed (never held whole), control frames are at most 125 bytes.
 */
#include "ws.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cache.h"
#include "cleanup.h"
#include "conf.h"
#include "err.h"
#include "fsutil.h"
#include "transport.h"
#include "tunnel-pump.h"
#include "ws-tls.h"

#define MAX_HEAD      ((size_t) 8192) /* the upgrade response's status line and headers */
#define IN_BUF        ((size_t) 16384)
#define OUT_BUF       ((size_t) 40960)
#define MAX_FRAME_OUT ((size_t) 16384) /* payload bytes per frame we send */
#define WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum {
	OP_CONT = 0x0,
	OP_TEXT = 0x1,
	OP_BINARY = 0x2,
	OP_CLOSE = 0x8,
	OP_PING = 0x9,
	OP_PONG = 0xA
};

enum dec_state { DEC_HEADER, DEC_DATA, DEC_CONTROL, DEC_SKIP };

struct ws {
	struct tu_carrier c; /* first */
	struct tu_tls *tls;
	char what[320];
	uint8_t in[IN_BUF];
	size_t in_off, in_len;
	uint8_t out[OUT_BUF];
	size_t out_off, out_len;
	enum dec_state st;
	uint8_t opcode;
	bool masked;
	uint8_t mask[4];
	uint64_t remain, pos;
	uint8_t ctrl[125];
	size_t ctrl_len;
	bool closed;
	/* tu_ws_carrier_test_new(): no connection; input from src, output to sink */
	const uint8_t *src;
	size_t src_len, src_pos, src_chunk;
	uint8_t *sink;
	size_t sink_len, sink_cap;
};

void tu_ws_accept_key(const char *key, char out[29])
{
	unsigned char md[SHA_DIGEST_LENGTH];
	char buf[128 + sizeof(WS_GUID)];
	int n = snprintf(buf, sizeof(buf), "%.128s%s", key, WS_GUID);

	/* SHA-1 here is RFC 6455's handshake check, not a security boundary. */
	SHA1((const unsigned char *) buf, (size_t) n, md);
	EVP_EncodeBlock((unsigned char *) out, md, SHA_DIGEST_LENGTH);
}

/* The value of header name in head (case-insensitive name, trimmed), or false. */
static bool header_value(const char *head, size_t len, const char *name, char *buf, size_t size)
{
	const char *p = memchr(head, '\n', len), *end = head + len;
	size_t nl = strlen(name);

	while (p && p < end) {
		const char *line = p + 1, *eol = memchr(line, '\n', (size_t) (end - line));
		if (!eol)
			eol = end;
		const char *colon = memchr(line, ':', (size_t) (eol - line));
		if (colon && (size_t) (colon - line) == nl && strncasecmp(line, name, nl) == 0) {
			const char *v = colon + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			snprintf(buf, size, "%.*s", (int) (ve - v), v);
			return true;
		}
		p = eol < end ? eol : NULL;
	}
	return false;
}

int tu_ws_check_response(const char *head, size_t len, const char *key, const char *what,
			 struct tu_err *reterr)
{
	char v[256], want[29], safe[256];
	int status = 0;

	if (len < 12 || memcmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
		return tu_err_set(reterr, -EPROTO,
				  "%s answered the connection upgrade with something not HTTP",
				  what);
	for (int i = 9; i < 12; i++) {
		if (head[i] < '0' || head[i] > '9')
			return tu_err_set(
			    reterr, -EPROTO,
			    "%s answered the connection upgrade with a bad status line", what);
		status = status * 10 + (head[i] - '0');
	}
	if (status == 404)
		return tu_err_set(reterr, -EOPNOTSUPP,
				  "%s has no " TU_WS_PATH
				  " (HTTP 404): not a Teleport Proxy, or one "
				  "older than 13 that cannot upgrade connections",
				  what);
	if (status != 101)
		return tu_err_set(reterr, -EPROTO,
				  "%s refused the connection upgrade with HTTP status %d", what,
				  status);
	if (!header_value(head, len, "Upgrade", v, sizeof(v)) || strcasecmp(v, "websocket") != 0)
		return tu_err_set(reterr, -EPROTO,
				  "%s answered with the legacy connection upgrade (Upgrade: '%s'), "
				  "which is not supported: only the WebSocket upgrade is",
				  what, tu_sanitize(v, safe, sizeof(safe)));
	if (!header_value(head, len, "Sec-WebSocket-Protocol", v, sizeof(v)))
		v[0] = '\0';
	if (strcmp(v, TU_WS_SUBPROTOCOL) != 0)
		return tu_err_set(reterr, -EPROTO,
				  "%s chose WebSocket sub-protocol '%s', not " TU_WS_SUBPROTOCOL,
				  what, tu_sanitize(v, safe, sizeof(safe)));
	tu_ws_accept_key(key, want);
	if (!header_value(head, len, "Sec-WebSocket-Accept", v, sizeof(v)) || strcmp(v, want) != 0)
		return tu_err_set(
		    reterr, -EPROTO,
		    "%s answered the WebSocket upgrade with a wrong Sec-WebSocket-Accept "
		    "(not a WebSocket server, or something in between altered it)",
		    what);
	return 0;
}

/* -- the carrier -- */

/* Queues one frame (FIN, opcode, zero mask) if it fits. */
static bool queue_frame(struct ws *w, uint8_t opcode, const uint8_t *p, size_t n)
{
	size_t hl = 2 + (n > 125 ? 2 : 0) + 4;

	if (n > 65535 || w->out_off + w->out_len + hl + n > OUT_BUF) {
		if (w->out_off > 0) {
			memmove(w->out, w->out + w->out_off, w->out_len);
			w->out_off = 0;
		}
		if (n > 65535 || w->out_len + hl + n > OUT_BUF)
			return false;
	}
	uint8_t *o = w->out + w->out_off + w->out_len;
	o[0] = (uint8_t) (0x80 | opcode);
	if (n > 125) {
		o[1] = 0x80 | 126;
		o[2] = (uint8_t) (n >> 8);
		o[3] = (uint8_t) n;
	} else {
		o[1] = (uint8_t) (0x80 | n);
	}
	memset(o + hl - 4, 0, 4);
	if (n)
		memcpy(o + hl, p, n);
	w->out_len += hl + n;
	return true;
}

static int ws_flush(struct tu_carrier *c, struct tu_err *reterr)
{
	struct ws *w = (struct ws *) c;

	if (!w->tls) {
		size_t n =
		    w->out_len < w->sink_cap - w->sink_len ? w->out_len : w->sink_cap - w->sink_len;
		if (n)
			memcpy(w->sink + w->sink_len, w->out + w->out_off, n);
		w->sink_len += n;
		w->out_off = w->out_len = 0;
		return 0;
	}
	while (w->out_len > 0) {
		size_t n = 0;
		int r = tu_tls_write(w->tls, w->out + w->out_off, w->out_len, &n, reterr);
		if (r < 0)
			return r;
		if (n == 0)
			break;
		w->out_off += n;
		w->out_len -= n;
	}
	if (w->out_len == 0)
		w->out_off = 0;
	return 0;
}

static int ws_write(struct tu_carrier *c, const uint8_t *buf, size_t len, size_t *ret_n,
		    struct tu_err *reterr)
{
	struct ws *w = (struct ws *) c;
	size_t n = len < MAX_FRAME_OUT ? len : MAX_FRAME_OUT;
	size_t room = OUT_BUF - w->out_len;

	(void) reterr;
	*ret_n = 0;
	if (room <= 8)
		return 0;
	if (n > room - 8)
		n = room - 8;
	if (n > 0 && queue_frame(w, OP_BINARY, buf, n))
		*ret_n = n;
	return 0;
}

/* Fills w->in from TLS when empty.  Returns 1 when bytes came, 0 when none now, <0 error. */
static int fill(struct ws *w, struct tu_err *reterr)
{
	size_t n = 0;
	int r;

	if (w->in_off > 0 && w->in_len > 0)
		memmove(w->in, w->in + w->in_off, w->in_len);
	w->in_off = 0;
	if (w->in_len == IN_BUF)
		return 0;
	if (!w->tls) {
		n = w->src_len - w->src_pos;
		if (n > w->src_chunk)
			n = w->src_chunk;
		if (n > IN_BUF - w->in_len)
			n = IN_BUF - w->in_len;
		if (n)
			memcpy(w->in + w->in_len, w->src + w->src_pos, n);
		w->src_pos += n;
		r = n == 0 && w->src_pos == w->src_len ? -EPIPE : 0;
	} else {
		r = tu_tls_read(w->tls, w->in + w->in_len, IN_BUF - w->in_len, &n, reterr);
	}
	if (r == -EPIPE)
		return tu_err_set(reterr, -ECONNRESET,
				  "%s ended the WebSocket stream without a close frame", w->what);
	if (r < 0)
		return r;
	w->in_len += n;
	return n > 0;
}

/* Parses a frame header at w->in; returns 1 parsed, 0 need more bytes, <0 error. */
static int parse_header(struct ws *w, struct tu_err *reterr)
{
	const uint8_t *p = w->in + w->in_off;
	size_t have = w->in_len, need = 2;
	uint64_t len;

	if (have < 2)
		return 0;
	if (p[0] & 0x70)
		return tu_err_set(reterr, -EPROTO,
				  "%s sent a WebSocket frame with reserved bits set", w->what);
	w->opcode = p[0] & 0x0f;
	w->masked = p[1] & 0x80;
	len = p[1] & 0x7f;
	if (len == 126)
		need += 2;
	else if (len == 127)
		need += 8;
	if (w->masked)
		need += 4;
	if (have < need)
		return 0;
	size_t o = 2;
	if (len == 126) {
		len = (uint64_t) p[2] << 8 | p[3];
		o = 4;
	} else if (len == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		o = 10;
		if (len >> 63)
			return tu_err_set(reterr, -EPROTO,
					  "%s sent a WebSocket frame with a bad length", w->what);
	}
	if (w->masked)
		memcpy(w->mask, p + o, 4);
	w->in_off += need;
	w->in_len -= need;
	w->remain = len;
	w->pos = 0;
	if (w->opcode & 0x8) {
		if (len > 125 || !(p[0] & 0x80))
			return tu_err_set(
			    reterr, -EPROTO,
			    "%s sent a WebSocket control frame over 125 bytes or fragmented",
			    w->what);
		w->ctrl_len = 0;
		w->st = DEC_CONTROL;
	} else if (w->opcode == OP_BINARY || w->opcode == OP_CONT) {
		w->st = DEC_DATA;
	} else {
		w->st = DEC_SKIP;
	}
	return 1;
}

static void unmask(struct ws *w, uint8_t *d, size_t n)
{
	if (!w->masked)
		return;
	for (size_t i = 0; i < n; i++)
		d[i] ^= w->mask[(w->pos + i) & 3];
}

static int control_done(struct ws *w, struct tu_err *reterr)
{
	w->st = DEC_HEADER;
	if (w->opcode == OP_CLOSE) {
		w->closed = true;
		return -EPIPE;
	}
	if (w->opcode == OP_PING && !queue_frame(w, OP_PONG, w->ctrl, w->ctrl_len))
		return tu_err_set(reterr, -EPROTO, "%s sent pings faster than we can answer",
				  w->what);
	return 0;
}

static int ws_read(struct tu_carrier *c, uint8_t *buf, size_t size, size_t *ret_n,
		   struct tu_err *reterr)
{
	struct ws *w = (struct ws *) c;
	size_t got = 0;
	int r;

	*ret_n = 0;
	if (w->closed)
		return -EPIPE;
	for (unsigned rounds = 0; rounds < 1024 && got < size; rounds++) {
		if (w->st == DEC_HEADER) {
			r = parse_header(w, reterr);
			if (r == 0) {
				/* More bytes needed: only now is an end of input an error. */
				r = fill(w, reterr);
				if (r == 0)
					break;
				if (r > 0)
					continue;
			}
			if (r < 0) {
				*ret_n = got;
				return got ? 0 : r; /* the bytes first; the error again next time */
			}
			if (w->remain == 0) {
				r = w->st == DEC_CONTROL ? control_done(w, reterr) : 0;
				w->st = DEC_HEADER;
				if (r < 0) {
					*ret_n = got;
					return got ? 0 : r;
				}
			}
			continue;
		}
		if (w->in_len == 0) {
			r = fill(w, reterr);
			if (r < 0) {
				*ret_n = got;
				return got ? 0 : r;
			}
			if (r == 0)
				break;
		}
		size_t n = w->in_len;
		if (n > w->remain)
			n = (size_t) w->remain;
		if (w->st == DEC_DATA && n > size - got)
			n = size - got;
		uint8_t *src = w->in + w->in_off;
		if (w->st == DEC_DATA) {
			memcpy(buf + got, src, n);
			unmask(w, buf + got, n);
			got += n;
		} else if (w->st == DEC_CONTROL) {
			memcpy(w->ctrl + w->ctrl_len, src, n);
			unmask(w, w->ctrl + w->ctrl_len, n);
			w->ctrl_len += n;
		}
		w->in_off += n;
		w->in_len -= n;
		w->pos += n;
		w->remain -= n;
		if (w->in_len == 0)
			w->in_off = 0;
		if (w->remain == 0) {
			r = w->st == DEC_CONTROL ? control_done(w, reterr) : 0;
			w->st = DEC_HEADER;
			if (r < 0) {
				*ret_n = got;
				return got ? 0 : r;
			}
		}
	}
	*ret_n = got;
	return 0;
}

static void ws_poll(struct tu_carrier *c, int *ret_fd, short *ret_events)
{
	struct ws *w = (struct ws *) c;

	if (!w->tls) {
		*ret_fd = -1;
		*ret_events = 0;
		return;
	}
	*ret_fd = tu_tls_fd(w->tls);
	*ret_events =
	    (short) (POLLIN | (w->out_len > 0 || tu_tls_wants_write(w->tls) ? POLLOUT : 0));
}

static void ws_free(struct tu_carrier *c)
{
	struct ws *w = (struct ws *) c;

	if (!w)
		return;
	tu_tls_free(w->tls);
	free(w->sink);
	free(w);
}

static const struct tu_carrier_ops ws_ops = {
    .read = ws_read,
    .write = ws_write,
    .flush = ws_flush,
    .poll = ws_poll,
    .free = ws_free,
};

static void host_header(const struct tu_ws_target *t, char *buf, size_t size)
{
	if (strchr(t->host, ':'))
		snprintf(buf, size, "[%s]:%u", t->host, t->port);
	else
		snprintf(buf, size, "%s:%u", t->host, t->port);
}

int tu_ws_connect(const struct tu_ws_target *t, uint64_t deadline_usec, struct tu_carrier **ret,
		  struct tu_err *reterr)
{
	int fd = -1;
	int r = tu_dial_tcp(t->host, t->port, "the Proxy", deadline_usec, &fd, reterr);

	if (r < 0)
		return r;
	return tu_ws_connect_fd(t, fd, deadline_usec, ret, reterr);
}

int tu_ws_connect_fd(const struct tu_ws_target *t, int fd, uint64_t deadline_usec,
		     struct tu_carrier **ret, struct tu_err *reterr)
{
	struct tu_tls_opts o = {
	    .host = t->host, .port = t->port, .ca_path = t->ca_path, .what = "the Proxy"};
	unsigned char rnd[16];
	char key[32], req[1024], hostport[300];
	char head[MAX_HEAD + 1];
	size_t hlen = 0;
	struct ws *w;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w) {
		close(fd);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	w->c.ops = &ws_ops;
	host_header(t, hostport, sizeof(hostport));
	snprintf(w->what, sizeof(w->what), "the Proxy %s", hostport);
	r = tu_tls_connect(fd, &o, deadline_usec, &w->tls, reterr);
	if (r < 0) {
		free(w);
		return r;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		r = tu_err_set(reterr, -EIO, "no random bytes for the WebSocket key");
		goto fail;
	}
	EVP_EncodeBlock((unsigned char *) key, rnd, sizeof(rnd));
	int n = snprintf(req, sizeof(req),
			 "GET " TU_WS_PATH " HTTP/1.1\r\n"
			 "Host: %s\r\n"
			 "User-Agent: teleport-unix/" PACKAGE_VERSION "\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Protocol: " TU_WS_SUBPROTOCOL "\r\n"
			 "Sec-WebSocket-Version: 13\r\n"
			 "Upgrade: websocket\r\n"
			 "\r\n",
			 hostport, key);
	r = tu_tls_write_all(w->tls, (const uint8_t *) req, (size_t) n, deadline_usec, reterr);
	if (r < 0)
		goto fail;
	/* The head, byte-exact: whatever follows the blank line is already frames. */
	for (;;) {
		size_t got = 0;
		char *end;
		r = tu_tls_read_some(w->tls, (uint8_t *) head + hlen, MAX_HEAD - hlen,
				     deadline_usec, &got, reterr);
		if (r == -EPIPE)
			r = tu_err_set(reterr, -ECONNRESET,
				       "%s closed the connection instead of answering the upgrade",
				       w->what);
		if (r == -ETIMEDOUT)
			r = tu_err_set(reterr, -ETIMEDOUT,
				       "%s did not answer the connection upgrade in time", w->what);
		if (r < 0)
			goto fail;
		hlen += got;
		head[hlen] = '\0';
		end = memmem(head, hlen, "\r\n\r\n", 4);
		if (end) {
			size_t hl = (size_t) (end - head);
			size_t rest = hlen - hl - 4;
			r = tu_ws_check_response(head, hl, key, w->what, reterr);
			if (r < 0)
				goto fail;
			memcpy(w->in, end + 4, rest);
			w->in_len = rest;
			break;
		}
		if (hlen == MAX_HEAD) {
			r = tu_err_set(
			    reterr, -EPROTO,
			    "%s answered the connection upgrade with headers over %zu bytes",
			    w->what, MAX_HEAD);
			goto fail;
		}
	}
	*ret = &w->c;
	return 0;
fail:
	ws_free(&w->c);
	return r;
}

int tu_ws_carrier_test_new(const uint8_t *in, size_t len, size_t chunk, struct tu_carrier **ret)
{
	struct ws *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->sink_cap = 4096;
	w->sink = malloc(w->sink_cap);
	if (!w->sink) {
		free(w);
		return -ENOMEM;
	}
	w->c.ops = &ws_ops;
	snprintf(w->what, sizeof(w->what), "the test input");
	w->src = in;
	w->src_len = len;
	w->src_chunk = chunk ? chunk : IN_BUF;
	*ret = &w->c;
	return 0;
}

const uint8_t *tu_ws_carrier_test_output(struct tu_carrier *c, size_t *ret_len)
{
	struct ws *w = (struct ws *) c;

	ws_flush(c, NULL);
	*ret_len = w->sink_len;
	return w->sink;
}

/* -- the dialer -- */

struct ws_dial {
	char *host;
	uint16_t port;
	char *ca_path;
	int first_fd; /* the loader's connection, for the first carrier; -1 none */
};

static void ws_dial_free(void *p)
{
	struct ws_dial *d = p;

	if (!d)
		return;
	if (d->first_fd >= 0)
		close(d->first_fd);
	free(d->host);
	free(d->ca_path);
	free(d);
}

static int ws_dial_open(void *userdata, uint64_t deadline_usec, struct tu_carrier **ret,
			struct tu_err *reterr)
{
	struct ws_dial *d = userdata;
	struct tu_ws_target t = {.host = d->host, .port = d->port, .ca_path = d->ca_path};

	if (d->first_fd >= 0) {
		int fd = d->first_fd;
		d->first_fd = -1;
		return tu_ws_connect_fd(&t, fd, deadline_usec, ret, reterr);
	}
	return tu_ws_connect(&t, deadline_usec, ret, reterr);
}

int tu_ws_dialer_new(const struct tu_ws_target *t, struct tu_stream_dialer **ret,
		     struct tu_err *reterr)
{
	return tu_ws_dialer_new_fd(t, -1, ret, reterr);
}

int tu_ws_dialer_new_fd(const struct tu_ws_target *t, int first_fd, struct tu_stream_dialer **ret,
			struct tu_err *reterr)
{
	struct ws_dial *d = calloc(1, sizeof(*d));

	if (!d && first_fd >= 0)
		close(first_fd);
	if (d) {
		d->first_fd = first_fd;
		d->host = strdup(t->host);
		d->port = t->port;
		d->ca_path = t->ca_path ? strdup(t->ca_path) : NULL;
	}
	if (!d || !d->host || (t->ca_path && !d->ca_path)) {
		ws_dial_free(d);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	return tu_stream_dialer_new("proxy tls-routing+upgrade", ws_dial_open, d, ws_dial_free, ret,
				    reterr);
}

/* -- deciding -- */

void tu_ws_upgrade_required(const struct tu_ws_target *t, uint64_t deadline_usec,
			    bool *ret_required)
{
	struct tu_tls_opts o = {.host = t->host,
				.port = t->port,
				.ca_path = t->ca_path,
				.alpn = TU_ALPN_REVERSE_TUNNEL,
				.what = "the Proxy"};
	struct tu_tls *tls = NULL;
	char alpn[64];
	int fd = -1, r;

	*ret_required = false;
	if (tu_dial_tcp(t->host, t->port, "the Proxy", deadline_usec, &fd, NULL) < 0)
		return;
	r = tu_tls_connect(fd, &o, deadline_usec, &tls, NULL);
	if (r == -ENOPROTOOPT)
		*ret_required = true;
	if (r < 0)
		return;
	*ret_required = tu_tls_alpn(tls, alpn, sizeof(alpn))[0] == '\0';
	tu_tls_free(tls);
}

static int memory_path(const struct tu_conf *conf, char *buf, size_t size)
{
	return tu_cache_path(conf, TU_WS_MEMORY_FILE, buf, size);
}

void tu_ws_forget(const struct tu_conf *conf)
{
	char path[4096];

	if (memory_path(conf, path, sizeof(path)) == 0)
		(void) unlink(path);
}

void tu_ws_decide(const struct tu_conf *conf, const struct tu_ws_target *t, int64_t now_usec,
		  uint64_t deadline_usec, bool *ret_upgrade, bool *ret_remembered)
{
	char path[4096], hostport[300], want[360], line[420];
	_cleanup_free_ char *text = NULL;
	bool required = false;

	*ret_remembered = false;
	if (conf->proxy_conn_upgrade != TU_CONN_UPGRADE_AUTO) {
		*ret_upgrade = conf->proxy_conn_upgrade == TU_CONN_UPGRADE_ALWAYS;
		return;
	}
	host_header(t, hostport, sizeof(hostport));
	snprintf(want, sizeof(want), "teleport-unix proxy-upgrade 1\n%s ", hostport);
	bool have_path = memory_path(conf, path, sizeof(path)) == 0;
	/* Only a file we could trust as root (root-owned, not writable by others). */
	if (have_path &&
	    tu_fs_read_file(path, 1024, geteuid() == 0 ? 0 : TU_FS_RELAXED, &text, NULL, NULL) ==
		0 &&
	    strncmp(text, want, strlen(want)) == 0) {
		const char *p = text + strlen(want);
		int64_t when = 0;
		int bit = -1;
		if (p[0] == '0' || p[0] == '1')
			bit = p[0] - '0';
		if (bit >= 0 && p[1] == ' ') {
			for (p += 2; *p >= '0' && *p <= '9' && when < INT64_MAX / 10; p++)
				when = when * 10 + (*p - '0');
			if (*p == '\n' && when <= now_usec / 1000000 &&
			    (uint64_t) (now_usec / 1000000 - when) < TU_WS_MEMORY_USEC / 1000000) {
				*ret_upgrade = bit == 1;
				*ret_remembered = true;
				return;
			}
		}
	}
	tu_ws_upgrade_required(t, deadline_usec, &required);
	*ret_upgrade = required;
	if (have_path) {
		int n = snprintf(line, sizeof(line), "%s%d %" PRId64 "\n", want, required ? 1 : 0,
				 now_usec / 1000000);
		if (n > 0 && (size_t) n < sizeof(line))
			(void) tu_fs_write_atomic(path, line, (size_t) n, 0644, NULL);
	}
}
