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

#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "conf.h"
#include "crypto.h"
#include "decide.h"
#include "err.h"
#include "fsutil.h"
#include "profile.h"
#include "strbuf.h"


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
	/* SSH side (identity file, tsh profile), for the reverse tunnel: the
	 * certificate line and the @cert-authority lines, each ending in "\n";
	 * NULL when absent.  ssh_problem says why a certificate present in the
	 * source is not offered (malformed, expired): the TLS side stays usable. */
	char *ssh_cert;
	size_t ssh_cert_len;
	char *ssh_known_hosts;
	size_t ssh_known_hosts_len;
	char *ssh_problem;
	char *ssh_key_pem; /* secret; NULL = the TLS key (key_pem) */
	size_t ssh_key_len;
	/* tsh profile only (NULL / false otherwise) */
	char *profile_name;
	char *proxy_addr; /* web_proxy_addr */
	char *proxy_host;
	uint16_t proxy_port;
	/* tu_creds_cert_file: the file the certificate came from, its stamp (NULL: none) */
	char *stamp_path;
	struct tu_file_stamp stamp;
	bool identity_from_hint; /* CN, cluster, validity from tu_creds_load_hinted's hint */
	bool tls_routing;
	bool conn_upgrade;
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

/* Internal flag: files may also belong to the effective uid (tsh profiles). */
#define CREDS_OWNER_SELF (1u << 30)

struct file {
	char *buf;
	size_t len;
	size_t cap;
};

