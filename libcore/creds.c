/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds.c - loading and checking the mTLS client credential (key pair or
 * identity file) with OpenSSL; see creds.h.  Layer: libcore.
 *
 * We split PEM files ourselves (tu_pem_split) so that an identity file's
 * blocks can be told apart by position and every problem can name its line;
 * OpenSSL then parses each block alone.  The PEM text of the blocks is what
 * the transport hands to libcurl, so what we checked is what gets used.
 */
#include "creds.h"

#include <errno.h>
#include <stdarg.h>
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

#include "cleanup.h"
#include "conf.h"
#include "err.h"
#include "fsutil.h"

#define TELEPORT_CLUSTER_OID "1.3.9999.1.7"
#define MAX_NAME_LEN         255

struct tu_creds {
	char *source;
	char *cert_pem;
	size_t cert_len;
	char *key_pem; /* secret: wiped on free */
	size_t key_len;
	char *ca_pem;
	size_t ca_len;
	size_t n_ca;
	char *cn;
	char *cluster;
	int64_t not_before_usec;
	int64_t not_after_usec;
	/* TU_CREDS_DEFER_KEY_CHECK: what tu_creds_check_key() needs for the same messages. */
	bool key_checked;
	char *cert_path, *key_path, *ca_path;
	unsigned cert_line, key_line;
	unsigned ca_lines[TU_CREDS_MAX_PEM_BLOCKS];
};

/* ---- PEM splitting ---- */

static bool has_prefix(const char *l, size_t len, const char *p)
{
	size_t n = strlen(p);
	return len >= n && memcmp(l, p, n) == 0;
}

static bool has_suffix(const char *l, size_t len, const char *s)
{
	size_t n = strlen(s);
	return len >= n && memcmp(l + len - n, s, n) == 0;
}

/* For "-----BEGIN X-----" / "-----END X-----": the label X, or false. */
static bool boundary(const char *l, size_t len, const char *kind, const char **ret_label,
		     size_t *ret_label_len)
{
	size_t pre = strlen(kind);
	if (!has_prefix(l, len, kind) || len < pre + 5 || !has_suffix(l, len, "-----"))
		return false;
	*ret_label = l + pre;
	*ret_label_len = len - pre - 5;
	return true;
}

static bool label_ok(const char *label, size_t len)
{
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = label[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '-' ||
		      c == '_'))
			return false;
	}
	return true;
}

