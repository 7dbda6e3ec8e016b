/* SPDX-License-Identifier: Apache-2.0 */
/*
 * decide.c - the PAM login decision (SPEC §4 owners, §5 who and whether),
 * shared by pam_teleport.so and `teleport-unix check`.  Layer: libcore.
 *
 * tu_decide_pure() and tu_decide_owners() are pure (no clock, no I/O): they
 * see a dataset, the host and the request.  tu_decide() gathers the inputs
 * (online from Auth, else the private cache snapshot as pam.offline says).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "auth.h"
#include "cache.h"
#include "watch.h"
#include "cleanup.h"
#include "conf.h"
#include "ctx.h"
#include "decide.h"
#include "err.h"
#include "grpc.h"
#include "log.h"
#include "snapshot.h"
#include "sshsig.h"
#include "sshwire.h"

#define AUTH_INFO_MAX   65536 /* SSH_AUTH_INFO_0 we look at */
#define CERT_BLOB_MAX   49152 /* decoded certificate (what 64 KiB of base64 holds) */
#define KEY_ID_MAX      255
_Static_assert(sizeof(((struct tu_ssh_cert *) 0)->key_id) == KEY_ID_MAX + 1, "key id buffer");

/* ---- small helpers ---- */

static int strv_push(struct tu_strv *v, const char *s)
{
	char *c = strdup(s);
	if (!c)
		return -ENOMEM;
	char **nv = realloc(v->v, (v->n + 2) * sizeof(char *));
	if (!nv) {
		free(c);
		return -ENOMEM;
	}
	nv[v->n++] = c;
	nv[v->n] = NULL;
	v->v = nv;
	return 0;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool strv_contains(const struct tu_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->v[i] && strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

static bool user_ignored(const struct tu_user *u, int64_t now_usec, bool use_now)
{
	/* Expired users, bots and users whose record cannot be used own and grant nothing
	 * (accounts.h rules). */
	if (u->is_bot || u->unusable)
		return true;
	return use_now && u->has_expires && u->expires_usec <= now_usec;
}

static void verdict_set(struct tu_verdict *v, enum tu_verdict_kind kind, const char *user, const char *role,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void verdict_set(struct tu_verdict *v, enum tu_verdict_kind kind, const char *user, const char *role,
			const char *fmt, ...)
{
	va_list ap;
	v->kind = kind;
	snprintf(v->user, sizeof(v->user), "%s", user ? user : "");
	snprintf(v->role, sizeof(v->role), "%s", role ? role : "");
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/* ---- owners (SPEC §4) ---- */

/* Whether login is an account granted by u here (and, for host_user_creation, u may create host users). */
static int user_grants(const struct tu_rbac_index *ix, const struct tu_user *u, const struct tu_host *h, int source,
		       const char *login, bool *ret)
{
	struct tu_access a;
	int k = tu_rbac_check_login_ix(ix, u, login, h, &a, NULL);
	if (k < 0)
		return k;
	if (a.allowed && source == TU_SOURCE_HOST_USER_CREATION) {
		struct tu_host_user hu = { 0 };
		k = tu_rbac_host_user_ix(ix, u, h, &hu, NULL);
		if (k < 0)
			return k;
		a.allowed = hu.enabled;
		tu_host_user_done(&hu);
	}
	*ret = a.allowed;
	return 0;
}

/*
 * A dataset that holds only some users (read by name through the state file's key index,
 * tu_cache_load_state_named): the names that were looked up, present or not.  A decision on
 * it that would need any other user (owners by trait or by role, an identity not looked up)
 * returns -EAGAIN, and the caller decides on a full read instead, so the answer is always
 * the one every user would give.
 */
struct partial {
	const char *const *names;
	size_t n;
};

static bool looked_up(const struct partial *part, const char *name)
{
	for (size_t i = 0; i < part->n; i++)
		if (strcmp(part->names[i], name) == 0)
			return true;
	return false;
}

static int owners_ix(const struct tu_rbac_index *ix, const struct tu_host *h, int source, const char *login,
		     int64_t now_usec, bool use_now, const struct partial *part, struct tu_strv *ret,
		     struct tu_err *reterr)
{
	const struct tu_dataset *d = tu_rbac_index_dataset(ix);
	const struct tu_user *named;
	struct tu_strv step = { 0 }, grant = { 0 };
	bool account = false, by_name;
	size_t w = 0;
	int k = 0;

	if (!login || !tu_rbac_valid_login(login) || strcmp(login, "root") == 0) {
		*ret = step;
		return 0;
	}
	/* Step 1: the user named login. */
	if (part && !looked_up(part, login))
		return -EAGAIN;
	named = tu_rbac_index_user(ix, login);
	if (named && !user_ignored(named, now_usec, use_now))
		k = strv_push(&step, named->name);
	/* Step 2: users whose logins trait holds login. */
	by_name = step.n > 0;
	if (part && k >= 0 && !by_name)
		return -EAGAIN; /* nothing to free: step is empty */
	for (size_t i = 0; k >= 0 && !by_name && i < d->n_users; i++) {
		const struct tu_user *u = &d->users[i];
		const struct tu_strv *t = NULL;
		if (!u->name || user_ignored(u, now_usec, use_now))
			continue;
		for (size_t j = 0; j < u->traits.n; j++)
			if (u->traits.e[j].key && strcmp(u->traits.e[j].key, "logins") == 0)
				t = &u->traits.e[j].values;
		if (t && strv_contains(t, login))
			k = strv_push(&step, u->name);
	}
	if (k < 0)
		goto fail;
	/* Is login an account at all?  Try the step 1/2 users first: they usually grant it. */
	for (size_t i = 0; k >= 0 && !account && i < step.n; i++) {
		const struct tu_user *u = tu_rbac_index_user(ix, step.v[i]);
		if (u)
			k = user_grants(ix, u, h, source, login, &account);
	}
	if (part && k >= 0 && !(account && step.n > 0)) {
		tu_strv_done(&step);
		return -EAGAIN;
	}
	/* Step 3 (and the account test when steps 1/2 found nobody granting). */
	for (size_t i = 0; k >= 0 && i < d->n_users && !(account && step.n > 0); i++) {
		const struct tu_user *u = &d->users[i];
		bool g = false;
		if (!u->name || user_ignored(u, now_usec, use_now))
			continue;
		k = user_grants(ix, u, h, source, login, &g);
		if (k >= 0 && g) {
			account = true;
			if (step.n == 0)
				k = strv_push(&grant, u->name);
		}
	}
	if (k < 0)
		goto fail;
	if (!account) {
		tu_strv_done(&step);
		tu_strv_done(&grant);
	} else if (step.n == 0) {
		step = grant;
	} else {
		tu_strv_done(&grant);
	}
	if (step.n > 1)
		qsort(step.v, step.n, sizeof(char *), cmp_strp);
	/* Duplicate user names in the dataset count once. */
	for (size_t i = 0; i < step.n; i++) {
		if (w > 0 && strcmp(step.v[w - 1], step.v[i]) == 0) {
			free(step.v[i]);
			continue;
		}
		step.v[w++] = step.v[i];
	}
	step.n = w;
	*ret = step;
	return 0;
fail:
	tu_strv_done(&step);
	tu_strv_done(&grant);
	return tu_err_set(reterr, k, "resolving the owner of '%s': %s", login, strerror(-k));
}

int tu_decide_owners(const struct tu_dataset *d, const struct tu_host *h, int source, const char *login,
		     struct tu_strv *ret, struct tu_err *reterr)
{
	struct tu_rbac_index *ix = NULL;
	int k = tu_rbac_index_new(d, &ix, reterr);
	if (k < 0)
		return k;
	k = owners_ix(ix, h, source, login, 0, false, NULL, ret, reterr);
	tu_rbac_index_free(ix);
	return k;
}

/*
 * The owners of login at now_usec for a decision.  Expired users own nothing
 * while someone else still grants the login; a login that only expired users
 * grant is still theirs (its account stays in the public snapshot until the
 * next sync), so the decision says "expired" and denies instead of "not a
 * Teleport login", which the shipped stack lets through (a key the user left
 * in ~/.ssh/authorized_keys would then log in).
 */
static int login_owners(const struct tu_rbac_index *ix, const struct tu_host *h, int source, const char *login,
			int64_t now_usec, const struct partial *part, struct tu_strv *ret, struct tu_err *reterr)
{
	int k = owners_ix(ix, h, source, login, now_usec, true, part, ret, reterr);

	if (k >= 0 && ret->n == 0)
		k = owners_ix(ix, h, source, login, now_usec, false, part, ret, reterr);
	return k;
}

/* ---- SSH_AUTH_INFO_0: the key id of a user certificate ---- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 with optional padding; -EBADMSG on anything else. */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t size, size_t *ret_len)
{
	uint32_t acc = 0;
	size_t o = 0, pad = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -EBADMSG;
		int v = b64_value((unsigned char) s[i]);
		if (v < 0)
			return -EBADMSG;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= size)
				return -EMSGSIZE;
			out[o++] = (uint8_t) (acc >> bits);
		}
	}
	/* A lone sixth-bit group cannot end base64; padding completes a quantum. */
	if (pad > 2 || bits >= 6 || (pad && (n % 4) != 0))
		return -EBADMSG;
	*ret_len = o;
	return 0;
}