static void file_done(struct file *f)
{
	if (f->buf) {
		explicit_bzero(f->buf, f->cap);
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
	unsigned fs = (secret ? TU_FS_SECRET : 0) |
		      ((flags & TU_CREDS_RELAXED_PERMS) ? TU_FS_RELAXED : 0) |
		      ((flags & CREDS_OWNER_SELF) ? TU_FS_OWNER_SELF : 0);
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

/* ---- PEM labels (the X.509 and key parsing: crypto.c) ---- */

static bool label_is(const struct tu_pem_block *b, const char *s)
{
	return b->label_len == strlen(s) && memcmp(b->label, s, b->label_len) == 0;
}

static const char *fmt_time(int64_t usec, char *buf, size_t size)
{
	time_t s = (time_t) (usec / 1000000);
	struct tm tm;

	if (!gmtime_r(&s, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, size, "@%lld", (long long) (usec / 1000000));
	return buf;
}

struct tu_creds *tu_creds_free(struct tu_creds *c)
{
	if (!c)
		return NULL;
	if (c->key_pem) {
		explicit_bzero(c->key_pem, c->key_len);
		free(c->key_pem);
	}
	free(c->source);
	free(c->cert_pem);
	free(c->ca_pem);
	free(c->cn);
	free(c->cluster);
	free(c->cert_path);
	free(c->stamp_path);
	free(c->key_path);
	free(c->ca_path);
	free(c->ssh_cert);
	free(c->ssh_known_hosts);
	free(c->ssh_problem);
	free(c->profile_name);
	free(c->proxy_addr);
	free(c->proxy_host);
	if (c->ssh_key_pem) {
		explicit_bzero(c->ssh_key_pem, c->ssh_key_len);
		free(c->ssh_key_pem);
	}
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
		const struct tu_crypto_ops *o = NULL;
		r = tu_crypto_get(&o, reterr);
		if (r >= 0)
			r = o->check_key(c->cert_path, &cb[0], c->key_path, &kb[0], c->ca_path, ab, na, reterr);
	}
	free(ab);
	if (r < 0)
		return r;
	/* Only ever set from false to true, by the one thread that owns the object. */
	((struct tu_creds *) c)->key_checked = true;
	return 0;
}

/*
 * What a recorded reading of the certificate (watch.state, host.identity) may
 * stand for: the same file, unchanged since (stamp), valid now as this load
 * would judge it.  The caller checks the stamp again after its own read.
 */
static bool hint_applies(const struct tu_host_hint *h, const char *path, const struct tu_file_stamp *now_stamp,
			 int64_t now_usec)
{
	return h && h->cert_file && h->cn && h->cn[0] && strcmp(h->cert_file, path) == 0 &&
	       tu_file_stamp_equal(&h->stamp, now_stamp) && now_usec >= h->not_before_usec - TU_CREDS_CLOCK_SKEW_USEC &&
	       now_usec < h->not_after_usec;
}

/*
 * The checks and the object common to both credential forms.  cert_path /
 * key_path / ca_path name the files for messages (the same path for an
 * identity file).  defer: TU_CREDS_DEFER_KEY_CHECK.  preset (only with
 * defer): what a recorded reading of this very certificate file said (its
 * CN, cluster, validity; the caller checked the file's stamp), taken instead
 * of parsing the certificate, so an offline decision loads no OpenSSL;
 * tu_creds_check_key() parses it all once Auth answers.
 */
static int build(const char *source, const char *cert_path, const struct tu_pem_block *cert_b,
		 const char *key_path, const struct tu_pem_block *key_b, const char *ca_path,
		 const struct tu_pem_block *ca_b, size_t n_ca, int64_t now_usec, bool defer,
		 const struct tu_host_hint *preset, struct tu_creds **ret, struct tu_err *reterr)
{
	struct tu_creds *c = NULL;
	const struct tu_crypto_ops *o = NULL;
	struct tu_x509_info x = { 0 };
	size_t ca_total = 0;
	char t1[64];
	int r;

	if (!defer)
		preset = NULL;
	if (n_ca > TU_CREDS_MAX_PEM_BLOCKS)
		return tu_err_set(reterr, -EMSGSIZE, "too many CA certificates");
	if (!preset) {
		r = tu_crypto_get(&o, reterr);
		if (r < 0)
			return r;
	}
	/* key, certificate, CAs, key match (crypto.c) */
	if (!defer) {
		r = o->check_key(cert_path, cert_b, key_path, key_b, ca_path, ca_b, n_ca, reterr);
		if (r < 0)
			return r;
	}
	if (preset) {
		x.not_before_usec = preset->not_before_usec;
		x.not_after_usec = preset->not_after_usec;
		x.cn = strdup(preset->cn);
		x.cluster = preset->cluster && preset->cluster[0] ? strdup(preset->cluster) : NULL;
		if (!x.cn || (preset->cluster && preset->cluster[0] && !x.cluster)) {
			r = tu_err_set(reterr, -ENOMEM, "out of memory");
			goto out;
		}
	} else {
		r = o->x509_info(cert_b, &x, reterr);
		if (r < 0)
			return err_file(reterr, cert_path, r);
	}
	if (n_ca == 0) {
		tu_err_at(reterr, ca_path, 0);
		r = tu_err_set(reterr, -EBADMSG,
			       "no CA certificate (PEM CERTIFICATE block) to verify Auth with");
		goto out;
	}
	/* A fresh certificate checked on a host whose clock is a little behind the
	 * CA's is not an error: Auth judges it with its own clock anyway. */
	if (now_usec < x.not_before_usec - TU_CREDS_CLOCK_SKEW_USEC) {
		tu_err_at(reterr, cert_path, cert_b->line);
		r = tu_err_set(reterr, -EKEYREJECTED,
			       "the certificate is not valid before %s (clock wrong?)",
			       fmt_time(x.not_before_usec, t1, sizeof(t1)));
		goto out;
	}
	if (now_usec >= x.not_after_usec) {
		tu_err_at(reterr, cert_path, cert_b->line);
		r = tu_err_set(reterr, -EKEYEXPIRED, "the certificate expired on %s",
			       fmt_time(x.not_after_usec, t1, sizeof(t1)));
		goto out;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_ca; i++) {
		c->ca_lines[i] = ca_b[i].line;
		ca_total += ca_b[i].len + 1;
	}
	c->not_before_usec = x.not_before_usec;
	c->not_after_usec = x.not_after_usec;
	c->cn = TAKE_PTR(x.cn);
	c->cluster = TAKE_PTR(x.cluster);
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
	c->identity_from_hint = preset != NULL;
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
	tu_x509_info_done(&x);
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

static int load_key_pair(const char *cert_path, const char *key_path, const char *ca_path, int64_t now_usec,
			 unsigned flags, const struct tu_host_hint *preset, struct tu_creds **ret,
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
		  (flags & TU_CREDS_DEFER_KEY_CHECK) != 0, preset, ret, reterr);
out:
	file_done(&cf);
	file_done(&kf);
	file_done(&af);
	free(cb);
	free(kb);
	free(ab);
	return r;
}

int tu_creds_load_key_pair(const char *cert_path, const char *key_path, const char *ca_path,
			   int64_t now_usec, unsigned flags, struct tu_creds **ret,
			   struct tu_err *reterr)
{
	return load_key_pair(cert_path, key_path, ca_path, now_usec, flags, NULL, ret, reterr);
}

static int expired_hint(struct tu_err *reterr, int r);

/* ---- SSH lines (identity files, tsh profiles) ---- */

#define SSH_LINES_MAX ((size_t) 256 * 1024) /* the SSH certificate, or all @cert-authority lines */

static bool lower_digit_dash(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

/* Whether t[0..n) is an OpenSSH certificate type, [a-z0-9-]+-cert-v[0-9]{2}@openssh.com
 * (the test Teleport's identity file reader applies to a line's first token). */
static bool ssh_cert_type(const char *t, size_t n)
{
	static const char suffix[] = "@openssh.com", cert[] = "-cert-v";
	const size_t sl = sizeof(suffix) - 1, cl = sizeof(cert) - 1;

	if (n < sl + cl + 3 || memcmp(t + n - sl, suffix, sl) != 0)
		return false;
	n -= sl;
	if (t[n - 1] < '0' || t[n - 1] > '9' || t[n - 2] < '0' || t[n - 2] > '9' ||
	    memcmp(t + n - 2 - cl, cert, cl) != 0)
		return false;
	n -= 2 + cl;
	for (size_t i = 0; i < n; i++)
		if (!lower_digit_dash(t[i]))
			return false;
	return true;
}

/*
 * Collects the SSH lines of buf (outside or between PEM blocks; a base64
 * line can hold neither '@' nor a space): the first OpenSSH certificate
 * line into cert and every "@cert-authority" line into kh, each with "\n"
 * and without a trailing CR.  -EMSGSIZE past SSH_LINES_MAX, -ENOMEM.
 */
static int ssh_lines(const char *buf, size_t len, struct tu_strbuf *cert, struct tu_strbuf *kh)
{
	size_t pos = 0;
	int r = 0;

	while (pos < len && r >= 0) {
		const char *l = buf + pos;
		const char *nl = memchr(l, '\n', len - pos);
		size_t llen = nl ? (size_t) (nl - l) : len - pos;

		pos += llen + (nl ? 1 : 0);
		while (llen > 0 && (l[llen - 1] == '\r' || l[llen - 1] == ' ' || l[llen - 1] == '\t'))
			llen--;
		const char *sp = memchr(l, ' ', llen);
		size_t tok = sp ? (size_t) (sp - l) : llen;
		if (cert->len == 0 && sp && ssh_cert_type(l, tok)) {
			r = tu_strbuf_add(cert, l, llen);
			if (r >= 0)
				r = tu_strbuf_addc(cert, '\n');
		} else if (tok == 15 && memcmp(l, "@cert-authority", 15) == 0 && sp) {
			r = tu_strbuf_add(kh, l, llen);
			if (r >= 0)
				r = tu_strbuf_addc(kh, '\n');
		}
	}
	return r;
}

/*
 * Checks the OpenSSH certificate line (strictly parsed by decide.c's reader)
 * against now: NULL when usable, else a new message saying why not.
 */
static char *ssh_cert_problem(const char *line, size_t len, const char *where, int64_t now_usec,
			      int *ret_code)
{
	struct tu_strbuf b;
	struct tu_ssh_cert *sc = NULL;
	struct tu_err e;
	char *msg = NULL, t1[64];
	int r;

	tu_err_clear(&e);
	tu_strbuf_init(&b, SSH_LINES_MAX + 16);
	*ret_code = -ENOMEM;
	sc = calloc(1, sizeof(*sc));
	if (!sc || tu_strbuf_adds(&b, "publickey ") < 0 || tu_strbuf_add(&b, line, len) < 0)
		goto out;
	r = tu_decide_ssh_cert_parse(b.buf, TU_SSH_CERT_NO_VERIFY, sc, &e); /* its signature is not ours to judge */
	if (r == -ENOMEM)
		goto out;
	*ret_code = r < 0 ? -EBADMSG : 0;
	if (r < 0) {
		const char *m = e.msg;
		if (strncmp(m, "SSH_AUTH_INFO_0: ", 17) == 0)
			m += 17;
		if (asprintf(&msg, "the SSH certificate in %s is unusable: %s", where, m) < 0)
			msg = NULL;
	} else if (now_usec / 1000000 >= 0 && (uint64_t) (now_usec / 1000000) >= sc->valid_before) {
		*ret_code = -EKEYEXPIRED;
		if (asprintf(&msg, "the SSH certificate in %s expired on %s (run tsh login)", where,
			     fmt_time(sc->valid_before >= (uint64_t) INT64_MAX / 1000000
					  ? INT64_MAX
					  : (int64_t) sc->valid_before * 1000000,
				      t1, sizeof(t1))) < 0)
			msg = NULL;
	}
out:
	free(sc);
	tu_strbuf_done(&b);
	return msg;
}

/*
 * Attaches the SSH side to c: the certificate line (checked; when unusable
 * it is left out and c->ssh_problem says why, the TLS side stays usable)
 * and the @cert-authority lines.  Either may be empty.  -ENOMEM only.
 */
static int attach_ssh(struct tu_creds *c, struct tu_strbuf *cert, struct tu_strbuf *kh,
		      const char *where, int64_t now_usec, struct tu_err *reterr)
{
	if (cert->len > 0) {
		int code = 0;
		char *problem = ssh_cert_problem(cert->buf, cert->len - 1, where, now_usec, &code);
		if (code == -ENOMEM)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		if (problem) {
			free(c->ssh_problem);
			c->ssh_problem = problem;
		} else {
			c->ssh_cert = tu_strbuf_steal(cert, &c->ssh_cert_len);
			if (!c->ssh_cert)
				return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
	}
	if (kh->len > 0) {
		c->ssh_known_hosts = tu_strbuf_steal(kh, &c->ssh_known_hosts_len);
		if (!c->ssh_known_hosts)
			return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	return 0;
}

/*
 * An identity file: PEM blocks by position, the SSH lines beside them.  When
 * the file has no SSH certificate line and cert_pub_path is set, the
 * certificate is read from there (`tctl auth sign` writes <path>-cert.pub
 * beside some identity files); a missing file is not an error.
 */
static int parse_identity(const char *buf, size_t len, const char *name, int64_t now_usec,
			  const char *cert_pub_path, unsigned flags, const struct tu_host_hint *preset,
			  struct tu_creds **ret, struct tu_err *reterr)
{
	struct tu_pem_block *b = NULL;
	struct file f = {.buf = (char *) buf, .len = len};
	struct tu_creds *c = NULL;
	struct tu_strbuf cert, kh;
	const char *where = name;
	size_t n = 0;
	int r;

	tu_strbuf_init(&cert, SSH_LINES_MAX);
	tu_strbuf_init(&kh, SSH_LINES_MAX);
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
		r = build(name, name, &b[1], name, &b[0], name, b + 2, n - 2, now_usec,
			  (flags & TU_CREDS_DEFER_KEY_CHECK) != 0, preset, &c, reterr);
	if (r >= 0) {
		r = ssh_lines(buf, len, &cert, &kh);
		if (r < 0) {
			tu_err_at(reterr, name, 0);
			r = tu_err_set(reterr, r,
				       r == -ENOMEM ? "out of memory"
						    : "SSH lines of the identity file over %zu bytes",
				       SSH_LINES_MAX);
		}
	}
	if (r >= 0 && cert.len == 0 && cert_pub_path) {
		struct file pf = {0};
		struct tu_err pe;
		struct tu_strbuf unused;

		tu_err_clear(&pe);
		tu_strbuf_init(&unused, SSH_LINES_MAX);
		int k = read_file(cert_pub_path, false, flags, &pf, &pe);
		if (k >= 0) {
			k = ssh_lines(pf.buf, pf.len, &cert, &unused);
			where = cert_pub_path;
		}
		else if (k != -ENOENT && !(c->ssh_problem = strdup(pe.msg)))
			k = -ENOMEM;
		if (k == -ENOMEM)
			r = tu_err_set(reterr, -ENOMEM, "out of memory");
		file_done(&pf);
		tu_strbuf_done(&unused);
	}
	if (r >= 0)
		r = attach_ssh(c, &cert, &kh, where, now_usec, reterr);
	if (r >= 0)
		*ret = TAKE_PTR(c);
	tu_creds_free(c);
	tu_strbuf_done(&cert);
	tu_strbuf_done(&kh);
	free(b);
	return r;
}

int tu_creds_parse_identity(const char *buf, size_t len, const char *name, int64_t now_usec,
			    struct tu_creds **ret, struct tu_err *reterr)
{
	return parse_identity(buf, len, name, now_usec, NULL, 0, NULL, ret, reterr);
}

static int load_identity(const char *path, int64_t now_usec, unsigned flags, const struct tu_host_hint *preset,
			 struct tu_creds **ret, struct tu_err *reterr)
{
	struct file f = {0};
	char *pub = NULL;
	int r;

	r = read_file(path, true, flags, &f, reterr);
	if (r < 0)
		return r;
	if (asprintf(&pub, "%s-cert.pub", path) < 0) {
		file_done(&f);
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	}
	r = parse_identity(f.buf, f.len, path, now_usec, pub, flags, preset, ret, reterr);
	expired_hint(reterr, r); /* tsh login --out (or tctl auth sign) writes a new one */
	free(pub);
	file_done(&f);
	return r;
}

int tu_creds_load_identity(const char *path, int64_t now_usec, unsigned flags,
			   struct tu_creds **ret, struct tu_err *reterr)
{
	return load_identity(path, now_usec, flags, NULL, ret, reterr);
}

/* ---- PEM in memory (the public API, include/teleport-unix/teleport-unix.h) ---- */

int tu_creds_parse_pem(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
		       const char *ca_pem, size_t ca_len, int64_t now_usec, struct tu_creds **ret,
		       struct tu_err *reterr)
{
	struct file cf = {.buf = (char *) cert_pem, .len = cert_len};
	struct file kf = {.buf = (char *) key_pem, .len = key_len};
	struct file af = {.buf = (char *) ca_pem, .len = ca_len};
	struct tu_pem_block *cb = NULL, *kb = NULL, *ab = NULL;
	size_t nc = 0, nk = 0, na = 0;
	int r;

	if (!cert_pem || !key_pem || !ca_pem || !ret)
		return tu_err_set(reterr, -EINVAL, "certificate, key and CA PEM are all required");
	if (cert_len > TU_CREDS_MAX_FILE || key_len > TU_CREDS_MAX_FILE || ca_len > TU_CREDS_MAX_FILE)
		return tu_err_set(reterr, -EMSGSIZE, "a PEM input is larger than %zu bytes",
				  TU_CREDS_MAX_FILE);
	cb = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*cb));
	kb = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*kb));
	ab = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*ab));
	if (!cb || !kb || !ab) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	/* the names "cert", "key", "ca" stand for the files in every message */
	r = split_file(&cf, "cert", cb, &nc, reterr);
	if (r >= 0)
		r = split_file(&kf, "key", kb, &nk, reterr);
	if (r >= 0)
		r = split_file(&af, "ca", ab, &na, reterr);
	for (size_t i = 0; r >= 0 && i < nc; i++) {
		if (!label_is(&cb[i], "CERTIFICATE")) {
			tu_err_at(reterr, "cert", cb[i].line);
			r = tu_err_set(reterr, -EBADMSG,
				       "PEM block '%.*s' where only certificates are expected",
				       (int) cb[i].label_len, cb[i].label);
		}
	}
	if (r >= 0 && nk != 1) {
		tu_err_at(reterr, "key", kb[1].line);
		r = tu_err_set(reterr, -EBADMSG,
			       "%zu PEM blocks where exactly one private key is expected", nk);
	}
	if (r >= 0)
		r = build("PEM in memory", "cert", &cb[0], "key", &kb[0], "ca", ab, na, now_usec,
			  false, NULL, ret, reterr);