static int split_fail(struct tu_err *reterr, unsigned line, unsigned *ret_line, int code,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int split_fail(struct tu_err *reterr, unsigned line, unsigned *ret_line, int code,
		      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tu_err_setv(reterr, code, fmt, ap);
	va_end(ap);
	tu_err_at(reterr, NULL, line);
	if (ret_line)
		*ret_line = line;
	return code;
}

int tu_pem_split(const char *buf, size_t len, struct tu_pem_block *blocks, size_t max,
		 size_t *ret_n, unsigned *ret_line, struct tu_err *reterr)
{
	struct tu_pem_block cur = {0};
	bool in = false;
	size_t pos = 0, n = 0;
	unsigned line = 0;

	while (pos < len) {
		const char *l = buf + pos;
		const char *nl = memchr(l, '\n', len - pos);
		size_t llen = nl ? (size_t) (nl - l) : len - pos;
		size_t next = pos + llen + (nl ? 1 : 0);
		const char *label;
		size_t label_len;

		line++;
		if (memchr(l, '\0', llen))
			return split_fail(reterr, line, ret_line, -EBADMSG,
					  "NUL byte in the file: not a PEM file (DER?)");
		size_t t = llen;
		while (t > 0 && (l[t - 1] == '\r' || l[t - 1] == ' ' || l[t - 1] == '\t'))
			t--;

		if (!in) {
			if (boundary(l, t, "-----BEGIN ", &label, &label_len)) {
				if (!label_ok(label, label_len))
					return split_fail(reterr, line, ret_line, -EBADMSG,
							  "invalid PEM label on a BEGIN line");
				cur = (struct tu_pem_block){.label = label,
							    .label_len = label_len,
							    .text = l,
							    .line = line};
				in = true;
			} else if (has_prefix(l, t, "-----END ")) {
				return split_fail(reterr, line, ret_line, -EBADMSG,
						  "PEM END line without BEGIN");
			}
			/* anything else outside a block (SSH lines, comments) is skipped */
		} else {
			if (has_prefix(l, t, "-----BEGIN "))
				return split_fail(
				    reterr, line, ret_line, -EBADMSG,
				    "PEM BEGIN inside the '%.*s' block started on line %u",
				    (int) cur.label_len, cur.label, cur.line);
			if (boundary(l, t, "-----END ", &label, &label_len)) {
				if (label_len != cur.label_len ||
				    memcmp(label, cur.label, label_len) != 0)
					return split_fail(
					    reterr, line, ret_line, -EBADMSG,
					    "PEM END label does not match the '%.*s' block started on line %u",
					    (int) cur.label_len, cur.label, cur.line);
				if (n >= max)
					return split_fail(reterr, line, ret_line, -EMSGSIZE,
							  "more than %zu PEM blocks", max);
				cur.len = next - (size_t) (cur.text - buf);
				blocks[n++] = cur;
				in = false;
			}
		}
		pos = next;
	}
	if (in)
		return split_fail(reterr, cur.line, ret_line, -EBADMSG,
				  "PEM block '%.*s' has no END line", (int) cur.label_len,
				  cur.label);
	*ret_n = n;
	return 0;
}

/* ---- files ---- */

struct file {
	char *buf;
	size_t len;
	size_t cap;
};

static void file_done(struct file *f)
{
	if (f->buf) {
		OPENSSL_cleanse(f->buf, f->cap);
		free(f->buf);
	}
	f->buf = NULL;
	f->len = f->cap = 0;
}

static int err_file(struct tu_err *reterr, const char *path, int r)
{
	tu_err_at(reterr, path, reterr ? reterr->line : 0);
	return r;
}

/*
 * The one trusted-read path of the project (base/fsutil: O_NOFOLLOW, owner
 * root, not writable by group/others, secrets not readable by others,
 * bounded, wiped).  Its messages already name the path.
 */
static int read_file(const char *path, bool secret, unsigned flags, struct file *ret,
		     struct tu_err *reterr)
{
	unsigned fs =
	    (secret ? TU_FS_SECRET : 0) | ((flags & TU_CREDS_RELAXED_PERMS) ? TU_FS_RELAXED : 0);
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = tu_fs_read_file(path, TU_CREDS_MAX_FILE, fs, &buf, &len, reterr);
	if (r < 0)
		return r;
	ret->buf = buf;
	ret->len = len;
	ret->cap = len + 1;
	return 0;
}

/* ---- OpenSSL helpers ---- */

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
	return has_suffix(b->label, b->label_len, "PRIVATE KEY");
}

static int parse_cert(const struct tu_pem_block *b, const char *what, X509 **ret,
		      struct tu_err *reterr)
{
	char why[160];

