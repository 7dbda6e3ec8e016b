/* SPDX-License-Identifier: Apache-2.0 */
/*
 * teleport-unix/teleport-unix.h - the public C API of libteleport-unix.so.0
 * for other programs (installed under $(includedir)/teleport-unix/; link
 * with `pkg-config --cflags --libs teleport-unix`).  Documented with an
 * example in docs/embedding.md; tests/api/embed-ping.c uses nothing else.
 *
 * What it offers: the client credential built from PEM text in memory
 * (certificate, private key, CA certificates: "TLS credentials" in
 * Teleport's Go client; or a whole identity file), checked exactly as the
 * files teleport-unix reads (the key matches the certificate, the
 * certificate is valid now, every CA parses); and an Auth client that uses
 * it for the core's calls, configured without any file.
 *
 * Conventions: every function returns 0 or a negative errno and fills the
 * caller's struct tu_err (may be NULL) with what went wrong; objects are
 * opaque, created by *_new / *_parse_* and released by *_free (which
 * accept NULL and return NULL).  Out-parameters are written on success
 * only.  No function starts a thread, installs a signal handler or reads
 * the environment; every network call has a deadline.  One object may be
 * used by one thread at a time; a struct tu_creds may be shared read-only.
 * Symbols are versioned TU_0.
 */
#ifndef TELEPORT_UNIX_H
#define TELEPORT_UNIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <teleport-unix/err.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tu_creds; /* a client credential (certificate, key, CAs) */
struct tu_conf;  /* connection settings */
struct tu_auth;  /* an Auth client */

/* ---- credentials ---------------------------------------------------- */

/*
 * Builds a credential from PEM text in memory: cert_pem the client
 * certificate (further certificates after the first are checked but not
 * sent), key_pem exactly one unencrypted private key (PKCS#8, PKCS#1 or
 * SEC1), ca_pem one or more CA certificates to verify Auth with (Teleport's
 * Host CA).  Lengths in bytes; the text need not be NUL-terminated and is
 * copied (the caller may wipe its buffers right after).  Checked against
 * now_usec (microseconds since the epoch).  Errors (reterr->msg says which
 * input, reterr->file is "cert", "key" or "ca", reterr->line the PEM line):
 *   -EBADMSG      malformed PEM or DER, wrong block type, encrypted key, key
 *                 does not match the certificate, no CA certificate
 *   -EKEYEXPIRED  the certificate has expired
 *   -EKEYREJECTED the certificate is not valid yet
 *   -EMSGSIZE     an input over 1 MiB or 64 PEM blocks
 *   -EINVAL       a NULL input
 *   -ENOMEM
 */
int tu_creds_parse_pem(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
		       const char *ca_pem, size_t ca_len, int64_t now_usec, struct tu_creds **ret,
		       struct tu_err *reterr);

/*
 * The same from an identity file's text (`tctl auth sign --format=file`,
 * `tsh login --out`): the private key, the TLS certificate, then CA
 * certificates, with SSH lines beside them.  name is used in messages.
 */
int tu_creds_parse_identity(const char *buf, size_t len, const char *name, int64_t now_usec,
			    struct tu_creds **ret, struct tu_err *reterr);

/* Frees (wiping the key); accepts NULL; returns NULL. */
struct tu_creds *tu_creds_free(struct tu_creds *c);

/* The certificate's subject CN (a user, or "<host-uuid>.<cluster>") and its
 * cluster (NULL when the certificate names none).  Borrowed from c. */
const char *tu_creds_subject_cn(const struct tu_creds *c);
const char *tu_creds_cluster(const struct tu_creds *c);

/* The certificate's validity period, microseconds since the epoch. */
int64_t tu_creds_not_before_usec(const struct tu_creds *c);
int64_t tu_creds_not_after_usec(const struct tu_creds *c);

/* ---- connection settings -------------------------------------------- */

/*
 * Settings with every default of /etc/teleport-unix.yaml (timeouts 1s
 * connect and 3s per request, 64 MiB per message, TLS name
 * teleport.cluster.local) and no Auth address yet.  -ENOMEM.
 */
int tu_conf_new_default(struct tu_conf **ret, struct tu_err *reterr);

/* Appends an Auth address "host[:port]" (default port 3025; IPv6 in
 * brackets); tried in order.  -EINVAL (bad address), -EMSGSIZE (more than
 * 16), -ENOMEM. */
int tu_conf_add_address(struct tu_conf *c, const char *hostport, struct tu_err *reterr);

/* Sets the connect and per-request timeouts (each 1 ms .. 10 min).  -EINVAL. */
int tu_conf_set_timeouts(struct tu_conf *c, uint64_t connect_usec, uint64_t request_usec,
			 struct tu_err *reterr);

/* Frees; accepts NULL; returns NULL. */
struct tu_conf *tu_conf_free(struct tu_conf *c);

/* ---- the Auth client ------------------------------------------------- */

/*
 * An Auth client over mTLS with creds (HTTP/2, gRPC).  conf and creds are
 * borrowed and must outlive the client.  No connection is made yet.
 * -EINVAL (no address), -EPERM (an unsafe environment: setuid), -ENOMEM.
 */
int tu_auth_new(const struct tu_conf *conf, const struct tu_creds *creds, struct tu_auth **ret,
		struct tu_err *reterr);

/* Closes the connection and frees; accepts NULL; returns NULL. */
struct tu_auth *tu_auth_free(struct tu_auth *a);

/*
 * Ping: connects if needed and asks Auth for its cluster name and Teleport
 * version, copied NUL-terminated into the caller's buffers (either may be
 * NULL with size 0; one too small for its answer is -ENOSPC and nothing is
 * copied, never a truncated name).  Errors: -ECONNREFUSED,
 * -EHOSTUNREACH, -ETIMEDOUT (the deadline passed), -EPROTO (not Teleport,
 * TLS or certificate refused: reterr says which), -EBADMSG, -ENOSPC, -ENOMEM.
 */
int tu_auth_ping_info(struct tu_auth *a, char *cluster, size_t cluster_size, char *version,
		      size_t version_size, struct tu_err *reterr);

/*
 * Whether the Teleport user name exists: 0 and *ret_exists.  Errors as
 * tu_auth_ping_info(), and -EACCES when the credential's roles may not read
 * users.
 */
int tu_auth_user_exists(struct tu_auth *a, const char *name, bool *ret_exists,
			struct tu_err *reterr);

#ifdef __cplusplus
}
#endif

#endif
