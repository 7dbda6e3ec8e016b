/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds.h - the client credential used for mTLS to Auth (SPEC §2, API.md
 * §1.6): a key pair (cert, key, CA PEM files, as `tctl auth sign
 * --format=tls` writes them) or an identity file (`--format=file`: 1st PEM
 * block = private key, 2nd = TLS certificate, further PEM blocks = CA
 * certificates; SSH lines are skipped).  Layer: libcore; the X.509 and
 * key parsing is OpenSSL's, in the crypto module (crypto.h), loaded when a
 * load or tu_creds_check_key() first needs it.
 *
 * Everything is checked at load: file owner and mode, sizes, PEM syntax,
 * the key matches the certificate, the certificate's validity period
 * against now, every CA certificate parses.  The loaded object keeps the
 * PEM text of the leaf certificate, the key and the CAs in memory for the
 * transport (curl blobs); the key is wiped (explicit_bzero) on free.
 * A struct tu_creds is immutable after load and may be read from several
 * threads.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tu_conf;
struct tu_err;
struct tu_creds;

#define TU_CREDS_MAX_FILE         ((size_t) 1024 * 1024) /* bytes per credential file */
#define TU_CREDS_MAX_PEM_BLOCKS   64u             /* PEM blocks per file */
#define TU_CREDS_EXPIRY_WARN_USEC (INT64_C(7) * 24 * 3600 * 1000000)
#define TU_CREDS_CLOCK_SKEW_USEC  (INT64_C(5) * 60 * 1000000) /* notBefore tolerance */

enum {
	/* Skip the owner/mode checks (tests, CLI --insecure-perms).  Without it
	 * files are read like the config (base/fsutil.h tu_fs_read_file): not a
	 * symlink, a regular file owned by root, not writable by group or
	 * others, and a file holding a private key not readable by others. */
	TU_CREDS_RELAXED_PERMS = 1 << 0,
	/* Read every file with the same checks and parse the certificate (validity, CN,
	 * cluster), but leave the private key's parse, the CA certificates' parse and the
	 * key/certificate match to tu_creds_check_key(): an offline decision needs only the
	 * certificate, and OpenSSL's key decoder alone costs ~5 M instructions (issue 10).
	 * The transport checks the key before it loads libcurl (h2-load.c). */
	TU_CREDS_DEFER_KEY_CHECK = 1 << 1,
};

/*
 * The checks TU_CREDS_DEFER_KEY_CHECK left out, with the messages a full load
 * gives (file and line); 0 at once for a credential loaded without that flag
 * or already checked.  The result is remembered in the object (one thread).
 */
int tu_creds_check_key(const struct tu_creds *c, struct tu_err *reterr);

/*
 * Loads the credential named by conf (a tsh profile: conf->profile_dir,
 * profile_name; key pair: conf->cert_path, key_path, ca_path; else
 * conf->identity_file) and checks it against now_usec
 * (microseconds since the epoch).  On success *ret is a new object (free
 * with tu_creds_free).  Errors (reterr names the file, and the line for PEM
 * problems):
 *   -ENOENT        a file is missing
 *   -EPERM, -EACCES  owner or mode refused, or open() refused
 *   -ELOOP, -EINVAL  a symlink / not a regular file
 *   -EMSGSIZE      a file over TU_CREDS_MAX_FILE or too many PEM blocks
 *   -EBADMSG       PEM or DER malformed, missing block, encrypted key,
 *                  key does not match the certificate, no CA certificate
 *   -EKEYEXPIRED   the certificate has expired
 *   -EKEYREJECTED  the certificate is not valid yet (beyond TU_CREDS_CLOCK_SKEW_USEC)
 *   -EINVAL        conf names no credential
 *   -ENOMEM
 * Thread-safe.
 */
int tu_creds_load(const struct tu_conf *conf, int64_t now_usec, unsigned flags,
		  struct tu_creds **ret, struct tu_err *reterr);

/*
 * What a process that read the credential recorded about it (issue 13 item 6:
 * `teleport-unix watch` in watch.state; issue 10: `sync` and the watcher in
 * <cache.dir>/host.identity, watch.h tu_host_record_read): the certificate
 * file and its stamp at that read, the certificate's subject CN, cluster
 * (NULL or "" none) and validity.  Borrowed.
 */
struct tu_host_hint;

/*
 * tu_creds_load, and with TU_CREDS_DEFER_KEY_CHECK and a hint that still
 * describes the configured certificate file (same path, the file's stamp
 * equal before and after this read, valid now as a load judges it) the CN,
 * cluster and validity are the hint's instead of an X.509 parse: such a load
 * needs no OpenSSL (issue 10: an offline decision).  tu_creds_check_key()
 * parses everything once Auth answers.  hint may be NULL.
 */