	tu_err_at(reterr, NULL, b->line);
	if (!label_is(b, "CERTIFICATE"))
		return tu_err_set(reterr, -EBADMSG,
				  "PEM block '%.*s' where %s CERTIFICATE was expected",
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
		return tu_err_set(
		    reterr, -EBADMSG,
		    "the private key is encrypted (passphrase-protected keys are not supported)");
	if (!label_is_key(b))
		return tu_err_set(reterr, -EBADMSG,
				  "PEM block '%.*s' where a PRIVATE KEY was expected",
				  (int) b->label_len, b->label);
	BIO *bio = BIO_new_mem_buf(b->text, (int) b->len);
	if (!bio)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &asked);
	BIO_free(bio);
	if (!k) {
		if (asked) {
			ERR_clear_error();
			return tu_err_set(
			    reterr, -EBADMSG,
			    "the private key is encrypted (passphrase-protected keys are not supported)");
		}
		return tu_err_set(reterr, -EBADMSG, "private key does not parse: %s",
				  ossl_reason(why, sizeof(why)));
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

static const char *fmt_time(int64_t usec, char *buf, size_t size)
{
	time_t s = (time_t) (usec / 1000000);
	struct tm tm;

	if (!gmtime_r(&s, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, size, "@%lld", (long long) (usec / 1000000));
	return buf;
}

/* The first entry of obj in name as a sanitized UTF-8 copy; 0 with *ret NULL when absent. */
static int name_entry(const X509_NAME *name, const ASN1_OBJECT *obj, char **ret,
		      struct tu_err *reterr)
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
		return tu_err_set(reterr, -EBADMSG,
				  "certificate name attribute is not a valid string");
	}
	if (n == 0 || n > MAX_NAME_LEN || memchr(utf8, '\0', (size_t) n)) {
		OPENSSL_free(utf8);
		return tu_err_set(reterr, -EBADMSG,
				  "certificate name attribute is empty, too long or holds NUL");
	}
	for (int i = 0; i < n; i++) {
		if (utf8[i] < 0x20 || utf8[i] == 0x7f) {
			OPENSSL_free(utf8);
			return tu_err_set(reterr, -EBADMSG,
					  "certificate name attribute holds control characters");
		}
	}
	char *s = strndup((const char *) utf8, (size_t) n);
	OPENSSL_free(utf8);
	if (!s)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	*ret = s;
	return 0;
}

struct tu_creds *tu_creds_free(struct tu_creds *c)
{
	if (!c)
		return NULL;
	if (c->key_pem) {
		OPENSSL_cleanse(c->key_pem, c->key_len);
		free(c->key_pem);
	}
	free(c->source);
	free(c->cert_pem);
	free(c->ca_pem);
	free(c->cn);
	free(c->cluster);
	free(c->cert_path);
	free(c->key_path);
	free(c->ca_path);
	free(c);
	return NULL;
}

void tu_creds_freep(struct tu_creds **c)
{
	*c = tu_creds_free(*c);
}

static char *block_dup(const struct tu_pem_block *b, size_t *ret_len)
{
	bool nl = b->len > 0 && b->text[b->len - 1] == '\n';
	char *s = malloc(b->len + 2);

	if (!s)
		return NULL;
	memcpy(s, b->text, b->len);
	size_t n = b->len;
	if (!nl)
		s[n++] = '\n';
	s[n] = '\0';
	*ret_len = n;
	return s;
}

void tu_creds_init_openssl(void)
{
	(void) OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
}

/*
 * The checks and the object common to both credential forms.  cert_path /
 * key_path / ca_path name the files for messages (the same path for an
 * identity file).
 */
/*
 * The private key parses, every CA block is a certificate, and the key
 * matches the certificate: the expensive part of a load (OpenSSL's key
 * decoder is ~5 M instructions), deferred by TU_CREDS_DEFER_KEY_CHECK.
 */
static int check_key(const char *cert_path, const struct tu_pem_block *cert_b, const char *key_path,
		     const struct tu_pem_block *key_b, const char *ca_path, const struct tu_pem_block *ca_b,
		     size_t n_ca, struct tu_err *reterr)
{
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int r;

	tu_creds_init_openssl();
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

int tu_creds_check_key(const struct tu_creds *c, struct tu_err *reterr)
{
	struct tu_pem_block kb[2], cb[2], *ab = NULL;
	size_t nk = 0, nc = 0, na = 0;
	int r;

	if (c->key_checked)
		return 0;
	ab = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*ab));
	if (!ab)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	/* The object holds exactly the blocks the load split out: split them again and give
	 * them back their lines in the files, so messages are those of a full load. */
	r = tu_pem_split(c->key_pem, c->key_len, kb, 2, &nk, NULL, reterr);
	if (r >= 0)
		r = tu_pem_split(c->cert_pem, c->cert_len, cb, 2, &nc, NULL, reterr);
	if (r >= 0)
		r = tu_pem_split(c->ca_pem, c->ca_len, ab, TU_CREDS_MAX_PEM_BLOCKS, &na, NULL, reterr);
	if (r >= 0 && (nk != 1 || nc != 1 || na != c->n_ca))
		r = tu_err_set(reterr, -EIO, "internal error: the credential changed in memory");
	if (r >= 0) {
		kb[0].line = c->key_line;
		cb[0].line = c->cert_line;
		for (size_t i = 0; i < na; i++)
			ab[i].line = c->ca_lines[i];
		r = check_key(c->cert_path, &cb[0], c->key_path, &kb[0], c->ca_path, ab, na, reterr);
	}
	free(ab);
	if (r < 0)
		return r;
	/* Only ever set from false to true, by the one thread that owns the object. */
	((struct tu_creds *) c)->key_checked = true;
	return 0;
}