/*
 * Public key fields between the nonce and the serial, per certificate type
 * (PROTOCOL.certkeys): -1 for a type we do not know.
 */
static int cert_key_fields(const char *type)
{
	static const struct {
		const char *type;
		int fields;
	} types[] = {
		{ "ssh-rsa-cert-v01@openssh.com", 2 },                /* e, n */
		{ "ssh-dss-cert-v01@openssh.com", 4 },                /* p, q, g, y */
		{ "ecdsa-sha2-nistp256-cert-v01@openssh.com", 2 },    /* curve, point */
		{ "ecdsa-sha2-nistp384-cert-v01@openssh.com", 2 },
		{ "ecdsa-sha2-nistp521-cert-v01@openssh.com", 2 },
		{ "ssh-ed25519-cert-v01@openssh.com", 1 },            /* pk */
		{ "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", 3 }, /* curve, point, application */
		{ "sk-ssh-ed25519-cert-v01@openssh.com", 2 },         /* pk, application */
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i].type) == 0)
			return types[i].fields;
	return -1;
}

/* Whether p[0..n) is a whole sequence of SSH strings (principals). */
static bool strings_whole(const uint8_t *p, size_t n)
{
	struct tu_sshwire b = { p, n, 0 };

	while (b.off < b.n)
		if (tu_sshwire_string(&b, NULL, NULL) < 0)
			return false;
	return true;
}

/*
 * Whether p[0..n) is a whole list of options or extensions: (name, data)
 * pairs, the name non-empty, the data empty or exactly one SSH string.
 */
static bool options_whole(const uint8_t *p, size_t n)
{
	struct tu_sshwire b = { p, n, 0 };

	while (b.off < b.n) {
		const uint8_t *k, *d;
		size_t kl, dl;

		if (tu_sshwire_string(&b, &k, &kl) < 0 || kl == 0 || tu_sshwire_string(&b, &d, &dl) < 0)
			return false;
		struct tu_sshwire in = { d, dl, 0 };
		if (dl > 0 && (tu_sshwire_string(&in, NULL, NULL) < 0 || in.off != in.n))
			return false;
	}
	return true;
}

/* The non-empty value of extension name (borrowed from exts), false when it has none. */
static bool ext_value(const uint8_t *exts, size_t n, const char *name, const uint8_t **ret, size_t *ret_len)
{
	struct tu_sshwire b = { exts, n, 0 };

	while (b.off < b.n) {
		const uint8_t *k, *d, *v;
		size_t kl, dl, vl;

		if (tu_sshwire_string(&b, &k, &kl) < 0 || tu_sshwire_string(&b, &d, &dl) < 0)
			return false;
		if (!tu_sshwire_eq(k, kl, name))
			continue;
		/* A value is itself an SSH string inside the data (empty data: no value). */
		struct tu_sshwire in = { d, dl, 0 };
		if (dl > 0 && tu_sshwire_string(&in, &v, &vl) == 0 && vl > 0 && in.off == in.n) {
			*ret = v;
			*ret_len = vl;
			return true;
		}
		return false;
	}
	return false;
}

/* Whether name is among the extension names that carry a non-empty value. */
static bool ext_has(const uint8_t *exts, size_t n, const char *name)
{
	const uint8_t *v;
	size_t vl;

	return ext_value(exts, n, name, &v, &vl);
}

/* Copies the value of extension name into buf ("" when absent); false when it cannot be held. */
static bool ext_copy(const uint8_t *exts, size_t n, const char *name, char *buf, size_t size)
{
	const uint8_t *v;
	size_t vl;

	buf[0] = '\0';
	if (!ext_value(exts, n, name, &v, &vl))
		return true;
	if (vl >= size || memchr(v, '\0', vl))
		return false;
	memcpy(buf, v, vl);
	buf[vl] = '\0';
	return true;
}

/*
 * Teleport marks a per-session MFA certificate with "mfa-verified" and a
 * trusted device with all three teleport-device-* extensions
 * (dtauthz.IsSSHDeviceVerified).  What they prove counts only for a
 * certificate from Teleport's user CA (tu_decide_ssh_cert_trusted).
 */
static void cert_proof(const uint8_t *exts, size_t el, struct tu_ssh_cert *ret)
{
	ret->mfa_verified = ext_has(exts, el, "mfa-verified");
	ret->device_verified = ext_has(exts, el, "teleport-device-id") && ext_has(exts, el, "teleport-device-asset-tag") &&
			       ext_has(exts, el, "teleport-device-credential-id");
	if (!ext_copy(exts, el, "mfa-verified", ret->mfa_device, sizeof(ret->mfa_device)) ||
	    !ext_copy(exts, el, "teleport-device-id", ret->device_id, sizeof(ret->device_id)))
		ret->ids_unreadable = true;
}

#define CERT_BAD(...) tu_err_set(reterr, -EBADMSG, "SSH_AUTH_INFO_0: " __VA_ARGS__)

/* The whole certificate blob (type already matched), strictly, into *c. */
static int cert_parse_blob(const uint8_t *blob, size_t blen, const char *type, int fields, unsigned flags,
			   struct tu_ssh_cert *c, struct tu_err *reterr)
{
	struct tu_sshwire b = { blob, blen, 0 };
	const uint8_t *s, *exts, *opts, *princ, *sigkey, *sig;
	size_t sl, el, ol, pl, skl, sgl;
	uint32_t ctype;