out:
	free(cb);
	free(kb);
	free(ab);
	return r;
}

/* ---- tsh profiles ---- */

/* Appends " (run tsh login)" to an expiry message: the fix an administrator needs. */
static int expired_hint(struct tu_err *reterr, int r)
{
	if (r == -EKEYEXPIRED && reterr && !strstr(reterr->msg, "tsh login")) {
		char msg[sizeof(reterr->msg)];
		snprintf(msg, sizeof(msg), "%s", reterr->msg);
		tu_err_set(reterr, r, "%s (run tsh login)", msg);
	}
	return r;
}

static char *path_join(const char *a, const char *b, const char *c)
{
	char *s = NULL;

	if (asprintf(&s, "%s/%s%s", a, b, c ? c : "") < 0)
		return NULL;
	return s;
}

static int profile_dir_ok(const char *dir, unsigned flags, struct tu_err *reterr)
{
	int fd, r;

	if (flags & TU_CREDS_RELAXED_PERMS)
		return 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		return tu_err_set(reterr, r, "cannot open %s: %s%s", dir, strerror(-r),
				  r == -ENOENT ? " (run tsh login)" : "");
	}
	r = tu_fs_check_trusted(fd, dir, TU_FS_OWNER_SELF, reterr);
	close(fd);
	return r;
}

