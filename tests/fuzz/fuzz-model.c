/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-model.c - libFuzzer target for the protobuf -> model conversion
 * (libcore/model.c).  The first input byte selects the message type (see
 * `parsers` below), the rest is the serialized message.  Everything that
 * parses must also encode and parse back to an equal-sized model (users,
 * roles, locks): that catches conversions that accept what they cannot
 * represent.  Seeds: tests/fuzz/corpus/model/ (the golden vectors with the
 * selector byte prepended).
 *
 * Build by hand (not wired into make yet), from the source dir with a
 * configured build dir B:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include B/config.h \
 *     -Ilibcore -Ilibcore/base -IB/proto tests/fuzz/fuzz-model.c \
 *     libcore/model.c libcore/base/err.c B/proto/[a-z]*.pb-c.c -lprotobuf-c -o fuzz-model
 *   ./fuzz-model tests/fuzz/corpus/model
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "model.h"

#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int r, const struct tu_err *e)
{
	/* Only these codes, and never without a message. */
	if (r == 0)
		return;
	if (r != -EBADMSG && r != -EMSGSIZE && r != -ENOMEM)
		abort();
	if (r != -ENOMEM && e->msg[0] == 0)
		abort();
}

static void user_round_trip(const struct tu_user *u)
{
	struct tu_user b = {0};
	struct tu_err e;
	uint8_t *buf = NULL;
	size_t len = 0;

	/* A record whose content cannot be represented is marked, saying why (model.h); the
	 * callers leave it out, so it is never encoded. */
	if (u->unusable) {
		if (!u->unusable[0])
			abort();
		return;
	}
	if (tu_model_encode_user(u, &buf, &len) < 0)
		abort();
	if (tu_model_parse_user(buf, len, &b, &e) < 0)
		abort();
	if (strcmp(u->name, b.name) != 0 || u->roles.n != b.roles.n || u->traits.n != b.traits.n ||
	    u->is_bot != b.is_bot || u->has_expires != b.has_expires ||
	    u->expires_usec != b.expires_usec || u->has_lock_expires != b.has_lock_expires ||
	    u->lock_expires_usec != b.lock_expires_usec)
		abort();
	tu_user_done(&b);
	free(buf);
}

static void role_round_trip(const struct tu_role *r)
{
	struct tu_role b = {0};
	struct tu_err e;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (r->unusable) {
		if (!r->unusable[0])
			abort();
		return;
	}
	if (tu_model_encode_role(r, &buf, &len) < 0)
		abort();
	if (tu_model_parse_role(buf, len, &b, &e) < 0)
		abort();
	if (strcmp(r->name, b.name) != 0 || r->allow.logins.n != b.allow.logins.n ||
	    r->deny.node_labels.n != b.deny.node_labels.n ||
	    r->create_host_user != b.create_host_user ||
	    r->create_host_user_mode != b.create_host_user_mode ||
	    r->max_session_ttl_nsec != b.max_session_ttl_nsec)
		abort();
	tu_role_done(&b);
	free(buf);
}

static void lock_round_trip(const struct tu_lock *l)
{
	struct tu_lock b = {0};
	struct tu_err e;
	uint8_t *buf = NULL;
	size_t len = 0;

	/* An unreadable lock is kept, and stays unreadable through the snapshot's encoding. */
	if (l->unreadable && !l->unreadable[0])
		abort();
	if (tu_model_encode_lock(l, &buf, &len) < 0)
		abort();
	if (tu_model_parse_lock(buf, len, &b, &e) < 0)
		abort();
	if (strcmp(l->name, b.name) != 0 || l->has_expires != b.has_expires ||
	    l->expires_usec != b.expires_usec || !l->unreadable != !b.unreadable)
		abort();
	tu_lock_done(&b);
	free(buf);
}

static void auth_pref_round_trip(const struct tu_auth_pref *p)
{
	struct tu_auth_pref b = {0};
	struct tu_err e;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (!p->known || tu_model_encode_auth_pref(p, &buf, &len) < 0)
		abort();
	if (tu_model_parse_auth_pref(buf, len, &b, &e) < 0)
		abort();
	if (!b.known || b.require_mfa_type != p->require_mfa_type ||
	    !p->locking_mode != !b.locking_mode || !p->device_trust_mode != !b.device_trust_mode ||
	    (p->locking_mode && strcmp(p->locking_mode, b.locking_mode) != 0) ||
	    (p->device_trust_mode && strcmp(p->device_trust_mode, b.device_trust_mode) != 0))
		abort();
	tu_auth_pref_done(&b);
	free(buf);
}