	if (tu_sshwire_string(&b, &s, &sl) < 0 || !tu_sshwire_eq(s, sl, type))
		return CERT_BAD("certificate type does not match '%s'", type);
	if (tu_sshwire_string(&b, NULL, NULL) < 0) /* nonce */
		return CERT_BAD("truncated certificate (nonce)");
	for (int f = 0; f < fields; f++)
		if (tu_sshwire_string(&b, NULL, NULL) < 0)
			return CERT_BAD("truncated certificate (public key)");
	if (tu_sshwire_u64(&b, &c->serial) < 0 || tu_sshwire_u32(&b, &ctype) < 0)
		return CERT_BAD("truncated certificate (serial, type)");
	if (ctype != 1)
		return CERT_BAD("not a user certificate (type %u)", ctype);
	if (tu_sshwire_string(&b, &s, &sl) < 0)
		return CERT_BAD("truncated certificate (key id)");
	if (sl == 0 || sl > KEY_ID_MAX)
		return CERT_BAD("certificate key id is empty or too long");
	for (size_t i = 0; i < sl; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return CERT_BAD("certificate key id has control characters");
	memcpy(c->key_id, s, sl);
	c->key_id[sl] = '\0';
	if (tu_sshwire_string(&b, &princ, &pl) < 0 || !strings_whole(princ, pl))
		return CERT_BAD("bad principals in the certificate");
	if (tu_sshwire_u64(&b, &c->valid_after) < 0 || tu_sshwire_u64(&b, &c->valid_before) < 0)
		return CERT_BAD("truncated certificate (validity)");
	if (tu_sshwire_string(&b, &opts, &ol) < 0 || !options_whole(opts, ol))
		return CERT_BAD("bad critical options in the certificate");
	if (tu_sshwire_string(&b, &exts, &el) < 0 || !options_whole(exts, el))
		return CERT_BAD("bad extensions in the certificate");
	if (tu_sshwire_string(&b, NULL, NULL) < 0) /* reserved */
		return CERT_BAD("truncated certificate (reserved)");
	if (tu_sshwire_string(&b, &sigkey, &skl) < 0)
		return CERT_BAD("truncated certificate (signature key)");
	struct tu_sshwire kb = { sigkey, skl, 0 };
	if (skl == 0 || tu_sshwire_string(&kb, &s, &sl) < 0 || sl == 0 || kb.off == kb.n)
		return CERT_BAD("bad signature key in the certificate");
	if (skl > sizeof(c->ca_key))
		return tu_err_set(reterr, -EMSGSIZE, "SSH_AUTH_INFO_0: certificate signature key larger than %zu bytes",
				  sizeof(c->ca_key));
	size_t signed_len = b.off; /* the signature covers everything before it */
	if (tu_sshwire_string(&b, &sig, &sgl) < 0)
		return CERT_BAD("truncated certificate (signature)");
	struct tu_sshwire sb = { sig, sgl, 0 };
	if (sgl == 0 || tu_sshwire_string(&sb, NULL, &sl) < 0 || sl == 0 || tu_sshwire_string(&sb, NULL, NULL) < 0)
		return CERT_BAD("bad signature in the certificate");
	if (b.off != b.n)
		return CERT_BAD("%zu bytes of trailing garbage after the certificate", b.n - b.off);
	memcpy(c->ca_key, sigkey, skl);
	c->ca_key_len = skl;
	if (flags & TU_SSH_CERT_SSHD_VERIFIED) {
		/* sshd's %k: sshd verified this signature with this key when it decoded the
		 * certificate (docs/SECURITY.md); the caller still requires the key to be
		 * Teleport's user CA (tu_decide_ssh_cert_trusted). */
		c->signature_ok = c->sshd_verified = true;
	} else if (!(flags & TU_SSH_CERT_NO_VERIFY)) {
		int k = tu_sshsig_verify(sigkey, skl, sig, sgl, blob, signed_len, reterr);
		if (k < 0) {
			tu_err_prefix(reterr, "SSH_AUTH_INFO_0: cannot check the certificate's signature");
			return k;
		}
		c->signature_ok = k > 0;
	}
	cert_proof(exts, el, c);
	return 0;
}

int tu_decide_ssh_cert(const char *auth_info, struct tu_ssh_cert *ret, struct tu_err *reterr)
{
	return tu_decide_ssh_cert_parse(auth_info, 0, ret, reterr);
}

int tu_decide_ssh_cert_parse(const char *auth_info, unsigned flags, struct tu_ssh_cert *ret, struct tu_err *reterr)
{
	static const char cert_suffix[] = "-cert-v01@openssh.com";
	const char *line = auth_info;
	size_t total;

	if (!auth_info)
		return tu_err_set(reterr, -ENOENT, "no SSH_AUTH_INFO_0");
	total = strnlen(auth_info, AUTH_INFO_MAX + 1);
	if (total > AUTH_INFO_MAX)
		return tu_err_set(reterr, -EMSGSIZE, "SSH_AUTH_INFO_0 longer than %d bytes", AUTH_INFO_MAX);
	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t) (eol - line) : strlen(line);
		const char *sp1, *sp2, *end = line + len;
		char type[64], stype[64];
		_cleanup_free_ uint8_t *blob = NULL;
		_cleanup_free_ struct tu_ssh_cert *c = NULL;
		size_t blen = 0;
		int k;

		line = eol ? eol + 1 : NULL;
		if (len < 10 || memcmp(end - len, "publickey ", 10) != 0)
			continue;
		sp1 = end - len + 9;
		sp2 = memchr(sp1 + 1, ' ', (size_t) (end - sp1 - 1));
		if (!sp2 || (size_t) (sp2 - sp1 - 1) >= sizeof(type))
			continue;
		memcpy(type, sp1 + 1, (size_t) (sp2 - sp1 - 1));
		type[sp2 - sp1 - 1] = '\0';
		size_t tl = strlen(type);
		if (tl <= sizeof(cert_suffix) - 1 || strcmp(type + tl - (sizeof(cert_suffix) - 1), cert_suffix) != 0)
			continue; /* a plain key: no identity in it */
		int fields = cert_key_fields(type);
		if (fields < 0)
			return CERT_BAD("unknown certificate type '%s'", tu_sanitize(type, stype, sizeof(stype)));
		/* sshd writes "<method> <key type> <base64>[ <extra info>]". */
		const char *b64 = sp2 + 1, *b64e = b64;
		while (b64e < end && *b64e != ' ' && *b64e != '\r')
			b64e++;
		blob = malloc(CERT_BLOB_MAX);
		c = calloc(1, sizeof(*c));
		if (!blob || !c)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		k = b64_decode(b64, (size_t) (b64e - b64), blob, CERT_BLOB_MAX, &blen);
		if (k == -EMSGSIZE)
			return tu_err_set(reterr, k, "SSH_AUTH_INFO_0: certificate larger than %d bytes", CERT_BLOB_MAX);
		if (k < 0)
			return CERT_BAD("certificate is not valid base64");
		k = cert_parse_blob(blob, blen, type, fields, flags, c, reterr);
		if (k < 0)
			return k;
		memcpy(ret, c, sizeof(*c));
		return 0;
	}
	return tu_err_set(reterr, -ENOENT, "SSH_AUTH_INFO_0 holds no certificate");
}

/* Decodes a "<type> <base64>" CA key into buf; false when it does not fit or is not base64. */
static bool ca_key_blob(const char *key, uint8_t *buf, size_t size, size_t *ret_len)
{
	const char *sp = strchr(key, ' ');

	return sp && b64_decode(sp + 1, strlen(sp + 1), buf, size, ret_len) == 0;
}

int tu_decide_ssh_cert_trusted(const struct tu_ssh_cert *c, const struct tu_user_ca *ca, int64_t now_usec,
			       struct tu_err *reterr)
{
	_cleanup_free_ uint8_t *buf = NULL;
	bool signed_by_ca = false;
	int64_t now_sec = now_usec / 1000000;

	if (!ca || !ca->known || ca->keys.n == 0)
		return tu_err_set(reterr, -ENOKEY, "Teleport's user CA is not known here (no sync fetched it yet)");
	buf = malloc(sizeof(c->ca_key));
	if (!buf)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	for (size_t i = 0; !signed_by_ca && i < ca->keys.n; i++) {
		size_t n = 0;
		if (ca->keys.v[i] && ca_key_blob(ca->keys.v[i], buf, sizeof(c->ca_key), &n))
			signed_by_ca = n == c->ca_key_len && memcmp(buf, c->ca_key, n) == 0;
	}
	if (!signed_by_ca)
		return tu_err_set(reterr, -EKEYREJECTED, "the certificate is signed by a CA that is not Teleport's user CA");
	if (!c->signature_ok)
		return tu_err_set(reterr, -EKEYREJECTED,
				  "the certificate names Teleport's user CA but its signature does not verify (forged?)");
	/* valid_before is exclusive (OpenSSH: valid while after <= now < before). */
	if (now_sec < 0 || (uint64_t) now_sec < c->valid_after || (uint64_t) now_sec >= c->valid_before)
		return tu_err_set(reterr, -EKEYEXPIRED, "the certificate is not valid now (outside its validity window)");
	return 0;
}

static int cert_key_id(const char *auth_info, unsigned flags, const struct tu_user_ca *ca, int64_t now_usec, char *ret,
		       size_t size, struct tu_err *reterr)
{
	_cleanup_free_ struct tu_ssh_cert *c = calloc(1, sizeof(*c));
	int k;

	if (!c)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	k = tu_decide_ssh_cert_parse(auth_info, flags, c, reterr);
	if (k >= 0)
		k = tu_decide_ssh_cert_trusted(c, ca, now_usec, reterr);
	if (k < 0)
		return k;
	if (strlen(c->key_id) >= size)
		return tu_err_set(reterr, -EBADMSG, "SSH_AUTH_INFO_0: certificate key id is empty or too long");
	memcpy(ret, c->key_id, strlen(c->key_id) + 1);
	return 0;
}