/* Validates every PEM block of one CA file (naming the file) and appends it to all. */
static int profile_add_ca(const char *path, unsigned flags, struct tu_strbuf *all,
			  struct tu_pem_block *blocks, struct tu_err *reterr)
{
	struct file f = {0};
	size_t n = 0;
	int r;

	r = read_file(path, false, flags, &f, reterr);
	if (r < 0)
		return r;
	r = split_file(&f, path, blocks, &n, reterr);
	const struct tu_crypto_ops *o = NULL;
	if (r >= 0)
		r = tu_crypto_get(&o, reterr);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = o->cert_parses(&blocks[i], "a CA", reterr);
		if (r < 0)
			err_file(reterr, path, r);
		if (r >= 0)
			r = tu_strbuf_add(all, blocks[i].text, blocks[i].len);
		if (r >= 0 && blocks[i].text[blocks[i].len - 1] != '\n')
			r = tu_strbuf_addc(all, '\n');
		if (r == -EMSGSIZE || r == -ENOMEM)
			r = tu_err_set(reterr, r, r == -ENOMEM ? "out of memory"
							       : "CA certificates over %zu bytes",
				       TU_CREDS_MAX_FILE);
	}
	file_done(&f);
	return r;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The CA certificates: every regular file in "<keydir>/cas" (sorted by
 * name), else the older "<keydir>/certs.pem".
 */