/* The user CA survives the cache's encoding: same keys, in order; each "<type> <base64>". */
static void user_ca_round_trip(const struct tu_user_ca *ca)
{
	struct tu_user_ca b = {0};
	struct tu_err e;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (!ca->known || ca->keys.n > TU_MODEL_MAX_CA_KEYS)
		abort();
	for (size_t i = 0; i < ca->keys.n; i++) {
		const char *k = ca->keys.v[i], *sp = k ? strchr(k, ' ') : NULL;
		if (!sp || sp == k || !sp[1] || strchr(sp + 1, ' ') || strlen(k) > TU_MODEL_MAX_CA_KEY_LEN)
			abort();
	}
	if (tu_model_encode_user_ca(ca, &buf, &len) < 0)
		abort();
	if (tu_model_parse_user_ca(buf, len, &b, &e) < 0 || !b.known || b.keys.n != ca->keys.n)
		abort();
	for (size_t i = 0; i < ca->keys.n; i++)
		if (strcmp(ca->keys.v[i], b.keys.v[i]) != 0)
			abort();
	tu_user_ca_done(&b);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tu_err e;
	const uint8_t *m;
	size_t len, n = 0;
	char *next = NULL;
	int r;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	m = data + 1;
	len = size - 1;
	tu_err_clear(&e);

	/* 0xff: types.AuthPreferenceV2 (added after the corpus was built on data[0] % 10). */
	if (data[0] == 0xff) {
		struct tu_auth_pref p = {0};
		r = tu_model_parse_auth_pref(m, len, &p, &e);
		if (r == 0)
			auth_pref_round_trip(&p);
		tu_auth_pref_done(&p);
		check_err(r, &e);
		return 0;
	}
	/* 0xfe: types.CertAuthorityV2 (the SSH user CA; issue 14 F3). */
	if (data[0] == 0xfe) {
		struct tu_user_ca ca = {0};
		r = tu_model_parse_user_ca(m, len, &ca, &e);
		if (r == 0)
			user_ca_round_trip(&ca);
		tu_user_ca_done(&ca);
		check_err(r, &e);
		return 0;
	}
	switch (data[0] % 10) {
	case 0: {
		struct tu_user u = {0};
		r = tu_model_parse_user(m, len, &u, &e);
		if (r == 0)
			user_round_trip(&u);
		tu_user_done(&u);
		break;
	}
	case 1: {
		struct tu_role ro = {0};
		r = tu_model_parse_role(m, len, &ro, &e);
		if (r == 0)
			role_round_trip(&ro);
		tu_role_done(&ro);
		break;
	}
	case 2: {
		struct tu_lock l = {0};
		r = tu_model_parse_lock(m, len, &l, &e);
		if (r == 0)
			lock_round_trip(&l);
		tu_lock_done(&l);
		break;
	}
	case 3: {
		struct tu_ping p = {0};
		r = tu_model_parse_ping(m, len, &p, &e);
		if (r == 0 && (!p.cluster_name || !p.server_version || !p.proxy_public_addr ||
			       !p.remote_addr))
			abort();
		tu_ping_done(&p);
		break;
	}
	case 4: {
		struct tu_user u = {0};
		r = tu_model_parse_get_user_response(m, len, &u, &e);
		tu_user_done(&u);
		break;
	}
	case 5: {
		struct tu_user *v = NULL;
		r = tu_model_parse_list_users_append(m, len, &v, &n, &next, &e);
		for (size_t i = 0; r == 0 && i < n; i++)
			user_round_trip(&v[i]);
		tu_users_free(v, n);
		break;
	}
	case 6:
	case 7: {
		struct tu_role *v = NULL;
		r = data[0] % 10 == 6 ? tu_model_parse_list_roles_append(m, len, &v, &n, &next, &e)
				      : tu_model_parse_get_roles_append(m, len, &v, &n, &e);
		for (size_t i = 0; r == 0 && i < n; i++)
			role_round_trip(&v[i]);
		tu_roles_free(v, n);
		break;
	}
	case 8: {
		struct tu_lock *v = NULL;
		r = tu_model_parse_get_locks_append(m, len, &v, &n, &e);
		for (size_t i = 0; r == 0 && i < n; i++)
			lock_round_trip(&v[i]);
		tu_locks_free(v, n);
		break;
	}
	default: {
		struct tu_user *v = NULL;
		r = tu_model_parse_user_append(m, len, &v, &n, &e);
		tu_users_free(v, n);
		break;
	}
	}
	if (r < 0 && n != 0)
		abort(); /* append must not append on failure */
	check_err(r, &e);
	free(next);
	return 0;
}