int tu_decide_ssh_cert_key_id(const char *auth_info, const struct tu_user_ca *ca, int64_t now_usec, char *ret,
			      size_t size, struct tu_err *reterr)
{
	return cert_key_id(auth_info, 0, ca, now_usec, ret, size, reterr);
}

/* ---- locks ---- */

static bool lock_in_force(const struct tu_lock *l, int64_t now_usec)
{
	return !l->has_expires || l->expires_usec > now_usec;
}

static bool set(const char *s)
{
	return s && s[0];
}

bool tu_decide_lock_names_host(const char *t, const struct tu_host *h)
{
	size_t n, tl;

	if (!set(t) || !h || !set(h->id))
		return false;
	n = strlen(h->id);
	tl = strlen(t);
	if (set(h->cluster)) {
		size_t cl = strlen(h->cluster);
		/* host.id given as "<id>.<cluster>": its bare part is the id. */
		if (n > cl + 1 && h->id[n - cl - 1] == '.' && strcmp(h->id + n - cl, h->cluster) == 0)
			n -= cl + 1;
		if (tl == n && strncmp(t, h->id, n) == 0)
			return true;
		return tl == n + 1 + cl && strncmp(t, h->id, n) == 0 && t[n] == '.' && strcmp(t + n + 1, h->cluster) == 0;
	}
	/* Cluster unknown: the id, or "<id>.<anything>" (fail closed). */
	return strncmp(t, h->id, n) == 0 && (t[n] == '\0' || (t[n] == '.' && t[n + 1] != '\0'));
}

static bool host_target(const char *t, const struct tu_host *h)
{
	return tu_decide_lock_names_host(t, h);
}

/*
 * Whether l targets this login (Teleport's ComputeLockTargets: the user, its
 * roles, the login, this host, and the MFA device and trusted device of the
 * certificate the session came with); *what gets "user=bob" etc.  cert is
 * NULL without a certificate.
 */
static bool lock_matches(const struct tu_lock *l, const struct tu_user *u, const char *login, const struct tu_host *h,
			 const struct tu_ssh_cert *cert, char *what, size_t size)
{
	const struct tu_lock_target *t = &l->target;
	if (l->unreadable) {
		/* Whom it targets cannot be told: it applies to everyone (fail closed). */
		snprintf(what, size, "its content cannot be read: %s", l->unreadable);
		return true;
	}
	if (set(t->user) && u->name && strcmp(t->user, u->name) == 0) {
		snprintf(what, size, "user=%s", t->user);
		return true;
	}
	if (set(t->role) && strv_contains(&u->roles, t->role)) {
		snprintf(what, size, "role=%s", t->role);
		return true;
	}
	if (set(t->login) && strcmp(t->login, login) == 0) {
		snprintf(what, size, "login=%s", t->login);
		return true;
	}
	if (host_target(t->server_id, h)) {
		snprintf(what, size, "server_id=%s", t->server_id);
		return true;
	}
	if (host_target(t->node, h)) {
		snprintf(what, size, "node=%s", t->node);
		return true;
	}
	if (cert && set(t->mfa_device) && (cert->ids_unreadable || strcmp(t->mfa_device, cert->mfa_device) == 0)) {
		snprintf(what, size, "mfa_device=%s", t->mfa_device);
		return true;
	}
	if (cert && set(t->device) && (cert->ids_unreadable || strcmp(t->device, cert->device_id) == 0)) {
		snprintf(what, size, "device=%s", t->device);
		return true;
	}
	return false;
}

/* ---- the decision ---- */

/* What this login proves about how its user authenticated. */
struct proof {
	bool mfa;
	bool device;
};

/*
 * The certificate req carries when pam.trust_ssh_cert is on and it is a
 * Teleport identity: parsed whole, signed by one of Teleport's user CA keys
 * in ca, valid at now_usec (tu_decide_ssh_cert_trusted).  Anything else
 * proves nothing (false), and a log line says why: a certificate from another
 * CA (e.g. a cert-authority line a user wrote in their own authorized_keys),
 * no CA known, expired, malformed.
 */
static bool teleport_cert(const struct tu_decide_opts *o, const struct tu_login_req *req, const struct tu_user_ca *ca,
			  int64_t now_usec, struct tu_ssh_cert *ret)
{
	struct tu_err e = { 0 };
	char msg[TU_ERR_MSG_MAX], kid[128];
	int k;

	if (!o || !o->trust_ssh_cert || !req->ssh_auth_info)
		return false;
	k = tu_decide_ssh_cert_parse(req->ssh_auth_info, req->ssh_cert_sshd_verified ? TU_SSH_CERT_SSHD_VERIFIED : 0,
				     ret, &e);
	if (k == -ENOENT)
		return false;
	if (k < 0) {
		tu_log(LOG_WARNING, "ignoring the SSH certificate, no identity from it: %s",
		       tu_sanitize(e.msg, msg, sizeof(msg)));
		return false;
	}
	k = tu_decide_ssh_cert_trusted(ret, ca, now_usec, &e);
	if (k == 0)
		return true;
	tu_log(LOG_NOTICE,
	       "SSH certificate with key id '%s' proves nothing (key id, mfa-verified and teleport-device-* ignored): %s",
	       tu_sanitize(ret->key_id, kid, sizeof(kid)), tu_sanitize(e.msg, msg, sizeof(msg)));
	return false;
}

/*
 * A session Teleport's own SSH service opened (trusted TELEPORT_USERNAME
 * naming the user: it runs PAM's account phase after its own RBAC, MFA and
 * device checks) proves both.  A Teleport certificate (teleport_cert: from
 * Teleport's user CA) whose key id names the user proves what its
 * extensions say: a per-session MFA certificate the MFA, a device-bound one
 * the device.  Else nothing.
 */
static struct proof proof_of(const struct tu_decide_opts *o, const struct tu_login_req *req, const char *who,
			     const struct tu_ssh_cert *tcert)
{
	if (o && o->trust_teleport_env && req->teleport_username && req->teleport_username[0] &&
	    strcmp(req->teleport_username, who) == 0)
		return (struct proof){ true, true };
	if (tcert && strcmp(tcert->key_id, who) == 0)
		return (struct proof){ tcert->mfa_verified, tcert->device_verified };
	return (struct proof){ false, false };
}

/* "required-for-humans" (Teleport 17) counts: every Teleport user logging in here is a human. */
bool tu_decide_device_required(const char *mode)
{
	return mode && mode[0] && strcmp(mode, "off") != 0 && strcmp(mode, "optional") != 0;
}

/* What is missing, in buf, given what the role or preference asks; false when nothing. */
static bool unmet(int32_t mfa_type, const char *device_mode, const struct proof *pr, const char *mfa_what,
		  const char *device_what, char *buf, size_t size)
{
	char mode[64];

	if (mfa_type != 0 && !pr->mfa) {
		snprintf(buf, size, "per-session MFA (%s)", mfa_what);
		return true;
	}
	if (tu_decide_device_required(device_mode) && !pr->device) {
		snprintf(buf, size, "a trusted device (%s: %s)", device_what, tu_sanitize(device_mode, mode, sizeof(mode)));
		return true;
	}
	return false;
}

/*
 * Teleport's checkAccess: the first role that grants the login may also require per-session
 * MFA or a trusted device, and then a session without them is refused.  An OpenSSH, console or
 * su login proves neither (unless it came with a Teleport certificate that says so, see
 * proof_of), so it is refused the same way.  False when nothing is missing.
 */
static bool unmet_requirement(const struct tu_role *r, const struct proof *pr, char *buf, size_t size)
{
	return r && unmet(r->require_mfa_type, r->device_trust_mode, pr, "require_session_mfa", "device_trust_mode", buf,
			  size);
}

/* The same, cluster-wide: the auth preference's require_session_mfa and device_trust.mode. */
static bool unmet_cluster_requirement(const struct tu_auth_pref *p, const struct proof *pr, char *buf, size_t size)
{
	return p->known && unmet(p->require_mfa_type, p->device_trust_mode, pr, "auth_preference require_session_mfa",
				 "auth_preference device_trust.mode", buf, size);
}

/*
 * Teleport's RoleSet.LockingMode with the cluster's locking_mode as the
 * default: a role with lock: strict wins, else the last role that sets a
 * mode, else the cluster's.  *by: the role that made it strict, NULL when
 * the cluster did.
 */