static int profile_cas(const char *keydir, unsigned flags, struct tu_strbuf *all,
		       char **ret_where, struct tu_err *reterr)
{
	_cleanup_free_ char *cas = path_join(keydir, "cas", NULL);
	struct tu_pem_block *blocks = NULL;
	char *names[256];
	size_t nn = 0;
	DIR *d;
	int r = 0;

	if (!cas)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	blocks = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*blocks));
	if (!blocks)
		return tu_err_set(reterr, -ENOMEM, "out of memory");
	d = opendir(cas);
	if (!d && errno == ENOENT) {
		char *legacy = path_join(keydir, "certs.pem", NULL);
		if (!legacy) {
			free(blocks);
			return tu_err_set(reterr, -ENOMEM, "out of memory");
		}
		r = profile_add_ca(legacy, flags, all, blocks, reterr);
		if (r == -ENOENT)
			r = tu_err_set(reterr, r,
				       "no CA certificates in the tsh profile: neither %s nor %s exists (run tsh login)",
				       cas, legacy);
		if (r >= 0)
			*ret_where = legacy;
		else
			free(legacy);
		free(blocks);
		return r;
	}
	if (!d) {
		r = -errno;
		free(blocks);
		return tu_err_set(reterr, r, "cannot open %s: %s", cas, strerror(-r));
	}
	r = profile_dir_ok(cas, flags, reterr);
	for (struct dirent *de; r >= 0 && (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (nn == sizeof(names) / sizeof(names[0])) {
			r = tu_err_set(reterr, -EMSGSIZE, "more than %zu files in %s", nn, cas);
			break;
		}
		if (!(names[nn] = strdup(de->d_name)))
			r = tu_err_set(reterr, -ENOMEM, "out of memory");
		else
			nn++;
	}
	closedir(d);
	if (r >= 0 && nn == 0) {
		tu_err_at(reterr, cas, 0);
		r = tu_err_set(reterr, -EBADMSG, "no CA certificate file in the directory (run tsh login)");
	}
	qsort(names, nn, sizeof(names[0]), name_cmp);
	for (size_t i = 0; r >= 0 && i < nn; i++) {
		char *path = path_join(cas, names[i], NULL);
		r = path ? profile_add_ca(path, flags, all, blocks, reterr)
			 : tu_err_set(reterr, -ENOMEM, "out of memory");
		free(path);
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(blocks);
	if (r >= 0)
		*ret_where = TAKE_PTR(cas);
	return r;
}

/*
 * The SSH side of a profile: "<keydir>/<user>-ssh/<cluster>-cert.pub", the
 * @cert-authority lines of "<dir>/known_hosts" and, for v17+ profiles, the
 * SSH key "<keydir>/<user>" when it is not the TLS key.  Nothing here is
 * fatal for the TLS side: a missing or bad piece is c->ssh_problem.
 */
static int profile_ssh(struct tu_creds *c, const struct tu_profile *p, const char *keydir,
		       const char *tls_key_path, unsigned flags, int64_t now_usec,
		       struct tu_err *reterr)
{
	_cleanup_free_ char *certdir = NULL, *certname = NULL, *certpath = NULL, *khpath = NULL,
			    *sshkey = NULL;
	struct tu_strbuf cert, kh, unused;
	struct file f = {0};
	struct tu_err e;
	int r = 0, k;

	tu_strbuf_init(&cert, SSH_LINES_MAX);
	tu_strbuf_init(&kh, SSH_LINES_MAX);
	tu_strbuf_init(&unused, SSH_LINES_MAX);
	if (asprintf(&certdir, "%s/%s-ssh", keydir, p->user) < 0)
		certdir = NULL;
	certname = certdir ? path_join(certdir, p->cluster, "-cert.pub") : NULL;
	certpath = certname;
	certname = NULL;
	khpath = path_join(p->dir, "known_hosts", NULL);
	sshkey = path_join(keydir, p->user, NULL);
	if (!certdir || !certpath || !khpath || !sshkey) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}

	tu_err_clear(&e);
	k = read_file(certpath, false, flags, &f, &e);
	if (k >= 0)
		k = ssh_lines(f.buf, f.len, &cert, &unused);
	file_done(&f);
	if (k == -ENOMEM) {
		r = tu_err_set(reterr, k, "out of memory");
		goto out;
	}
	if (k < 0 || cert.len == 0) {
		if (asprintf(&c->ssh_problem, "no usable SSH certificate in the tsh profile (%s: %s)",
			     certpath, k < 0 ? e.msg : "no certificate line") < 0)
			c->ssh_problem = NULL;
	}

	tu_err_clear(&e);
	k = read_file(khpath, false, flags, &f, &e);
	if (k >= 0)
		k = ssh_lines(f.buf, f.len, &unused, &kh);
	file_done(&f);
	if (k == -ENOMEM) {
		r = tu_err_set(reterr, k, "out of memory");
		goto out;
	}

	if (strcmp(sshkey, tls_key_path) != 0) {
		struct tu_pem_block b[2];
		size_t n = 0;
		const struct tu_crypto_ops *o = NULL;

		tu_err_clear(&e);
		k = read_file(sshkey, true, flags, &f, &e);
		if (k >= 0)
			k = tu_pem_split(f.buf, f.len, b, 2, &n, NULL, &e);
		if (k >= 0 && n != 1)
			k = tu_err_set(&e, -EBADMSG, "expected one PEM private key");
		if (k >= 0 && !(flags & TU_CREDS_DEFER_KEY_CHECK))
			k = tu_crypto_get(&o, &e);
		if (k >= 0 && o)
			k = o->key_parses(&b[0], &e);
		if (k >= 0 && (f.len != c->key_len || memcmp(f.buf, c->key_pem, f.len) != 0)) {
			c->ssh_key_pem = block_dup(&b[0], &c->ssh_key_len);
			if (!c->ssh_key_pem)
				k = -ENOMEM;
		}
		file_done(&f);
		if (k == -ENOMEM) {
			r = tu_err_set(reterr, k, "out of memory");
			goto out;
		}
		if (k < 0 && !c->ssh_problem &&
		    asprintf(&c->ssh_problem, "the SSH key of the tsh profile is unusable: %s: %s",
			     sshkey, e.msg) < 0)
			c->ssh_problem = NULL;
	}
	tu_strbuf_reset(&unused); /* a certificate line in known_hosts is not ours */
	r = attach_ssh(c, c->ssh_problem ? &unused : &cert, &kh, certpath, now_usec, reterr);
out:
	tu_strbuf_done(&cert);
	tu_strbuf_done(&kh);
	tu_strbuf_done(&unused);
	return r;
}

