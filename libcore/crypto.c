/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.c - the OpenSSL side of the credential (X.509 certificate, private
 * key, CA certificates; creds.c reads the files and splits the PEM) and the
 * module's one export (crypto.h).  Layer: teleport-unix-crypto.so (libcrypto),
 * loaded by the core on first use (crypto-load.c).
 */
#include "crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "creds.h"
#include "err.h"
#include "ossl-init.h"
#include "sshsig.h"

#define TELEPORT_CLUSTER_OID "1.3.9999.1.7"
#define MAX_NAME_LEN         255

static const char *ossl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, size, "%s", s ? s : "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

static bool label_is(const struct tu_pem_block *b, const char *s)
{
	return b->label_len == strlen(s) && memcmp(b->label, s, b->label_len) == 0;
}

static bool label_is_key(const struct tu_pem_block *b)
{
	static const char suffix[] = "PRIVATE KEY";
	size_t n = sizeof(suffix) - 1;

	return b->label_len >= n && memcmp(b->label + b->label_len - n, suffix, n) == 0;
}

static int err_file(struct tu_err *reterr, const char *path, int r)
{
	tu_err_at(reterr, path, reterr ? reterr->line : 0);
	return r;
}

static int parse_cert(const struct tu_pem_block *b, const char *what, X509 **ret, struct tu_err *reterr)
{
	char why[160];

	tu_err_at(reterr, NULL, b->line);
	if (!label_is(b, "CERTIFICATE"))
		return tu_err_set(reterr, -EBADMSG, "PEM block '%.*s' where %s CERTIFICATE was expected",
				  (int) b->label_len, b->label, what);
	BIO *bio = BIO_new_mem_buf(b->text, (int) b->len);
	if (!bio)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!x)
		return tu_err_set(reterr, -EBADMSG, "%s certificate does not parse: %s", what,
				  ossl_reason(why, sizeof(why)));
	*ret = x;
	return 0;
}

static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	(void) buf;
	(void) size;
	(void) rwflag;
	*(bool *) userdata = true;
	return -1;
}

static int parse_key(const struct tu_pem_block *b, EVP_PKEY **ret, struct tu_err *reterr)
{
	char why[160];
	bool asked = false;

	tu_err_at(reterr, NULL, b->line);
	if (label_is(b, "ENCRYPTED PRIVATE KEY"))
		return tu_err_set(reterr, -EBADMSG,
				  "the private key is encrypted (passphrase-protected keys are not supported)");
	if (!label_is_key(b))
		return tu_err_set(reterr, -EBADMSG, "PEM block '%.*s' where a PRIVATE KEY was expected",
				  (int) b->label_len, b->label);
	BIO *bio = BIO_new_mem_buf(b->text, (int) b->len);
	if (!bio)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &asked);
	BIO_free(bio);
	if (!k) {
		if (asked) {
			ERR_clear_error();
			return tu_err_set(reterr, -EBADMSG,
					  "the private key is encrypted (passphrase-protected keys are not supported)");
		}
		return tu_err_set(reterr, -EBADMSG, "private key does not parse: %s", ossl_reason(why, sizeof(why)));
	}
	*ret = k;
	return 0;
}

static int asn1_time_usec(const ASN1_TIME *t, int64_t *ret)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return -EBADMSG;
	time_t s = timegm(&tm);
	if (s == (time_t) -1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
		return -EBADMSG;
	*ret = (int64_t) s * 1000000;
	return 0;
}

/* The first entry of obj in name as a sanitized UTF-8 copy; 0 with *ret NULL when absent. */
static int name_entry(const X509_NAME *name, const ASN1_OBJECT *obj, char **ret, struct tu_err *reterr)
{
	int idx = X509_NAME_get_index_by_OBJ(name, obj, -1);
	unsigned char *utf8 = NULL;

	*ret = NULL;
	if (idx < 0)
		return 0;
	const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, idx);
	const ASN1_STRING *data = e ? X509_NAME_ENTRY_get_data(e) : NULL;
	int n = data ? ASN1_STRING_to_UTF8(&utf8, data) : -1;
	if (n < 0) {
		ERR_clear_error();
		return tu_err_set(reterr, -EBADMSG, "certificate name attribute is not a valid string");
	}
	if (n == 0 || n > MAX_NAME_LEN || memchr(utf8, '\0', (size_t) n)) {
		OPENSSL_free(utf8);
		return tu_err_set(reterr, -EBADMSG, "certificate name attribute is empty, too long or holds NUL");
	}
	for (int i = 0; i < n; i++) {
		if (utf8[i] < 0x20 || utf8[i] == 0x7f) {
			OPENSSL_free(utf8);
			return tu_err_set(reterr, -EBADMSG, "certificate name attribute holds control characters");
		}
	}
	char *s = strndup((const char *) utf8, (size_t) n);
	OPENSSL_free(utf8);
	if (!s)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	*ret = s;
	return 0;
}

