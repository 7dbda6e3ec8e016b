/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake-transport.h - a scripted struct tu_transport for unit tests of
 * grpc.c and auth.c: each call consumes the next step (expected path, body
 * bytes delivered in chunks, grpc-status/message, or a transport error) and
 * records the request.  Header-only, test code only.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "err.h"
#include "grpc.h"
#include "transport.h"

#define FAKE_MAX_CALLS 64

struct fake_step {
	const char *path;    /* expected RPC path; NULL = any */
	const uint8_t *body; /* response body (gRPC frames), may be NULL */
	size_t body_len;
	int grpc_status; /* -1 = no grpc-status at all */
	const char *grpc_message;
	int error; /* < 0: the transport fails with this instead */
	const char *error_msg;
};

struct fake_transport {
	struct tu_transport t;
	const struct fake_step *steps;
	size_t n_steps;
	size_t next;
	size_t chunk; /* body delivered in chunks of this many bytes; 0 = at once */
	size_t n_calls;
	char *paths[FAKE_MAX_CALLS];
	uint8_t *reqs[FAKE_MAX_CALLS]; /* request message, frame prefix removed */
	size_t req_lens[FAKE_MAX_CALLS];
	uint64_t deadlines[FAKE_MAX_CALLS];
	bool unexpected; /* a call had no step or the wrong path */
	bool *closed;    /* set to true on close, when non-NULL */
};

static inline int fake_call(struct tu_transport *t, const char *path, const uint8_t *body,
			    size_t body_len, uint64_t deadline_usec, tu_transport_data_fn on_data,
			    void *userdata, struct tu_transport_status *ret_status,
			    struct tu_err *reterr)
{
	struct fake_transport *f = (struct fake_transport *) t;

	if (f->n_calls < FAKE_MAX_CALLS) {
		size_t i = f->n_calls;
		f->paths[i] = strdup(path);
		f->deadlines[i] = deadline_usec;
		if (body_len >= TU_GRPC_FRAME_HEADER) {
			f->req_lens[i] = body_len - TU_GRPC_FRAME_HEADER;
			f->reqs[i] = malloc(f->req_lens[i] + 1);
			if (f->reqs[i] && f->req_lens[i])
				memcpy(f->reqs[i], body + TU_GRPC_FRAME_HEADER, f->req_lens[i]);
		}
	}
	f->n_calls++;
	if (f->next >= f->n_steps) {
		f->unexpected = true;
		return tu_err_set(reterr, -EIO, "fake: unexpected call to %s", path);
	}
	const struct fake_step *s = &f->steps[f->next++];
	if (s->path && strcmp(s->path, path) != 0) {
		f->unexpected = true;
		return tu_err_set(reterr, -EIO, "fake: expected %s, got %s", s->path, path);
	}
	if (s->error < 0)
		return tu_err_set(reterr, s->error, "%s",
				  s->error_msg ? s->error_msg : "fake transport error");
	size_t off = 0;
	while (off < s->body_len) {
		size_t n = f->chunk && f->chunk < s->body_len - off ? f->chunk : s->body_len - off;
		int r = on_data(userdata, s->body + off, n, reterr);
		if (r < 0)
			return r;
		off += n;
	}
	ret_status->grpc_status = s->grpc_status;
	snprintf(ret_status->grpc_message, sizeof(ret_status->grpc_message), "%s",
		 s->grpc_message ? s->grpc_message : "");
	return 0;
}

static inline void fake_close(struct tu_transport *t)
{
	struct fake_transport *f = (struct fake_transport *) t;
	size_t n = f->n_calls < FAKE_MAX_CALLS ? f->n_calls : FAKE_MAX_CALLS;

	for (size_t i = 0; i < n; i++) {
		free(f->paths[i]);
		free(f->reqs[i]);
	}
	if (f->closed)
		*f->closed = true;
	free(f);
}

/* A heap fake over steps (borrowed: must outlive it). */
static inline struct fake_transport *fake_new(const struct fake_step *steps, size_t n_steps)
{
	struct fake_transport *f = calloc(1, sizeof(*f));

	if (!f)
		abort();
	f->t.call = fake_call;
	f->t.close = fake_close;
	f->steps = steps;
	f->n_steps = n_steps;
	return f;
}

/* Reads $TU_VECTORS_DIR/name whole (test helper: aborts on error). */
static inline uint8_t *read_vector(const char *name, size_t *ret_len)
{
	const char *dir = getenv("TU_VECTORS_DIR");
	char path[4096];
	FILE *fp;
	uint8_t *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/vectors/teleport", name);
	fp = fopen(path, "rbe");
	if (!fp) {
		fprintf(stderr, "cannot open vector %s\n", path);
		abort();
	}
	if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
		abort();
	buf = malloc((size_t) n + 1);
	if (!buf || fread(buf, 1, (size_t) n, fp) != (size_t) n)
		abort();
	fclose(fp);
	*ret_len = (size_t) n;
	return buf;
}

/* Frames a whole vector file as one gRPC message. */
static inline uint8_t *framed_vector(const char *name, size_t *ret_len)
{
	size_t n;
	uint8_t *m = read_vector(name, &n), *b = NULL;

	if (tu_grpc_frame(m, n, &b, ret_len) < 0)
		abort();
	free(m);
	return b;
}