int tu_creds_load_profile(const char *dir, const char *name, int64_t now_usec, unsigned flags,
			  struct tu_creds **ret, struct tu_err *reterr)
{
	struct tu_profile p = {0};
	struct tu_creds *c = NULL;
	struct file cf = {0}, kf = {0};
	struct tu_strbuf cas;
	struct tu_pem_block *cb = NULL, *kb = NULL, *ab = NULL;
	char *keydir = NULL, *certpath = NULL, *keypath = NULL, *legacy = NULL, *cawhere = NULL;
	size_t nc = 0, nk = 0, na = 0;
	int r;

	flags |= CREDS_OWNER_SELF;
	tu_strbuf_init(&cas, TU_CREDS_MAX_FILE);
	r = tu_profile_load(dir, name, flags & TU_CREDS_RELAXED_PERMS, &p, reterr);
	if (r < 0)
		return r;
	cb = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*cb));
	kb = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*kb));
	ab = calloc(TU_CREDS_MAX_PEM_BLOCKS, sizeof(*ab));
	if (asprintf(&keydir, "%s/keys/%s", p.dir, p.proxy_host) < 0)
		keydir = NULL;
	if (!cb || !kb || !ab || !keydir) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	/* "keys" and "keys/<proxy>" as the profile directory itself: a writable one would let
	 * someone swap in another root-owned key directory */
	keydir[strlen(keydir) - strlen(p.proxy_host) - 1] = '\0';
	r = profile_dir_ok(keydir, flags, reterr);
	keydir[strlen(keydir)] = '/';
	if (r >= 0)
		r = profile_dir_ok(keydir, flags, reterr);
	if (r < 0)
		goto out;

	/* v17+: <user>.crt (+ <user>.key); v16 and older: <user>-x509.pem (+ <user>) */
	certpath = path_join(keydir, p.user, ".crt");
	legacy = path_join(keydir, p.user, "-x509.pem");
	if (!certpath || !legacy) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	r = read_file(certpath, false, flags, &cf, reterr);
	if (r == -ENOENT) {
		r = read_file(legacy, false, flags, &cf, reterr);
		if (r == -ENOENT)
			r = tu_err_set(reterr, r,
				       "no TLS certificate in the tsh profile: neither %s nor %s exists (run tsh login)",
				       certpath, legacy);
		if (r >= 0) {
			free(certpath);
			certpath = TAKE_PTR(legacy);
			keypath = path_join(keydir, p.user, NULL);
		}
	} else if (r >= 0) {
		keypath = path_join(keydir, p.user, ".key");
	}
	if (r < 0)
		goto out;
	if (!keypath) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	r = read_file(keypath, true, flags, &kf, reterr);
	if (r == -ENOENT && has_suffix(keypath, strlen(keypath), ".key")) {
		/* a v17 certificate next to the one older key */
		char *older = path_join(keydir, p.user, NULL);
		if (!older) {
			r = tu_err_set(reterr, -ENOMEM, "out of memory");
			goto out;
		}
		r = read_file(older, true, flags, &kf, reterr);
		if (r == -ENOENT)
			r = tu_err_set(reterr, r,
				       "no private key in the tsh profile: neither %s nor %s exists (run tsh login)",
				       keypath, older);
		if (r >= 0) {
			free(keypath);
			keypath = older;
		} else {
			free(older);
		}
	} else if (r == -ENOENT) {
		r = tu_err_set(reterr, r, "the tsh profile's private key %s is missing (run tsh login)",
			       keypath);
	}
	if (r < 0)
		goto out;
	r = profile_cas(keydir, flags, &cas, &cawhere, reterr);
	if (r < 0)
		goto out;

	r = split_file(&cf, certpath, cb, &nc, reterr);
	if (r >= 0)
		r = split_file(&kf, keypath, kb, &nk, reterr);
	if (r >= 0 && nk != 1) {
		tu_err_at(reterr, keypath, kb[nk > 1 ? 1 : 0].line);
		r = tu_err_set(reterr, -EBADMSG,
			       "%zu PEM blocks where exactly one private key is expected", nk);
	}
	if (r >= 0)
		r = tu_pem_split(cas.buf, cas.len, ab, TU_CREDS_MAX_PEM_BLOCKS, &na, NULL, reterr);
	if (r >= 0)
		r = build(certpath, certpath, &cb[0], keypath, &kb[0], cawhere, ab, na, now_usec,
			  (flags & TU_CREDS_DEFER_KEY_CHECK) != 0, NULL, &c, reterr);
	if (r < 0) {
		expired_hint(reterr, r);
		goto out;
	}
	r = profile_ssh(c, &p, keydir, keypath, flags, now_usec, reterr);
	if (r < 0)
		goto out;
	c->profile_name = strdup(p.name);
	c->proxy_addr = strdup(p.web_proxy_addr);
	c->proxy_host = strdup(p.proxy_host);
	c->proxy_port = p.proxy_port;
	c->tls_routing = p.tls_routing_enabled;
	c->conn_upgrade = p.tls_routing_conn_upgrade_required;
	if (!c->profile_name || !c->proxy_addr || !c->proxy_host) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	*ret = TAKE_PTR(c);
	r = 0;