int tu_creds_load_hinted(const struct tu_conf *conf, int64_t now_usec, unsigned flags,
			 const struct tu_host_hint *hint, struct tu_creds **ret, struct tu_err *reterr);

/* The same for explicit paths. */
int tu_creds_load_key_pair(const char *cert_path, const char *key_path, const char *ca_path,
			   int64_t now_usec, unsigned flags, struct tu_creds **ret,
			   struct tu_err *reterr);
int tu_creds_load_identity(const char *path, int64_t now_usec, unsigned flags,
			   struct tu_creds **ret, struct tu_err *reterr);

/*
 * A tsh profile (PROXY.md §6): dir is a ~/.tsh-style directory, name the
 * profile (the Proxy host; NULL = the one "<dir>/current-profile" names).
 * Read from "<dir>/<name>.yaml" (web_proxy_addr, user, cluster) and
 * "<dir>/keys/<proxy-host>/": the TLS certificate "<user>.crt" with the key
 * "<user>.key" (tsh v17+), else "<user>-x509.pem" with the key "<user>"
 * (v16 and older); the CAs: every file in "cas/", else "certs.pem".  The
 * SSH side as in tu_creds_ssh_cert().  Files and the directories walked may
 * belong to root or to the effective uid (the user who ran tsh login), and
 * must not be writable by group or others (unless TU_CREDS_RELAXED_PERMS).
 * Errors as tu_creds_load_key_pair(), each naming the file; a missing file
 * is -ENOENT and an expired certificate -EKEYEXPIRED, both saying "run tsh
 * login".
 */
int tu_creds_load_profile(const char *dir, const char *name, int64_t now_usec, unsigned flags,
			  struct tu_creds **ret, struct tu_err *reterr);

/*
 * Certificate, key and CA PEM text in memory (the public API,
 * include/teleport-unix/teleport-unix.h, documents it).  Messages name the
 * inputs "cert", "key" and "ca" as if they were files.
 */
int tu_creds_parse_pem(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
		       const char *ca_pem, size_t ca_len, int64_t now_usec, struct tu_creds **ret,
		       struct tu_err *reterr);

/*
 * Identity file content already in memory (buf, len bytes; name is used in
 * messages as the file name).  Same checks and errors as
 * tu_creds_load_identity() minus the file ones.  The fuzzers' entry point.
 */
int tu_creds_parse_identity(const char *buf, size_t len, const char *name, int64_t now_usec,
			    struct tu_creds **ret, struct tu_err *reterr);

/* Frees (wiping the key); accepts NULL; returns NULL. */
struct tu_creds *tu_creds_free(struct tu_creds *c);
void tu_creds_freep(struct tu_creds **c);

/* Subject CN of the certificate (user name, or <host-uuid>.<cluster> for hosts). Borrowed from c.
 */
const char *tu_creds_subject_cn(const struct tu_creds *c);

/* Cluster of the identity: subject attribute OID 1.3.9999.1.7, else the
 * issuer's first O; NULL when neither exists.  Borrowed from c. */
const char *tu_creds_cluster(const struct tu_creds *c);

/*
 * What identifies a credential file's current content without reading it
 * (issue 13 item 6): lstat's device, inode, size, mtime and ctime (ns).  A
 * replaced or rewritten file (rename, write, chmod, chown) changes ctime at
 * least.  tu_file_stamp_get: 0, or -errno; -EPERM when path is not a
 * regular file (a symlink is refused, as the credential reader does).
 */
struct tu_file_stamp {
	uint64_t dev, ino;
	int64_t size, mtime_ns, ctime_ns;
};
int tu_file_stamp_get(const char *path, struct tu_file_stamp *ret);
bool tu_file_stamp_equal(const struct tu_file_stamp *a, const struct tu_file_stamp *b);

/* See tu_creds_load_hinted. */
struct tu_host_hint {
	const char *cert_file;
	struct tu_file_stamp stamp;
	const char *cn;
	const char *cluster;
	int64_t not_before_usec, not_after_usec;
};

/*
 * The file the certificate (host identity) was read from and its stamp taken
 * around that read (same before and after), for a key pair or an identity
 * file loaded by tu_creds_load; NULL (a tsh profile, a file that changed
 * while it was read, creds parsed from memory).  Borrowed from c.
 */
const char *tu_creds_cert_file(const struct tu_creds *c, struct tu_file_stamp *ret);