static bool locking_is_strict(const struct tu_rbac_index *ix, const struct tu_user *u, const struct tu_auth_pref *p,
			      const struct tu_role **by)
{
	const char *mode = p->locking_mode ? p->locking_mode : "";

	*by = NULL;
	for (size_t i = 0; i < u->roles.n; i++) {
		const struct tu_role *r = u->roles.v[i] ? tu_rbac_index_role(ix, u->roles.v[i]) : NULL;

		if (!r || !r->lock_mode || !r->lock_mode[0])
			continue;
		if (strcmp(r->lock_mode, "strict") == 0) {
			*by = r;
			return true;
		}
		mode = r->lock_mode;
	}
	return strcmp(mode, "strict") == 0;
}

static int decide_ix(const struct tu_rbac_index *ix, const struct tu_host *h, const struct tu_decide_opts *o,
		     const struct tu_login_req *req, int64_t now_usec, const struct partial *part,
		     struct tu_verdict *ret, struct tu_err *reterr)
{
	const struct tu_dataset *d = tu_rbac_index_dataset(ix);
	struct tu_verdict v = { 0 };
	char who[KEY_ID_MAX + 1] = "";
	char slogin[128], suser[300], what[300];
	const char *source = NULL;
	_cleanup_free_ struct tu_ssh_cert *tcert = NULL;
	int k;

	if (!req || !req->login || !req->login[0])
		return tu_err_set(reterr, -EINVAL, "no login given");
	tu_sanitize(req->login, slogin, sizeof(slogin));
	/* A certificate counts only when it comes from Teleport's user CA (issue 14 F3). */
	if (o && o->trust_ssh_cert && req->ssh_auth_info) {
		tcert = calloc(1, sizeof(*tcert));
		if (!tcert)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		if (!teleport_cert(o, req, &d->user_ca, now_usec, tcert)) {
			free(tcert);
			tcert = NULL;
		}
	}

	/* Who is logging in (SPEC §5). */
	if (req->explicit_user && req->explicit_user[0]) {
		snprintf(who, sizeof(who), "%s", req->explicit_user);
		source = "given";
	} else if (o && o->trust_teleport_env && req->teleport_username && req->teleport_username[0]) {
		snprintf(who, sizeof(who), "%s", req->teleport_username);
		source = "TELEPORT_USERNAME";
	} else if (tcert) {
		snprintf(who, sizeof(who), "%s", tcert->key_id);
		source = "Teleport SSH certificate";
		v.cert_identity = true;
	}
	if (!source) {
		struct tu_strv owners = { 0 };
		k = login_owners(ix, h, o ? o->source : TU_SOURCE_HOST_USER_CREATION, req->login, now_usec, part,
				 &owners, reterr);
		if (k < 0)
			return k;
		if (owners.n == 0) {
			verdict_set(&v, TU_VERDICT_UNKNOWN, "", "", "'%s' is not a Teleport login on this host", slogin);
		} else if (owners.n > 1) {
			char list[256] = "";
			size_t off = 0;
			for (size_t i = 0; i < owners.n && off + 1 < sizeof(list); i++) {
				int w = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
						 tu_sanitize(owners.v[i], suser, sizeof(suser)));
				if (w < 0)
					break;
				off += (size_t) w;
			}
			verdict_set(&v, TU_VERDICT_DENY, "", "",
				    "the login is shared, an identity is needed ('%s' is granted to %s)", slogin, list);
		} else {
			snprintf(who, sizeof(who), "%s", owners.v[0]);
			source = "owner";
		}
		tu_strv_done(&owners);
		if (!source) {
			*ret = v;
			return 0;
		}
	}
	tu_sanitize(who, suser, sizeof(suser));
	if (part && !looked_up(part, who))
		return -EAGAIN;

	const struct tu_user *u = tu_rbac_index_user(ix, who);
	if (!u) {
		if (tcert && strcmp(source, "Teleport SSH certificate") == 0)
			verdict_set(&v, TU_VERDICT_DENY, who, "",
				    "the Teleport SSH certificate's key id '%s' names no Teleport user", suser);
		else
			verdict_set(&v, TU_VERDICT_DENY, who, "", "Teleport user '%s' (%s) does not exist", suser, source);
		*ret = v;
		return 0;
	}
	if (u->unusable) {
		char why[256];
		verdict_set(&v, TU_VERDICT_DENY, who, "", "Teleport user '%s' cannot be used here (%s)", suser,
			    tu_sanitize(u->unusable, why, sizeof(why)));
		*ret = v;
		return 0;
	}
	if (u->has_expires && u->expires_usec <= now_usec) {
		verdict_set(&v, TU_VERDICT_DENY, who, "", "Teleport user '%s' has expired", suser);
		*ret = v;
		return 0;
	}
	if (u->is_locked && u->has_lock_expires && u->lock_expires_usec > now_usec) {
		char msg[256];
		tu_sanitize(u->locked_message ? u->locked_message : "", msg, sizeof(msg));
		verdict_set(&v, TU_VERDICT_DENY, who, "", "Teleport user '%s' is locked%s%s", suser, msg[0] ? ": " : "",
			    msg);
		*ret = v;
		return 0;
	}
	/* The session's certificate, when it came with one: its MFA device and trusted device are
	 * lock targets too.  Read whether or not pam.trust_ssh_cert is set: a lock only refuses. */
	struct tu_ssh_cert cert;
	const struct tu_ssh_cert *certp = tcert; /* parsed already: the same lock targets */
	if (!certp && req->ssh_auth_info &&
	    tu_decide_ssh_cert_parse(req->ssh_auth_info, TU_SSH_CERT_NO_VERIFY, &cert, NULL) == 0)
		certp = &cert;
	for (size_t i = 0; i < d->n_locks; i++) {
		const struct tu_lock *l = &d->locks[i];
		if (!lock_in_force(l, now_usec) || !lock_matches(l, u, req->login, h, certp, what, sizeof(what)))
			continue;
		char name[128], msg[256], swhat[300];
		tu_sanitize(l->name ? l->name : "", name, sizeof(name));
		tu_sanitize(l->message ? l->message : "", msg, sizeof(msg));
		tu_sanitize(what, swhat, sizeof(swhat));
		verdict_set(&v, TU_VERDICT_DENY, who, "", "locked by lock '%s' (%s)%s%s", name, swhat, msg[0] ? ": " : "",
			    msg);
		*ret = v;
		return 0;
	}
	const struct tu_role *strict_by;
	if (o && o->stale_locks && locking_is_strict(ix, u, &d->auth_pref, &strict_by)) {
		char name[128];
		if (strict_by) {
			tu_sanitize(strict_by->name, name, sizeof(name));
			verdict_set(&v, TU_VERDICT_DENY, who, strict_by->name,
				    "role '%s' sets options.lock: strict and the lock list is not current (offline)", name);
		} else {
			verdict_set(&v, TU_VERDICT_DENY, who, "",
				    "the cluster's locking_mode is strict (no role overrides it) and the lock list is not current (offline)");
		}
		*ret = v;
		return 0;
	}
	struct tu_access a;
	k = tu_rbac_check_login_ix(ix, u, req->login, h, &a, reterr);
	if (k < 0)
		return k;
	const struct proof pr = a.allowed ? proof_of(o, req, who, tcert) : (struct proof){ false, false };
	char missing[160];
	if (a.allowed && unmet_cluster_requirement(&d->auth_pref, &pr, missing, sizeof(missing))) {
		verdict_set(&v, TU_VERDICT_DENY, who, "",
			    "login '%s' is allowed by role but the cluster requires %s, which this login does not prove",
			    slogin, missing);
		*ret = v;
		return 0;
	}
	if (a.allowed && unmet_requirement(tu_rbac_index_role(ix, a.role), &pr, missing, sizeof(missing))) {
		char name[128];
		tu_sanitize(a.role, name, sizeof(name));
		verdict_set(&v, TU_VERDICT_DENY, who, a.role,
			    "role '%s' allows login '%s' but requires %s, which this login does not prove",
			    name, slogin, missing);
		*ret = v;
		return 0;
	}
	verdict_set(&v, a.allowed ? TU_VERDICT_ALLOW : TU_VERDICT_DENY, who, a.role, "%s", a.reason);
	*ret = v;
	return 0;
}