out:
	tu_creds_free(c);
	tu_profile_done(&p);
	file_done(&cf);
	file_done(&kf);
	tu_strbuf_done(&cas);
	free(cb);
	free(kb);
	free(ab);
	free(keydir);
	free(certpath);
	free(keypath);
	free(legacy);
	free(cawhere);
	return r;
}

int tu_file_stamp_get(const char *path, struct tu_file_stamp *ret)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EPERM;
	*ret = (struct tu_file_stamp){
		.dev = (uint64_t) st.st_dev,
		.ino = (uint64_t) st.st_ino,
		.size = (int64_t) st.st_size,
		.mtime_ns = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
		.ctime_ns = (int64_t) st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec,
	};
	return 0;
}

bool tu_file_stamp_equal(const struct tu_file_stamp *a, const struct tu_file_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns;
}

const char *tu_creds_cert_file(const struct tu_creds *c, struct tu_file_stamp *ret)
{
	if (!c || !c->stamp_path || c->identity_from_hint)
		return NULL; /* a hint is not recorded again as if read from the file */
	if (ret)
		*ret = c->stamp;
	return c->stamp_path;
}

int tu_creds_load(const struct tu_conf *conf, int64_t now_usec, unsigned flags,
		  struct tu_creds **ret, struct tu_err *reterr)
{
	return tu_creds_load_hinted(conf, now_usec, flags, NULL, ret, reterr);
}