/* Validity period of the certificate, microseconds since the epoch. */
int64_t tu_creds_not_before_usec(const struct tu_creds *c);
int64_t tu_creds_not_after_usec(const struct tu_creds *c);

/* Whether fewer than 7 days (TU_CREDS_EXPIRY_WARN_USEC) of validity are left at now_usec. */
bool tu_creds_expiring_soon(const struct tu_creds *c, int64_t now_usec);

/* Where the credential came from, for messages: the cert path or the identity file path. Borrowed.
 */
const char *tu_creds_source(const struct tu_creds *c);

/*
 * PEM text for the transport (borrowed from c, valid until tu_creds_free,
 * NUL-terminated; *ret_len excludes the NUL): the leaf certificate only,
 * the private key, and every CA certificate concatenated.
 */
const char *tu_creds_cert_pem(const struct tu_creds *c, size_t *ret_len);
const char *tu_creds_key_pem(const struct tu_creds *c, size_t *ret_len);
const char *tu_creds_ca_pem(const struct tu_creds *c, size_t *ret_len);
size_t tu_creds_n_ca(const struct tu_creds *c);

/*
 * The SSH side of the credential, for the reverse tunnel (PROXY.md §4):
 * identity files (the certificate line, else the one in "<path>-cert.pub";
 * the "@cert-authority" lines) and tsh profiles ("keys/<proxy>/<user>-ssh/
 * <cluster>-cert.pub"; the "@cert-authority" lines of "<dir>/known_hosts").
 * The private key is tu_creds_key_pem(): Teleport uses the same key for SSH
 * and TLS in identity files and v16 profiles; a v17+ profile's SSH key
 * "keys/<proxy>/<user>" is loaded instead when it differs (see
 * tu_creds_ssh_key_pem()).
 *
 * tu_creds_ssh_cert: the OpenSSH certificate line ("<type>-cert-v01@openssh.com
 * <base64> [comment]\n"), parsed and not expired at load; NULL when the
 * source has none or it is unusable (then tu_creds_ssh_problem() says why).
 * tu_creds_ssh_known_hosts: every "@cert-authority ..." line, each ending in
 * "\n"; NULL when none.  Borrowed from c, NUL-terminated, *ret_len (may be
 * NULL) excludes the NUL.
 */
const char *tu_creds_ssh_cert(const struct tu_creds *c, size_t *ret_len);
const char *tu_creds_ssh_known_hosts(const struct tu_creds *c, size_t *ret_len);

/* The private key that goes with tu_creds_ssh_cert() (PEM): the TLS key
 * except for a v17+ tsh profile with a separate SSH key.  Borrowed. */
const char *tu_creds_ssh_key_pem(const struct tu_creds *c, size_t *ret_len);

/* Why the source's SSH certificate is not offered (malformed, expired,
 * unreadable "-cert.pub"), or NULL.  Borrowed. */
const char *tu_creds_ssh_problem(const struct tu_creds *c);

/*
 * For a tsh profile (NULL / 0 / false for other credentials): the profile
 * name, its web_proxy_addr as written, the Proxy host and port (443 when
 * the address has none), and what tsh recorded about TLS routing and the
 * ALPN connection upgrade.  Borrowed.
 */
const char *tu_creds_profile_name(const struct tu_creds *c);
const char *tu_creds_proxy_addr(const struct tu_creds *c);
const char *tu_creds_proxy_host(const struct tu_creds *c, uint16_t *ret_port);
bool tu_creds_tls_routing(const struct tu_creds *c);
bool tu_creds_conn_upgrade_required(const struct tu_creds *c);

/* One PEM block found by tu_pem_split(), pointing into the caller's buffer. */
struct tu_pem_block {
	const char *label; /* e.g. "CERTIFICATE", "PRIVATE KEY"; not NUL-terminated */
	size_t label_len;
	const char *text; /* from "-----BEGIN" to the end of the END line (newline included) */
	size_t len;
	unsigned line; /* 1-based line of the BEGIN line */
};

/*
 * Splits buf (len bytes, need not be NUL-terminated) into PEM blocks, in
 * order, skipping every line outside a block (SSH certificates,
 * @cert-authority lines, comments, blank lines).  Does not decode base64:
 * OpenSSL does that.  Errors: -EBADMSG (NUL byte, BEGIN without END, END
 * label differs, BEGIN inside a block, empty or overlong label; *ret_line =
 * the line, when non-NULL), -EMSGSIZE (more than max blocks).
 * *ret_n written on success only.  Pure function; thread-safe.
 */
int tu_pem_split(const char *buf, size_t len, struct tu_pem_block *blocks, size_t max,
		 size_t *ret_n, unsigned *ret_line, struct tu_err *reterr);
