/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sshsig.c - checks an OpenSSH certificate's signature against its CA key
 * with OpenSSL (see sshsig.h).  Layer: the crypto module
 * (teleport-unix-crypto.so, crypto.h); the core reaches it through
 * tu_sshsig_verify (crypto-load.c).  Kept out of decide.c so that the
 * decision code stays free of OpenSSL types (tools/lint.sh).
 */
#include "sshsig.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "crypto.h"
#include "ossl-init.h"
#include "sshwire.h"

/*
 * The last signature this thread found valid, as the SHA-256 of (key, sig,
 * data) with their lengths: a decision looks at the same certificate several
 * times (the command, each identity check, the key id), and each OpenSSL
 * verification costs ~1.5 M instructions (issue 10: sshd's
 * AuthorizedPrincipalsCommand is on every certificate login's path).  Only a
 * success is remembered, and only for exactly those bytes.
 */
static __thread struct {
	bool ok;
	unsigned char digest[32];
} last_valid;

static bool digest_of(const uint8_t *key, size_t klen, const uint8_t *sig, size_t slen, const uint8_t *data,
		      size_t dlen, unsigned char out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint64_t lens[3] = { klen, slen, dlen };
	unsigned n = 0;
	bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
		  EVP_DigestUpdate(c, lens, sizeof(lens)) == 1 && EVP_DigestUpdate(c, key, klen) == 1 &&
		  EVP_DigestUpdate(c, sig, slen) == 1 && EVP_DigestUpdate(c, data, dlen) == 1 &&
		  EVP_DigestFinal_ex(c, out, &n) == 1 && n == 32;
	EVP_MD_CTX_free(c);
	return ok;
}

/* An SSH mpint as a positive BIGNUM (NULL: negative, empty or no memory). */
static BIGNUM *mpint_bn(const uint8_t *p, size_t n)
{
	if (n == 0 || (p[0] & 0x80))
		return NULL;
	return BN_bin2bn(p, (int) n, NULL);
}

/* The CA public key in SSH wire format as an OpenSSL key; *ret_md the hash its signature uses. */
static EVP_PKEY *ssh_pubkey(const uint8_t *key, size_t klen, const char *sig_alg, const EVP_MD **ret_md)
{
	struct tu_sshwire b = { key, klen, 0 };
	const uint8_t *t, *x, *y;
	size_t tl, xl, yl;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *e = NULL, *n = NULL;
	const char *kind = NULL;

	if (tu_sshwire_string(&b, &t, &tl) < 0)
		return NULL;
	if (tu_sshwire_eq(t, tl, "ssh-ed25519")) {
		*ret_md = NULL;
		if (strcmp(sig_alg, "ssh-ed25519") != 0 || tu_sshwire_string(&b, &x, &xl) < 0 || b.off != b.n || xl != 32)
			return NULL;
		return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
	}
	bld = OSSL_PARAM_BLD_new();
	if (!bld)
		return NULL;
	if (tu_sshwire_eq(t, tl, "ssh-rsa")) {
		/* rsa-sha2-256/512 only: OpenSSH refuses SHA-1 (ssh-rsa) CA signatures. */
		*ret_md = strcmp(sig_alg, "rsa-sha2-256") == 0 ? EVP_sha256() :
			  strcmp(sig_alg, "rsa-sha2-512") == 0 ? EVP_sha512() : NULL;
		if (*ret_md && tu_sshwire_string(&b, &x, &xl) == 0 && tu_sshwire_string(&b, &y, &yl) == 0 && b.off == b.n &&
		    (e = mpint_bn(x, xl)) && (n = mpint_bn(y, yl)) && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			kind = "RSA";
	} else {
		static const struct {
			const char *type, *curve, *group;
		} curves[] = {
			{ "ecdsa-sha2-nistp256", "nistp256", "P-256" },
			{ "ecdsa-sha2-nistp384", "nistp384", "P-384" },
			{ "ecdsa-sha2-nistp521", "nistp521", "P-521" },
		};
		for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
			if (!tu_sshwire_eq(t, tl, curves[i].type) || strcmp(sig_alg, curves[i].type) != 0)
				continue;
			*ret_md = i == 0 ? EVP_sha256() : i == 1 ? EVP_sha384() : EVP_sha512();
			if (tu_sshwire_string(&b, &x, &xl) == 0 && tu_sshwire_eq(x, xl, curves[i].curve) && tu_sshwire_string(&b, &y, &yl) == 0 &&
			    b.off == b.n && yl > 0 &&
			    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[i].group, 0) &&
			    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, y, yl))
				kind = "EC";
			break;
		}
	}
	if (kind && (params = OSSL_PARAM_BLD_to_param(bld)) && (ctx = EVP_PKEY_CTX_new_from_name(NULL, kind, NULL)) &&
	    EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(e);
	BN_free(n);
	return pkey;
}