int tu_decide_pure(const struct tu_dataset *d, const struct tu_host *h, const struct tu_decide_opts *o,
		   const struct tu_login_req *req, int64_t now_usec, struct tu_verdict *ret, struct tu_err *reterr)
{
	struct tu_rbac_index *ix = NULL;
	struct tu_verdict v = { 0 };
	int k = tu_rbac_index_new(d, &ix, reterr);
	if (k < 0)
		return k;
	k = decide_ix(ix, h, o, req, now_usec, NULL, &v, reterr);
	tu_rbac_index_free(ix);
	if (k < 0)
		return k;
	*ret = v;
	return 0;
}

/* ---- gathering the inputs ---- */

static void push_role(struct tu_dataset *d, struct tu_role *r)
{
	d->roles[d->n_roles++] = *r;
	memset(r, 0, sizeof(*r));
}

/* One user, its roles and all locks in force, online. */
static int fetch_user_online(struct tu_auth *a, const char *name, struct tu_dataset *ret, struct tu_err *reterr)
{
	struct tu_dataset d = { 0 };
	struct tu_user u = { 0 };
	int k;

	k = tu_auth_get_user(a, name, &u, reterr);
	if (k == -ENOENT) {
		/* A real answer: no such user (the decision says so). */
		k = tu_auth_get_locks(a, &d.locks, &d.n_locks, reterr);
		if (k < 0)
			return k;
		*ret = d;
		return 0;
	}
	if (k < 0)
		return k;
	d.users = calloc(1, sizeof(*d.users));
	d.roles = calloc(u.roles.n + 1, sizeof(*d.roles));
	if (!d.users || !d.roles) {
		tu_user_done(&u);
		tu_dataset_done(&d);
		return -ENOMEM;
	}
	d.users[0] = u;
	d.n_users = 1;
	for (size_t i = 0; i < d.users[0].roles.n; i++) {
		struct tu_role r = { 0 };
		k = tu_auth_get_role(a, d.users[0].roles.v[i], &r, reterr);
		if (k == -ENOENT)
			continue; /* missing from the dataset: it refuses the login (rbac.c), as in Teleport */
		if (k < 0) {
			tu_dataset_done(&d);
			return k;
		}
		if (r.unusable) {
			/* Left out, it counts as missing: the login is refused, naming it. */
			size_t one = 1;
			(void) tu_roles_drop_unusable(&r, &one);
			continue;
		}
		push_role(&d, &r);
	}
	k = tu_auth_get_locks(a, &d.locks, &d.n_locks, reterr);
	if (k >= 0)
		k = tu_auth_get_auth_pref(a, &d.auth_pref, reterr);
	if (k < 0) {
		tu_dataset_done(&d);
		return k;
	}
	*ret = d;
	return 0;
}

/* The identity the request carries when it is trusted (a certificate: from Teleport's user CA ca), else "". */
static void trusted_identity(const struct tu_decide_opts *o, const struct tu_login_req *req, const struct tu_user_ca *ca,
			     int64_t now_usec, char *who, size_t size)
{
	who[0] = '\0';
	if (req->explicit_user && req->explicit_user[0])
		snprintf(who, size, "%s", req->explicit_user);
	else if (o->trust_teleport_env && req->teleport_username && req->teleport_username[0])
		snprintf(who, size, "%s", req->teleport_username);
	else if (o->trust_ssh_cert && req->ssh_auth_info &&
		 cert_key_id(req->ssh_auth_info, req->ssh_cert_sshd_verified ? TU_SSH_CERT_SSHD_VERIFIED : 0, ca, now_usec,
			     who, size, NULL) < 0)
		who[0] = '\0';
}

/*
 * Teleport's user CA for a login with a certificate: from Auth, else (Auth
 * did not answer it) the state snapshot's; unknown when neither has it.
 */
static int online_user_ca(struct tu_auth *a, const struct tu_conf *conf, int64_t now_usec, struct tu_user_ca *ret)
{
	struct tu_err e = { 0 };
	char why[TU_ERR_MSG_MAX + 64];
	int k = tu_auth_get_user_ca(a, ret, &e);

	if (k == -ENOMEM)
		return k;
	if (k == 0 && ret->known)
		return 0;
	if (k < 0)
		tu_log(LOG_NOTICE, "fetching Teleport's user CA failed, using the cache's: %s",
		       tu_err_format(&e, why, sizeof(why)));
	tu_user_ca_done(ret);
	k = tu_cache_load_user_ca(conf, now_usec, ret, NULL);
	if (k == -ENOMEM)
		return k;
	if (k < 0)
		*ret = (struct tu_user_ca){ 0 };
	return 0;
}

/*
 * Saves what a login fetched anyway, when no other writer holds the cache's
 * lock right now: a login never waits for a sync, which writes newer data.
 */
static void save_if_unlocked(const struct tu_conf *conf, const struct tu_dataset *d, const struct tu_host *h,
			     int64_t now_usec)
{
	_cleanup_close_ int lock_fd = -1;
	struct tu_err e = { 0 };

	if (tu_cache_lock(conf, 0, &lock_fd, NULL, &e) < 0 || tu_cache_save(conf, d, h, now_usec, NULL, &e) < 0)
		tu_log(LOG_DEBUG, "not refreshing the cache: %s", e.msg);
}

/* decide_online with a, and ca: the user CA when the login comes with a certificate (else unknown). */
static int decide_online_ca(struct tu_auth *a, const struct tu_conf *conf, const struct tu_host *h,
			    const struct tu_decide_opts *o, const struct tu_login_req *req, struct tu_user_ca *ca,
			    int64_t now_usec, struct tu_verdict *ret, struct tu_err *reterr)
{
	struct tu_dataset d = { 0 };
	struct tu_login_req r = *req;
	char who[KEY_ID_MAX + 1];
	bool from_req;
	int k;

	trusted_identity(o, req, ca, now_usec, who, sizeof(who));
	from_req = who[0] != '\0';
	if (!who[0]) {
		/* The owner: from a fresh snapshot when there is one, else everything online. */
		struct tu_dataset snap = { 0 };
		if (tu_cache_load_state(conf, now_usec, conf->refresh_after_usec, &snap, NULL, NULL) == 0) {
			struct tu_rbac_index *ix = NULL;
			struct tu_strv owners = { 0 };
			if (ca->known) {
				/* One CA for the whole decision: the one Auth just answered. */
				tu_user_ca_done(&snap.user_ca);
				snap.user_ca = *ca;
				*ca = (struct tu_user_ca){ 0 };
			}
			k = tu_rbac_index_new(&snap, &ix, reterr);
			if (k >= 0)
				k = login_owners(ix, h, o->source, req->login, now_usec, NULL, &owners, reterr);
			if (k >= 0 && owners.n != 1) {
				/* Not a login, or shared: the snapshot is fresh enough to say so. */
				k = decide_ix(ix, h, o, req, now_usec, NULL, ret, reterr);
				tu_rbac_index_free(ix);
				tu_strv_done(&owners);
				tu_dataset_done(&snap);
				return k < 0 ? k : 0;
			}
			if (k >= 0)
				snprintf(who, sizeof(who), "%s", owners.v[0]);
			tu_rbac_index_free(ix);
			tu_strv_done(&owners);
			tu_dataset_done(&snap);
			if (k < 0)
				return k;
		} else {
			k = tu_auth_fetch_all(a, &d, reterr);
			if (k < 0)
				return k;
			k = tu_decide_pure(&d, h, o, req, now_usec, ret, reterr);
			if (k >= 0)
				save_if_unlocked(conf, &d, h, now_usec);
			tu_dataset_done(&d);
			return k < 0 ? k : 0;
		}
	}
	k = fetch_user_online(a, who, &d, reterr);
	if (k < 0)
		return k;
	/* The decision finds the same identity in req again (same CA, same now), so its reason
	 * names where it came from; an owner found above is given explicitly. */
	d.user_ca = *ca;
	*ca = (struct tu_user_ca){ 0 };
	if (!from_req)
		r.explicit_user = who;
	k = tu_decide_pure(&d, h, o, &r, now_usec, ret, reterr);
	tu_dataset_done(&d);
	return k < 0 ? k : 0;
}