static int build(const char *source, const char *cert_path, const struct tu_pem_block *cert_b,
		 const char *key_path, const struct tu_pem_block *key_b, const char *ca_path,
		 const struct tu_pem_block *ca_b, size_t n_ca, int64_t now_usec, bool defer,
		 struct tu_creds **ret, struct tu_err *reterr)
{
	struct tu_creds *c = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	ASN1_OBJECT *cluster_oid = NULL;
	size_t ca_total = 0;
	char t1[64];
	int r;

	tu_creds_init_openssl(); /* before the first OpenSSL call: no openssl.cnf */
	/* key first: in an identity file it is the first block, so a file in the
	 * wrong order is reported at line 1 */
	if (!defer) {
		r = parse_key(key_b, &key, reterr);
		if (r < 0)
			return err_file(reterr, key_path, r);
	}
	r = parse_cert(cert_b, "the client", &cert, reterr);
	if (r < 0) {
		EVP_PKEY_free(key);
		return err_file(reterr, cert_path, r);
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	if (n_ca > TU_CREDS_MAX_PEM_BLOCKS) {
		r = tu_err_set(reterr, -EMSGSIZE, "too many CA certificates");
		goto out;
	}
	/* Every CA block must be a certificate that parses. */
	for (size_t i = 0; i < n_ca; i++) {
		c->ca_lines[i] = ca_b[i].line;
		ca_total += ca_b[i].len + 1;
		if (defer)
			continue;
		X509 *x = NULL;
		r = parse_cert(&ca_b[i], "a CA", &x, reterr);
		if (r < 0) {
			err_file(reterr, ca_path, r);
			goto out;
		}
		X509_free(x);
	}
	if (n_ca == 0) {
		tu_err_at(reterr, ca_path, 0);
		r = tu_err_set(reterr, -EBADMSG,
			       "no CA certificate (PEM CERTIFICATE block) to verify Auth with");
		goto out;
	}

	if (!defer && X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		tu_err_at(reterr, key_path, key_b->line);
		r = tu_err_set(reterr, -EBADMSG,
			       "the private key does not match the certificate%s%s",
			       strcmp(key_path, cert_path) ? " in " : "",
			       strcmp(key_path, cert_path) ? cert_path : "");
		goto out;
	}

	if (asn1_time_usec(X509_get0_notBefore(cert), &c->not_before_usec) < 0 ||
	    asn1_time_usec(X509_get0_notAfter(cert), &c->not_after_usec) < 0) {
		ERR_clear_error();
		tu_err_at(reterr, cert_path, cert_b->line);
		r = tu_err_set(reterr, -EBADMSG, "the certificate's validity dates do not parse");
		goto out;
	}
	/* A fresh certificate checked on a host whose clock is a little behind the
	 * CA's is not an error: Auth judges it with its own clock anyway. */
	if (now_usec < c->not_before_usec - TU_CREDS_CLOCK_SKEW_USEC) {
		tu_err_at(reterr, cert_path, cert_b->line);
		r = tu_err_set(reterr, -EKEYREJECTED,
			       "the certificate is not valid before %s (clock wrong?)",
			       fmt_time(c->not_before_usec, t1, sizeof(t1)));
		goto out;
	}
	if (now_usec >= c->not_after_usec) {
		tu_err_at(reterr, cert_path, cert_b->line);
		r = tu_err_set(reterr, -EKEYEXPIRED, "the certificate expired on %s",
			       fmt_time(c->not_after_usec, t1, sizeof(t1)));
		goto out;
	}

	r = name_entry(X509_get_subject_name(cert), OBJ_nid2obj(NID_commonName), &c->cn, reterr);
	if (r >= 0 && !c->cn)
		r = tu_err_set(reterr, -EBADMSG,
			       "the certificate has no subject CN (not a Teleport identity)");
	if (r < 0) {
		tu_err_at(reterr, cert_path, cert_b->line);
		goto out;
	}
	cluster_oid = OBJ_txt2obj(TELEPORT_CLUSTER_OID, 1);
	if (!cluster_oid) {
		ERR_clear_error();
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	r = name_entry(X509_get_subject_name(cert), cluster_oid, &c->cluster, reterr);
	if (r >= 0 && !c->cluster)
		r = name_entry(X509_get_issuer_name(cert), OBJ_nid2obj(NID_organizationName),
			       &c->cluster, reterr);
	if (r < 0) {
		tu_err_at(reterr, cert_path, cert_b->line);
		goto out;
	}

	c->source = strdup(source);
	c->cert_pem = block_dup(cert_b, &c->cert_len);
	c->key_pem = block_dup(key_b, &c->key_len);
	c->ca_pem = malloc(ca_total + 1);
	c->cert_path = strdup(cert_path);
	c->key_path = strdup(key_path);
	c->ca_path = strdup(ca_path);
	c->cert_line = cert_b->line;
	c->key_line = key_b->line;
	c->key_checked = !defer;
	if (!c->source || !c->cert_pem || !c->key_pem || !c->ca_pem || !c->cert_path || !c->key_path ||
	    !c->ca_path) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_ca; i++) {
		memcpy(c->ca_pem + c->ca_len, ca_b[i].text, ca_b[i].len);
		c->ca_len += ca_b[i].len;
		if (ca_b[i].text[ca_b[i].len - 1] != '\n')
			c->ca_pem[c->ca_len++] = '\n';
	}
	c->ca_pem[c->ca_len] = '\0';
	c->n_ca = n_ca;
	*ret = TAKE_PTR(c);
	r = 0;
out:
	tu_creds_free(c);
	ASN1_OBJECT_free(cluster_oid);
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

static int split_file(const struct file *f, const char *path, struct tu_pem_block *blocks,
		      size_t *ret_n, struct tu_err *reterr)
{
	int r = tu_pem_split(f->buf, f->len, blocks, TU_CREDS_MAX_PEM_BLOCKS, ret_n, NULL, reterr);
	if (r < 0)
		return err_file(reterr, path, r);
	if (*ret_n == 0) {
		tu_err_at(reterr, path, 0);
		return tu_err_set(reterr, -EBADMSG, "no PEM block in the file");
	}
	return 0;
}

int tu_creds_load_key_pair(const char *cert_path, const char *key_path, const char *ca_path,
			   int64_t now_usec, unsigned flags, struct tu_creds **ret,
			   struct tu_err *reterr)
{
	struct file cf = {0}, kf = {0}, af = {0};
	struct tu_pem_block *cb = NULL, *kb = NULL, *ab = NULL;
	size_t nc = 0, nk = 0, na = 0;
	int r;

	cb = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*cb));
	kb = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*kb));
	ab = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*ab));
	if (!cb || !kb || !ab) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	r = read_file(cert_path, false, flags, &cf, reterr);
	if (r < 0)
		goto out;
	r = read_file(key_path, true, flags, &kf, reterr);
	if (r < 0)
		goto out;
	r = read_file(ca_path, false, flags, &af, reterr);
	if (r < 0)
		goto out;
	r = split_file(&cf, cert_path, cb, &nc, reterr);
	if (r < 0)
		goto out;
	r = split_file(&kf, key_path, kb, &nk, reterr);
	if (r < 0)
		goto out;
	r = split_file(&af, ca_path, ab, &na, reterr);
	if (r < 0)
		goto out;
	/* Teleport accepts only the leaf (no intermediates), so further
	 * certificates in the cert file are not sent; they must still be certificates. */
	for (size_t i = 0; i < nc; i++) {
		if (!label_is(&cb[i], "CERTIFICATE")) {
			tu_err_at(reterr, cert_path, cb[i].line);
			r = tu_err_set(reterr, -EBADMSG,
				       "PEM block '%.*s' where only certificates are expected",
				       (int) cb[i].label_len, cb[i].label);
			goto out;
		}
	}
	if (nk != 1) {
		tu_err_at(reterr, key_path, kb[1].line);
		r = tu_err_set(reterr, -EBADMSG,
			       "%zu PEM blocks where exactly one private key is expected", nk);
		goto out;
	}
	r = build(cert_path, cert_path, &cb[0], key_path, &kb[0], ca_path, ab, na, now_usec,
		  (flags & TU_CREDS_DEFER_KEY_CHECK) != 0, ret, reterr);
