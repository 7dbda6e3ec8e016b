/* SPDX-License-Identifier: Apache-2.0 */
/*
 * decide.h - the PAM login decision (SPEC §5), shared by pam_teleport.so and
 * `teleport-unix check`.  Layer: libcore.
 *
 * tu_decide_pure() is a pure function of its inputs (no clock, no I/O).
 * tu_decide() gathers the inputs (online from Auth, else from the private
 * cache snapshot per pam.offline) and calls it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "rbac.h"

struct tu_conf;

struct tu_ctx;
struct tu_err;

enum tu_verdict_kind {
	TU_VERDICT_ALLOW = 0,   /* PAM_SUCCESS */
	TU_VERDICT_DENY = 1,    /* PAM_PERM_DENIED */
	TU_VERDICT_UNKNOWN = 2, /* PAM_USER_UNKNOWN: not a Teleport login */
	TU_VERDICT_UNAVAIL = 3, /* PAM_AUTHINFO_UNAVAIL: no usable data */
};

struct tu_verdict {
	enum tu_verdict_kind kind;
	bool offline;      /* decided from the cache snapshot */
	bool watched;      /* ... because `teleport-unix watch` keeps it current (no Auth call) */
	char user[256];    /* the Teleport user decided for ("" when none) */
	char role[256];    /* role that allowed or denied ("" when n/a) */
	char reason[512];  /* one line for syslog and `check` */
	bool cert_identity; /* user is the key id of the request's certificate, one from Teleport's
	                       user CA valid now (tu_decide_ssh_cert_trusted), not an owner found
	                       for the login (issue 10: ssh-principals needs no second look) */
};

struct tu_login_req {
	const char *login;             /* PAM_USER: the OS login */
	const char *service;           /* PAM_SERVICE, may be NULL */
	const char *rhost;             /* PAM_RHOST, may be NULL */
	const char *teleport_username; /* TELEPORT_USERNAME from the PAM env, NULL if absent */
	const char *ssh_auth_info;     /* SSH_AUTH_INFO_0, NULL if absent */
	const char *explicit_user;     /* `check USER LOGIN`: the Teleport user given on the command line */
	/* ssh_auth_info is sshd's %t %k given to AuthorizedPrincipalsCommand (`ssh-principals`
	 * only): sshd verified that certificate's signature with its signature key when it
	 * decoded it and checked that key against TrustedUserCAKeys before running the command,
	 * so the signature is not checked again (TU_SSH_CERT_SSHD_VERIFIED; docs/SECURITY.md).
	 * Never for SSH_AUTH_INFO_0, which other PAM modules can write. */
	bool ssh_cert_sshd_verified;
};

struct tu_decide_opts {
	bool trust_teleport_env;
	bool trust_ssh_cert;
	int source;                    /* enum tu_accounts_source */
	bool stale_locks;              /* the locks are a snapshot (offline): strict locking
	                                  (a role's options.lock, else the cluster's
	                                  locking_mode) denies (Teleport's preventive
	                                  lock-out when the lock view is stale) */
};

/*
 * Who owns login on h (SPEC §4): the user named login; else users whose
 * `logins` trait holds it; else users whose roles allow it here (with
 * source=host_user_creation only roles that enable host users count).
 * ret gets the owner names sorted bytewise; empty = not a Teleport login.
 */
int tu_decide_owners(const struct tu_dataset *d, const struct tu_host *h, int source, const char *login,
		     struct tu_strv *ret, struct tu_err *reterr);

/*
 * Whether a device trust mode (a role's device_trust_mode, the auth
 * preference's device_trust.mode) asks for a trusted device: every mode but
 * "", "off" and "optional" ("required", "required-for-humans", and any mode
 * we do not know, as Teleport assumes).
 */
bool tu_decide_device_required(const char *mode);

/*
 * The first OpenSSH user certificate in an SSH_AUTH_INFO_0 value
 * ("publickey <type>-cert-v01@openssh.com <base64>" lines, as sshd writes
 * with ExposeAuthInfo, or one line built from AuthorizedPrincipalsCommand's
 * %t %k), parsed whole and strictly (PROTOCOL.certkeys: nonce, public key,
 * serial, type = user, key id, principals, validity, critical options,
 * extensions, reserved, signature key, signature, nothing after), and the
 * signature checked with the signature key (signature_ok; sshd checked it
 * too, but the PAM environment may have been written by someone else).
 * Parsing proves nothing by
 * itself: a certificate is an identity only when tu_decide_ssh_cert_trusted
 * says so.  -ENOENT (no certificate line), -EBADMSG (malformed: truncated,
 * not base64, bad lengths, not a user certificate, bad key id, trailing
 * bytes), -EMSGSIZE (SSH_AUTH_INFO_0 over 64 KiB), -ENOMEM.  *ret is written
 * only on success; reterr says what and where.
 */
#define TU_SSH_CERT_CA_KEY_MAX 4096