/* Online: 0 with a verdict, or a negative errno meaning "Auth did not answer". */
static int decide_online(struct tu_ctx *ctx, const struct tu_conf *conf, const struct tu_host *h,
			 const struct tu_decide_opts *o, const struct tu_login_req *req, int64_t now_usec,
			 struct tu_verdict *ret, struct tu_err *reterr)
{
	struct tu_auth *a = NULL;
	struct tu_user_ca ca = { 0 };
	int k;

	k = tu_ctx_auth(ctx, now_usec, &a, reterr);
	if (k < 0)
		return k;
	/* A login waits at most connect + request for Auth, whatever number of RPCs it takes. */
	tu_auth_set_budget(a, conf->connect_timeout_usec + conf->request_timeout_usec);
	if (o->trust_ssh_cert && req->ssh_auth_info && req->ssh_auth_info[0]) {
		k = online_user_ca(a, conf, now_usec, &ca);
		if (k < 0)
			return tu_err_set(reterr, k, "out of memory");
	}
	k = decide_online_ca(a, conf, h, o, req, &ca, now_usec, ret, reterr);
	tu_user_ca_done(&ca);
	return k;
}

/*
 * Whether the public snapshot serves login: then it is a Teleport account
 * here (NSS answers for it, so sshd, cron and su found it before asking
 * us).  Looked at before deciding: a decision that refreshes the cache may
 * drop the account, but the host process already has it.
 */
/*
 * Which users of the state snapshot a decision for req can need (the watch-fed fast path):
 * a superset is always right, so a user is parsed when its serialized record contains the
 * login, a name the request may identify (explicit, TELEPORT_USERNAME, an SSH certificate's
 * key id), or the name of a role that grants the login literally (owners by role, SPEC §4).
 * Trait values sit in the record as they are, so "{{internal.logins}}", "{{external.x}}" and
 * email.local() logins are covered by the login itself; a role login any other template
 * could produce (regexp.replace, text around a template) makes every user count.
 */
struct user_want {
	const char *names[4];
	size_t n_names;
	bool computed;
	bool all;
	const char **roles; /* borrowed from the dataset being built */
	size_t n_roles;
	char key_id[256];
};

static bool template_is_plain(const char *l)
{
	size_t n = strlen(l);

	return n > 4 && strncmp(l, "{{", 2) == 0 && strcmp(l + n - 2, "}}") == 0 &&
	       !strstr(l + 2, "{{") && !strstr(l, "regexp");
}

static void want_roles(struct user_want *w, const struct tu_dataset *d, const char *login)
{
	w->computed = true;
	w->roles = calloc(d->n_roles ? d->n_roles : 1, sizeof(*w->roles));
	if (!w->roles) {
		w->all = true;
		return;
	}
	for (size_t i = 0; i < d->n_roles; i++) {
		const struct tu_role *r = &d->roles[i];
		bool grants = false;
		for (size_t j = 0; j < r->allow.logins.n; j++) {
			const char *l = r->allow.logins.v[j];
			if (strcmp(l, login) == 0)
				grants = true;
			else if (strstr(l, "{{") && !template_is_plain(l))
				w->all = true;
		}
		if (grants && r->name)
			w->roles[w->n_roles++] = r->name;
	}
}

struct want_ctx {
	struct user_want *w;
	const char *login;
};

/*
 * Whether needle occurs in hay: memmem's answer, cheaper for the short needles and records
 * here (glibc's memmem sets up a 256-entry shift table per call; this is memchr and memcmp).
 */
static bool contains(const void *hay, size_t size, const char *needle)
{
	const unsigned char *p = hay, *end = p + size;
	size_t n = strlen(needle);

	if (n == 0)
		return true;
	while ((size_t) (end - p) >= n) {
		p = memchr(p, (unsigned char) needle[0], (size_t) (end - p) - n + 1);
		if (!p)
			return false;
		if (memcmp(p, needle, n) == 0)
			return true;
		p++;
	}
	return false;
}

static bool user_wanted(const struct tu_dataset *d, const void *user, size_t size, void *userdata)
{
	struct want_ctx *c = userdata;
	struct user_want *w = c->w;

	if (!w->computed)
		want_roles(w, d, c->login);
	if (w->all)
		return true;
	for (size_t i = 0; i < w->n_names; i++)
		if (contains(user, size, w->names[i]))
			return true;
	for (size_t i = 0; i < w->n_roles; i++)
		if (contains(user, size, w->roles[i]))
			return true;
	return false;
}

static void want_names(struct user_want *w, const struct tu_decide_opts *o,
		       const struct tu_login_req *req)
{
	struct tu_ssh_cert *cert;

	w->names[w->n_names++] = req->login;
	if (req->explicit_user && req->explicit_user[0])
		w->names[w->n_names++] = req->explicit_user;
	if (o->trust_teleport_env && req->teleport_username && req->teleport_username[0])
		w->names[w->n_names++] = req->teleport_username;
	if (o->trust_ssh_cert && req->ssh_auth_info && (cert = calloc(1, sizeof(*cert)))) {
		/* Only a candidate: tu_decide_pure still checks the certificate whole. */
		if (tu_decide_ssh_cert_parse(req->ssh_auth_info, TU_SSH_CERT_NO_VERIFY, cert, NULL) == 0 &&
		    cert->key_id[0]) {
			snprintf(w->key_id, sizeof(w->key_id), "%s", cert->key_id);
			w->names[w->n_names++] = w->key_id;
		}
		free(cert);
	}
}

/* tu_decide_from_state with the snapshot's age limit (0: cache.offline_max_age, as a full read). */
static int decide_from_state_aged(const struct tu_conf *conf, const struct tu_host *h,
				  const struct tu_decide_opts *o, const struct tu_login_req *req, int64_t now_usec,
				  uint64_t max_age_usec, struct tu_verdict *ret, bool *ret_indexed,
				  struct tu_err *reterr)
{
	struct user_want want = { 0 };
	struct want_ctx wc = { .w = &want, .login = req->login };
	struct tu_dataset d = { 0 };
	struct tu_verdict v = { 0 };
	int k;

	if (ret_indexed)
		*ret_indexed = false;
	if (!req->login || !req->login[0])
		return tu_err_set(reterr, -EINVAL, "no login given");
	want_names(&want, o, req);
	/* First only the users the request names, through the state file's key index. */
	const struct partial part = { .names = (const char *const *) want.names, .n = want.n_names };
	k = tu_cache_load_state_named(conf, now_usec, max_age_usec, part.names, part.n, &d, NULL, reterr);
	if (k == 0) {
		struct tu_rbac_index *ix = NULL;

		k = tu_rbac_index_new(&d, &ix, reterr);
		if (k >= 0)
			k = decide_ix(ix, h, o, req, now_usec, &part, &v, reterr);
		tu_rbac_index_free(ix);
		tu_dataset_done(&d);
		if (k >= 0) {
			if (ret_indexed)
				*ret_indexed = true;
			v.offline = true;
			*ret = v;
			return 0;
		}
		if (k != -EAGAIN)
			return k;
	} else if (k == -ENOMEM) {
		return k;
	} else if (k != -EOPNOTSUPP) {
		return -ENODATA;
	}
	/* The answer needs other users (owners by trait or role, a shared login), or the file
	 * has no index: every user record, filtered. */
	d = (struct tu_dataset){ 0 };
	tu_err_clear(reterr);
	k = tu_cache_load_state_filtered(conf, now_usec, max_age_usec, user_wanted, &wc, &d, NULL, reterr);
	free(want.roles);
	if (k == -ENOMEM)
		return k;
	if (k < 0)
		return -ENODATA;
	k = tu_decide_pure(&d, h, o, req, now_usec, &v, reterr);
	tu_dataset_done(&d);
	if (k < 0)
		return k;
	v.offline = true;
	*ret = v;
	return 0;
}

int tu_decide_from_state(const struct tu_conf *conf, const struct tu_host *h, const struct tu_decide_opts *o,
			 const struct tu_login_req *req, int64_t now_usec, struct tu_verdict *ret, bool *ret_indexed,
			 struct tu_err *reterr)
{
	return decide_from_state_aged(conf, h, o, req, now_usec, UINT64_MAX, ret, ret_indexed, reterr);
}