/* An SSH ECDSA signature blob (mpint r, mpint s) in DER; NULL when malformed. */
static unsigned char *ecdsa_der(const uint8_t *p, size_t n, int *ret_len)
{
	struct tu_sshwire b = { p, n, 0 };
	const uint8_t *r, *s;
	size_t rl, sl;
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *der = NULL;

	if (tu_sshwire_string(&b, &r, &rl) < 0 || tu_sshwire_string(&b, &s, &sl) < 0 || b.off != b.n)
		return NULL;
	br = mpint_bn(r, rl);
	bs = mpint_bn(s, sl);
	sig = ECDSA_SIG_new();
	if (br && bs && sig && ECDSA_SIG_set0(sig, br, bs) == 1) {
		br = bs = NULL; /* owned by sig */
		*ret_len = i2d_ECDSA_SIG(sig, &der);
		if (*ret_len <= 0)
			der = NULL;
	}
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	return der;
}

/*
 * Whether sig (the certificate's signature field: string algorithm, string
 * blob) is the CA key's signature over data (the certificate up to the
 * signature).  sshd verified it already; checking again means a forged
 * SSH_AUTH_INFO_0 (the PAM environment can be written by other modules,
 * e.g. pam_env with user_readenv) cannot borrow the CA's public key.
 */
bool tu_crypto_sshsig_verify(const uint8_t *key, size_t klen, const uint8_t *sig, size_t slen,
			     const uint8_t *data, size_t dlen)
{
	struct tu_sshwire b = { sig, slen, 0 };
	const uint8_t *a, *blob;
	size_t al, bl;
	char alg[32];
	const EVP_MD *md = NULL;
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *mctx = NULL;
	unsigned char *der = NULL;
	bool ok = false;

	if (tu_sshwire_string(&b, &a, &al) < 0 || tu_sshwire_string(&b, &blob, &bl) < 0 || b.off != b.n || al == 0 ||
	    al >= sizeof(alg))
		return false;
	tu_openssl_init(); /* before the first OpenSSL call: no openssl.cnf */
	unsigned char digest[32];
	bool have_digest = digest_of(key, klen, sig, slen, data, dlen, digest);
	if (have_digest && last_valid.ok && memcmp(last_valid.digest, digest, sizeof(digest)) == 0) {
		ERR_clear_error();
		return true;
	}
	memcpy(alg, a, al);
	alg[al] = '\0';
	pkey = ssh_pubkey(key, klen, alg, &md);
	if (pkey && strncmp(alg, "ecdsa-", 6) == 0) {
		int dl = 0;
		der = ecdsa_der(blob, bl, &dl);
		blob = der;
		bl = der ? (size_t) dl : 0;
	}
	if (pkey && blob && bl > 0 && (mctx = EVP_MD_CTX_new()) && EVP_DigestVerifyInit(mctx, NULL, md, NULL, pkey) == 1)
		ok = EVP_DigestVerify(mctx, blob, bl, data, dlen) == 1;
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(pkey);
	OPENSSL_free(der);
	ERR_clear_error(); /* leave nothing in the host process's error queue */
	if (ok && have_digest) {
		memcpy(last_valid.digest, digest, sizeof(digest));
		last_valid.ok = true;
	}
	return ok;
}