static int x509_info(const struct tu_pem_block *b, struct tu_x509_info *ret, struct tu_err *reterr)
{
	struct tu_x509_info x = { 0 };
	ASN1_OBJECT *cluster_oid = NULL;
	X509 *cert = NULL;
	int r;

	tu_openssl_init(); /* before the first OpenSSL call: no openssl.cnf */
	r = parse_cert(b, "the client", &cert, reterr);
	if (r < 0)
		return r;
	if (asn1_time_usec(X509_get0_notBefore(cert), &x.not_before_usec) < 0 ||
	    asn1_time_usec(X509_get0_notAfter(cert), &x.not_after_usec) < 0) {
		ERR_clear_error();
		tu_err_at(reterr, NULL, b->line);
		r = tu_err_set(reterr, -EBADMSG, "the certificate's validity dates do not parse");
		goto out;
	}
	r = name_entry(X509_get_subject_name(cert), OBJ_nid2obj(NID_commonName), &x.cn, reterr);
	if (r >= 0 && !x.cn)
		r = tu_err_set(reterr, -EBADMSG, "the certificate has no subject CN (not a Teleport identity)");
	if (r < 0) {
		tu_err_at(reterr, NULL, b->line);
		goto out;
	}
	cluster_oid = OBJ_txt2obj(TELEPORT_CLUSTER_OID, 1);
	if (!cluster_oid) {
		ERR_clear_error();
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	r = name_entry(X509_get_subject_name(cert), cluster_oid, &x.cluster, reterr);
	if (r >= 0 && !x.cluster)
		r = name_entry(X509_get_issuer_name(cert), OBJ_nid2obj(NID_organizationName), &x.cluster, reterr);
	if (r < 0) {
		tu_err_at(reterr, NULL, b->line);
		goto out;
	}
	*ret = x;
	x = (struct tu_x509_info){ 0 };
	r = 0;
out:
	tu_x509_info_done(&x);
	ASN1_OBJECT_free(cluster_oid);
	X509_free(cert);
	return r;
}

/*
 * The private key parses, the certificate and every CA block are certificates
 * that parse, there is a CA, and the key matches the certificate: the expensive
 * part of a load (OpenSSL's key decoder is ~5 M instructions), deferred by
 * TU_CREDS_DEFER_KEY_CHECK.  Key first: in an identity file it is the first
 * block, so a file in the wrong order is reported at line 1.
 */
static int check_key(const char *cert_path, const struct tu_pem_block *cert_b, const char *key_path,
		     const struct tu_pem_block *key_b, const char *ca_path, const struct tu_pem_block *ca_b,
		     size_t n_ca, struct tu_err *reterr)
{
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int r;

	tu_openssl_init();
	r = parse_key(key_b, &key, reterr);
	if (r < 0)
		return err_file(reterr, key_path, r);
	r = parse_cert(cert_b, "the client", &cert, reterr);
	if (r < 0) {
		EVP_PKEY_free(key);
		return err_file(reterr, cert_path, r);
	}
	for (size_t i = 0; i < n_ca && r >= 0; i++) {
		X509 *x = NULL;
		r = parse_cert(&ca_b[i], "a CA", &x, reterr);
		if (r < 0)
			err_file(reterr, ca_path, r);
		X509_free(x);
	}
	if (r >= 0 && n_ca == 0) {
		tu_err_at(reterr, ca_path, 0);
		r = tu_err_set(reterr, -EBADMSG, "no CA certificate (PEM CERTIFICATE block) to verify Auth with");
	}
	if (r >= 0 && X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		tu_err_at(reterr, key_path, key_b->line);
		r = tu_err_set(reterr, -EBADMSG, "the private key does not match the certificate%s%s",
			       strcmp(key_path, cert_path) ? " in " : "", strcmp(key_path, cert_path) ? cert_path : "");
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return r < 0 ? r : 0;
}

static int cert_parses(const struct tu_pem_block *b, const char *what, struct tu_err *reterr)
{
	X509 *x = NULL;
	int r;

	tu_openssl_init();
	r = parse_cert(b, what, &x, reterr);
	X509_free(x);
	return r;
}

static int key_parses(const struct tu_pem_block *b, struct tu_err *reterr)
{
	EVP_PKEY *k = NULL;
	int r;

	tu_openssl_init();
	r = parse_key(b, &k, reterr);
	EVP_PKEY_free(k);
	return r;
}

__attribute__((visibility("default"))) const struct tu_crypto_ops *tu_crypto_module_v1(void)
{
	static const struct tu_crypto_ops o = {
		.x509_info = x509_info,
		.check_key = check_key,
		.cert_parses = cert_parses,
		.key_parses = key_parses,
		.sshsig_verify = tu_crypto_sshsig_verify,
	};
	return &o;
}