struct tu_ssh_cert {
	char key_id[256];
	bool mfa_verified;             /* "mfa-verified" */
	bool device_verified;          /* the three teleport-device-* extensions */
	uint64_t serial;
	uint64_t valid_after;          /* seconds since the epoch, as in the certificate */
	uint64_t valid_before;         /* exclusive */
	uint8_t ca_key[TU_SSH_CERT_CA_KEY_MAX]; /* the signature key (the CA), wire format */
	size_t ca_key_len;
	bool signature_ok;             /* the signature verifies with ca_key (ed25519, ECDSA
	                                  P-256/384/521, RSA with SHA-2; anything else: false) */
	bool sshd_verified;            /* signature_ok on sshd's word (TU_SSH_CERT_SSHD_VERIFIED) */
	/* The values Teleport's ComputeLockTargets turns into lock targets: "mfa-verified"
	 * (the MFA device, target MFADevice) and "teleport-device-id" (target Device); ""
	 * when absent.  ids_unreadable: one of them is present but too long or holds a NUL
	 * byte, so a lock on it cannot be told apart (every MFADevice/Device lock applies). */
	char mfa_device[256];
	char device_id[256];
	bool ids_unreadable;
};
int tu_decide_ssh_cert(const char *auth_info, struct tu_ssh_cert *ret, struct tu_err *reterr);

/*
 * tu_decide_ssh_cert with flags:
 *   TU_SSH_CERT_NO_VERIFY: the signature is not looked at (signature_ok false): for readers
 *     that never trust the certificate (lock targets, the owner candidates, tsh profiles);
 *     no OpenSSL.
 *   TU_SSH_CERT_SSHD_VERIFIED: sshd verified it (AuthorizedPrincipalsCommand's %k, see
 *     struct tu_login_req): signature_ok and sshd_verified true, no OpenSSL.
 * Without either the signature is checked with OpenSSL (the crypto module, crypto.h): a
 * module that cannot be loaded is an error (-EIO, reterr names the file), never "valid".
 */
enum {
	TU_SSH_CERT_NO_VERIFY = 1 << 0,
	TU_SSH_CERT_SSHD_VERIFIED = 1 << 1,
};
int tu_decide_ssh_cert_parse(const char *auth_info, unsigned flags, struct tu_ssh_cert *ret, struct tu_err *reterr);

/*
 * Whether c is a Teleport identity: its signature key equals (wire-format
 * blob) one of Teleport's user CA keys in ca, the signature verifies with
 * it (checked here: this defeats a forged SSH_AUTH_INFO_0 that names the
 * public CA key; or, for sshd's %k only, by sshd: sshd_verified), and now_usec is within its validity window.  A certificate from any other CA proves nothing: not its
 * key id, not its mfa-verified or teleport-device-* extensions.
 * 0 yes; -ENOKEY no user CA known (never fetched, or no keys); -EKEYREJECTED
 * signed by another CA; -EKEYEXPIRED outside its validity; -ENOMEM.
 */
int tu_decide_ssh_cert_trusted(const struct tu_ssh_cert *c, const struct tu_user_ca *ca, int64_t now_usec,
			       struct tu_err *reterr);

/*
 * tu_decide_ssh_cert + tu_decide_ssh_cert_trusted: the key id of a Teleport
 * certificate into ret (size >= 256 recommended), errors of both.
 */
int tu_decide_ssh_cert_key_id(const char *auth_info, const struct tu_user_ca *ca, int64_t now_usec, char *ret,
			      size_t size, struct tu_err *reterr);

/*
 * Whether the lock target value t (ServerID or the legacy Node) names host h:
 * its id, or Teleport's HostFQDN "<id>.<cluster>" (the host certificate's CN;
 * ComputeLockTargets adds both).  An id configured in the FQDN form counts by
 * its bare part too.  When the cluster is not known here, "<id>.<anything>"
 * counts: a host id is a UUID, so that form can only mean this host (fail
 * closed).
 */
bool tu_decide_lock_names_host(const char *t, const struct tu_host *h);

/*
 * The decision for req on h from dataset d at now_usec (SPEC §5): who
 * (explicit_user, else TELEPORT_USERNAME / certificate key id when trusted,
 * else the owner), user state, locks, then RBAC.  *ret always says why.
 * Errors only for -EINVAL (no login) and -ENOMEM.
 */
int tu_decide_pure(const struct tu_dataset *d, const struct tu_host *h, const struct tu_decide_opts *o,
		   const struct tu_login_req *req, int64_t now_usec, struct tu_verdict *ret, struct tu_err *reterr);

/*
 * The watch-fed decision (issue 13 item 6) from the private state in conf's cache.dir, of any
 * age: first only the users req names (the login, an explicit user, a trusted
 * TELEPORT_USERNAME, an SSH certificate's key id) with their roles, every lock, the auth
 * preference and the user CA, read through the state file's key index
 * (tu_cache_load_state_named); when the answer needs other users (owners by trait or by
 * role, a shared login) or the file has no index, every user record is filtered
 * (tu_cache_load_state_filtered).  Either way the verdict is tu_decide_pure's on the whole
 * file (opts as given; ret->offline set).  *ret_indexed (may be NULL): the index alone
 * answered.  Errors: -ENODATA (the state cannot be used: missing, refused, corrupt; the
 * reason in reterr; the caller asks Auth), -ENOMEM, -EINVAL (no login).
 */
int tu_decide_from_state(const struct tu_conf *conf, const struct tu_host *h, const struct tu_decide_opts *o,
			 const struct tu_login_req *req, int64_t now_usec, struct tu_verdict *ret, bool *ret_indexed,
			 struct tu_err *reterr);

/* offline_only: do not contact Auth (check --offline). */
int tu_decide(struct tu_ctx *ctx, const struct tu_login_req *req, int64_t now_usec, bool offline_only,
	      struct tu_verdict *ret, struct tu_err *reterr);