int tu_creds_load_hinted(const struct tu_conf *conf, int64_t now_usec, unsigned flags,
			 const struct tu_host_hint *hint, struct tu_creds **ret, struct tu_err *reterr)
{
	struct tu_file_stamp before, after;
	const struct tu_host_hint *preset = NULL;
	const char *path = NULL;
	bool stamped;
	int r;

	if (conf->profile_dir)
		return tu_creds_load_profile(conf->profile_dir, conf->profile_name, now_usec, flags,
					     ret, reterr);
	if (conf->identity_file)
		path = conf->identity_file;
	else if (conf->cert_path && conf->key_path && conf->ca_path)
		path = conf->cert_path;
	if (!path) {
		tu_err_key(reterr, "auth.credentials");
		return tu_err_set(reterr, -EINVAL,
				  "no credentials configured (key_pair, identity_file or profile)");
	}
	/* The certificate file's stamp around the read: what was parsed is what it names
	 * (a file replaced during the read gets no stamp). */
	stamped = tu_file_stamp_get(path, &before) == 0;
	if (stamped && (flags & TU_CREDS_DEFER_KEY_CHECK) && hint_applies(hint, path, &before, now_usec))
		preset = hint;
	if (conf->identity_file)
		r = load_identity(conf->identity_file, now_usec, flags, preset, ret, reterr);
	else
		r = load_key_pair(conf->cert_path, conf->key_path, conf->ca_path, now_usec, flags, preset, ret,
				  reterr);
	if (r < 0 || !stamped || tu_file_stamp_get(path, &after) < 0 || !tu_file_stamp_equal(&before, &after)) {
		if (r >= 0 && preset) {
			/* changed during the read: what was read may not be what the record says */
			*ret = tu_creds_free(*ret);
			return tu_creds_load_hinted(conf, now_usec, flags, NULL, ret, reterr);
		}
		return r;
	}
	(*ret)->stamp_path = strdup(path); /* NULL on ENOMEM: no stamp, nothing worse */
	(*ret)->stamp = before;
	return r;
}

const char *tu_creds_profile_name(const struct tu_creds *c)
{
	return c->profile_name;
}

const char *tu_creds_proxy_addr(const struct tu_creds *c)
{
	return c->proxy_addr;
}

const char *tu_creds_proxy_host(const struct tu_creds *c, uint16_t *ret_port)
{
	if (ret_port)
		*ret_port = c->proxy_host ? c->proxy_port : 0;
	return c->proxy_host;
}

bool tu_creds_tls_routing(const struct tu_creds *c)
{
	return c->tls_routing;
}

bool tu_creds_conn_upgrade_required(const struct tu_creds *c)
{
	return c->conn_upgrade;
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

const char *tu_creds_ssh_cert(const struct tu_creds *c, size_t *ret_len)
{
	if (ret_len)
		*ret_len = c->ssh_cert ? c->ssh_cert_len : 0;
	return c->ssh_cert;
}

const char *tu_creds_ssh_known_hosts(const struct tu_creds *c, size_t *ret_len)
{
	if (ret_len)
		*ret_len = c->ssh_known_hosts ? c->ssh_known_hosts_len : 0;
	return c->ssh_known_hosts;
}

const char *tu_creds_ssh_key_pem(const struct tu_creds *c, size_t *ret_len)
{
	if (c->ssh_key_pem) {
		if (ret_len)
			*ret_len = c->ssh_key_len;
		return c->ssh_key_pem;
	}
	return tu_creds_key_pem(c, ret_len);
}

const char *tu_creds_ssh_problem(const struct tu_creds *c)
{
	return c->ssh_problem;
}