static bool served_by_cache(const struct tu_conf *conf, const char *login)
{
	char path[PATH_MAX];
	struct tu_snapshot *s = NULL;
	struct tu_pw_view pv;
	bool served;

	if (!tu_rbac_valid_login(login) || strcmp(login, "root") == 0)
		return false;
	if (tu_cache_path(conf, TU_CACHE_PUBLIC_FILE, path, sizeof(path)) < 0 ||
	    tu_snapshot_open(path, TU_SNAPSHOT_KIND_ACCOUNTS, TU_SNAPSHOT_LAZY | TU_SNAPSHOT_OVERLAY, &s, NULL) < 0)
		return false;
	served = tu_snapshot_find_login(s, login, &pv, NULL) == 0 && pv.uid != 0 && pv.gid != 0;
	tu_snapshot_close(s);
	return served;
}

/*
 * When no current Teleport user owns a login the cache serves (expired or
 * deleted since that snapshot, and no sync has replaced it, e.g. while Auth
 * is unreachable), "not a Teleport login" would let the shipped stack fall
 * through to the next module and a key left in ~/.ssh/authorized_keys: deny
 * instead, until a sync drops the account.
 */
static void deny_if_served(bool served, const char *login, struct tu_verdict *v)
{
	char slogin[128];

	if (served && v->kind == TU_VERDICT_UNKNOWN)
		verdict_set(v, TU_VERDICT_DENY, "", "",
			    "'%s' is a Teleport account in the cache, but no current Teleport user grants it here (expired or deleted since the last sync)",
			    tu_sanitize(login, slogin, sizeof(slogin)));
}

int tu_decide(struct tu_ctx *ctx, const struct tu_login_req *req, int64_t now_usec, bool offline_only,
	      struct tu_verdict *ret, struct tu_err *reterr)
{
	const struct tu_conf *conf = tu_ctx_conf(ctx);
	struct tu_decide_opts o = { 0 };
	struct tu_verdict v = { 0 };
	struct tu_dataset d = { 0 };
	struct tu_host h = { 0 };
	struct tu_err e = { 0 };
	char online_why[TU_ERR_MSG_MAX] = "";
	int k;

	if (!req || !req->login || !req->login[0])
		return tu_err_set(reterr, -EINVAL, "no login given");
	o.trust_teleport_env = conf->trust_teleport_env;
	o.trust_ssh_cert = conf->trust_ssh_cert;
	o.source = conf->source;
	/* Issue 13 item 6: while `teleport-unix watch` keeps the cache current (watch.h: INIT
	 * seen, re-listed, no stream error since, heartbeat at most TU_WATCH_MAX_STALENESS old),
	 * the host identity comes from what the watcher read from the same, unchanged
	 * certificate file (ctx.h tu_ctx_host_hinted; anything different: the file is read). */
	_cleanup_free_ struct tu_watch_state *ws = malloc(sizeof(*ws));
	const bool watched = ws && !offline_only && tu_watch_state_read(conf, ws, NULL) == 0 &&
			     tu_watch_state_current(ws, now_usec);
	/* Issue 10: else the identity `sync` or the watcher recorded in host.identity, on the same
	 * terms (that file, unchanged), so an offline decision parses no X.509 (no OpenSSL). */
	const bool hinted = watched || (ws && tu_host_record_read(conf, ws, NULL) == 0);
	const struct tu_host_hint hint = {
		.cert_file = hinted && ws->host_cert[0] ? ws->host_cert : NULL,
		.stamp = hinted ? ws->host_cert_stamp : (struct tu_file_stamp){0},
		.cn = hinted ? ws->host_cn : NULL,
		.cluster = hinted ? ws->host_cluster : NULL,
		.not_before_usec = hinted ? ws->host_not_before_usec : 0,
		.not_after_usec = hinted ? ws->host_not_after_usec : 0,
	};
	k = tu_ctx_host_hinted(ctx, now_usec, &hint, &h, &e);
	if (k == -ENOMEM)
		return tu_err_set(reterr, k, "out of memory");
	if (k < 0) {
		char why[sizeof(e.msg) + sizeof(e.file) + 16];
		/* with the file the credential's problem is in (an expired profile certificate) */
		verdict_set(&v, TU_VERDICT_UNAVAIL, "", "", "cannot tell which host this is: %s",
			    tu_err_format(&e, why, sizeof(why)));
		*ret = v;
		return 0;
	}
	/* While the watch is current, decide from the snapshot as Teleport's nodes decide from
	 * their watch-fed caches: the locks are current, so no strict-mode stale-lock denial,
	 * and offline_max_age does not apply.  Anything wrong with the snapshot: ask Auth as
	 * usual.  This decision writes nothing, so whether the cache serves the login is only
	 * looked up when it matters (an unknown login), sparing a map of accounts.db. */
	if (watched) {
		k = tu_decide_from_state(conf, &h, &o, req, now_usec, &v, NULL, &e);
		if (k == 0) {
			if (v.kind == TU_VERDICT_UNKNOWN)
				deny_if_served(served_by_cache(conf, req->login), req->login, &v);
			v.watched = true;
			*ret = v;
			return 0;
		}
		if (k != -ENODATA)
			return tu_err_set(reterr, k, "%s", e.msg[0] ? e.msg : strerror(-k));
		tu_err_clear(&e);
	}
	/* Before an online decision, which may refresh the cache and drop the account. */
	const bool served = served_by_cache(conf, req->login);
	if (!offline_only) {
		k = decide_online(ctx, conf, &h, &o, req, now_usec, &v, &e);
		if (k == -ENOMEM || k == -EINVAL)
			return tu_err_set(reterr, k, "%s", e.msg);
		if (k == 0) {
			deny_if_served(served, req->login, &v);
			*ret = v;
			return 0;
		}
		snprintf(online_why, sizeof(online_why), "%s", e.msg[0] ? e.msg : strerror(-k));
		if (e.grpc_status == TU_GRPC_PERMISSION_DENIED || e.grpc_status == TU_GRPC_UNAUTHENTICATED) {
			/* Auth answered and refused us: not an outage.  Auth refuses every RPC
			 * of a host whose credential is locked (API.md §4.8, locks on the
			 * caller), and a cache older than that lock would let the login in. */
			verdict_set(&v, TU_VERDICT_UNAVAIL, "", "", "Auth refused this host's credential (%s); not deciding from the cache",
				    online_why);
			*ret = v;
			return 0;
		}
		if (conf->pam_offline == TU_OFFLINE_DENY) {
			verdict_set(&v, TU_VERDICT_UNAVAIL, "", "", "Auth unreachable (%s) and pam.offline is deny",
				    online_why);
			*ret = v;
			return 0;
		}
	}
	tu_err_clear(&e);
	o.stale_locks = true;
	/* Issue 10: the users and roles this decision needs, through the state file's key index
	 * (what the watch-fed path reads), within cache.offline_max_age; the same verdict as the
	 * whole file's (test-decide compares them).  Anything else, an error included: the full
	 * read below, which says why. */
	k = decide_from_state_aged(conf, &h, &o, req, now_usec, 0, &v, NULL, &e);
	if (k == -ENOMEM)
		return tu_err_set(reterr, k, "out of memory");
	if (k == 0) {
		deny_if_served(served, req->login, &v);
		*ret = v;
		return 0;
	}
	v = (struct tu_verdict){ 0 };
	tu_err_clear(&e);
	k = tu_cache_load_state(conf, now_usec, 0, &d, NULL, &e);
	if (k == -ENOMEM)
		return tu_err_set(reterr, k, "out of memory");
	if (k < 0) {
		if (online_why[0])
			verdict_set(&v, TU_VERDICT_UNAVAIL, "", "", "Auth unreachable (%s) and no usable cache (%s)",
				    online_why, e.msg[0] ? e.msg : strerror(-k));
		else
			verdict_set(&v, TU_VERDICT_UNAVAIL, "", "", "no usable cache (%s)", e.msg[0] ? e.msg : strerror(-k));
		*ret = v;
		return 0;
	}
	k = tu_decide_pure(&d, &h, &o, req, now_usec, &v, reterr);
	tu_dataset_done(&d);
	if (k < 0)
		return k;
	deny_if_served(served, req->login, &v);
	v.offline = true;
	*ret = v;
	return 0;
}