out:
	file_done(&cf);
	file_done(&kf);
	file_done(&af);
	free(cb);
	free(kb);
	free(ab);
	return r;
}

static int parse_identity(const char *buf, size_t len, const char *name, int64_t now_usec, bool defer,
			  struct tu_creds **ret, struct tu_err *reterr)
{
	struct tu_pem_block *b = NULL;
	struct file f = {.buf = (char *) buf, .len = len};
	size_t n = 0;
	int r;

	b = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*b));
	if (!b)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	r = split_file(&f, name, b, &n, reterr);
	if (r >= 0 && n < 2) {
		tu_err_at(reterr, name, 0);
		r = tu_err_set(
		    reterr, -EBADMSG,
		    "identity file has %zu PEM block(s); expected the private key, the TLS certificate and the CA certificates",
		    n);
	}
	if (r >= 0)
		r = build(name, name, &b[1], name, &b[0], name, b + 2, n - 2, now_usec, defer, ret,
			  reterr);
	free(b);
	return r;
}

int tu_creds_parse_identity(const char *buf, size_t len, const char *name, int64_t now_usec,
			    struct tu_creds **ret, struct tu_err *reterr)
{
	return parse_identity(buf, len, name, now_usec, false, ret, reterr);
}

int tu_creds_load_identity(const char *path, int64_t now_usec, unsigned flags,
			   struct tu_creds **ret, struct tu_err *reterr)
{
	struct file f = {0};
	int r;

	r = read_file(path, true, flags, &f, reterr);
	if (r < 0)
		return r;
	r = parse_identity(f.buf, f.len, path, now_usec, (flags & TU_CREDS_DEFER_KEY_CHECK) != 0, ret, reterr);
	file_done(&f);
	return r;
}

int tu_creds_load(const struct tu_conf *conf, int64_t now_usec, unsigned flags,
		  struct tu_creds **ret, struct tu_err *reterr)
{
	if (conf->identity_file)
		return tu_creds_load_identity(conf->identity_file, now_usec, flags, ret, reterr);
	if (conf->cert_path && conf->key_path && conf->ca_path)
		return tu_creds_load_key_pair(conf->cert_path, conf->key_path, conf->ca_path,
					      now_usec, flags, ret, reterr);
	tu_err_key(reterr, "auth.credentials");
	return tu_err_set(reterr, -EINVAL, "no credentials configured (key_pair or identity_file)");
}

const char *tu_creds_subject_cn(const struct tu_creds *c)
{
	return c->cn;
}

const char *tu_creds_cluster(const struct tu_creds *c)
{
	return c->cluster;
}

int64_t tu_creds_not_before_usec(const struct tu_creds *c)
{
	return c->not_before_usec;
}

int64_t tu_creds_not_after_usec(const struct tu_creds *c)
{
	return c->not_after_usec;
}

bool tu_creds_expiring_soon(const struct tu_creds *c, int64_t now_usec)
{
	return c->not_after_usec - now_usec < TU_CREDS_EXPIRY_WARN_USEC;
}

const char *tu_creds_source(const struct tu_creds *c)
{
	return c->source;
}

const char *tu_creds_cert_pem(const struct tu_creds *c, size_t *ret_len)
{
	if (ret_len)
		*ret_len = c->cert_len;
	return c->cert_pem;
}

const char *tu_creds_key_pem(const struct tu_creds *c, size_t *ret_len)
{
	if (ret_len)
		*ret_len = c->key_len;
	return c->key_pem;
}

const char *tu_creds_ca_pem(const struct tu_creds *c, size_t *ret_len)
{
	if (ret_len)
		*ret_len = c->ca_len;
	return c->ca_pem;
}

size_t tu_creds_n_ca(const struct tu_creds *c)
{
	return c->n_ca;
}
