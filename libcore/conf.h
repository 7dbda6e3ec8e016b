/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.h - /etc/teleport-unix.yaml (SPEC §3), loaded with libyaml's event
 * API into struct tu_conf.  Layer: libcore.
 *
 * Strict schema: unknown keys, wrong types, bad values and duplicate keys are
 * errors naming the key path and the line (tu_err.key / .line / .file).
 * Every key, its default and its accepted values are documented in
 * etc/teleport-unix.yaml.  Decisions beyond SPEC §3 (all enforced at load):
 *  - plain YAML only: anchors, aliases, tags and multiple documents are
 *    refused; nesting depth <= 8, <= 10000 nodes, scalars <= 4096 bytes,
 *    file <= 1 MiB; a key with no value (or ~/null) is an error, not "default";
 *  - booleans: true/false (True/TRUE/False/FALSE), never yes/no/on/off;
 *  - durations: tu_parse_duration() (us ms s m h d, combinable, "0");
 *    auth.timeouts.* 1ms..10m; cache.refresh_after 0..30d and not longer than
 *    cache.offline_max_age (1s..3650d); cache.negative_ttl 0..1d;
 *  - auth.max_message_size: bytes or K/KiB/M/MiB/G/GiB, 1KiB..1GiB;
 *  - every path absolute; accounts.home must contain {login} (the only
 *    placeholder); home and shell must not contain ':' (passwd field);
 *  - accounts.uid_range: min >= 1000, min < max <= 2147483647, and the range
 *    must not contain 65534 or 65535;
 *  - host.labels keys use Teleport's alphabet [A-Za-z0-9/._:*-], <= 256 labels;
 *  - host.name, host.id, auth.cluster_name: non-empty, no spaces or control
 *    characters, <= 255 bytes; auth.server_name: a DNS name.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "model.h"

struct tu_err;

#define TU_CONF_DEFAULT_PATH  TU_SYSCONFDIR "/teleport-unix.yaml"
#define TU_DEFAULT_SERVER_NAME "teleport.cluster.local"
#define TU_DEFAULT_AUTH_PORT  3025
#define TU_MAX_AUTH_ADDRESSES 16

enum tu_accounts_source {
	TU_SOURCE_HOST_USER_CREATION = 0,
	TU_SOURCE_ALL_LOGINS = 1,
};

enum tu_pam_offline {
	TU_OFFLINE_CACHED = 0,
	TU_OFFLINE_DENY = 1,
};

enum tu_conn_upgrade {
	TU_CONN_UPGRADE_AUTO = 0, /* a test dial decides (dial/ws.h), the answer kept in cache.dir */
	TU_CONN_UPGRADE_ALWAYS = 1,
	TU_CONN_UPGRADE_NEVER = 2,
};

struct tu_addr {
	char *host;     /* without brackets for IPv6 */
	uint16_t port;
};

struct tu_conf {
	char *path;                    /* the file this came from */

	/* auth */
	struct tu_addr addresses[TU_MAX_AUTH_ADDRESSES];
	size_t n_addresses;            /* 0 only with a proxy or a tsh profile */
	struct tu_addr proxy;          /* auth.proxy; host NULL = none (a tsh profile fills it) */
	char *server_name;             /* default teleport.cluster.local */
	char *cluster_name;            /* NULL = not checked */
	char *cert_path, *key_path, *ca_path; /* key_pair; all NULL when identity_file */
	char *identity_file;           /* NULL when key_pair */
	char *profile_dir;             /* auth.credentials.profile (.dir): a ~/.tsh-style directory */
	char *profile_name;            /* profile.name; NULL = the dir's current-profile */
	uint64_t connect_timeout_usec; /* default 1s */
	uint64_t request_timeout_usec; /* default 3s */
	uint64_t max_message_size;     /* auth.max_message_size, default 64 MiB */
	/* the Proxy's WebSocket upgrade (dial/ws.c) */
	enum tu_conn_upgrade proxy_conn_upgrade; /* auth.proxy_conn_upgrade, default auto */
	char *proxy_ca;                /* auth.proxy_ca: PEM CAs for the Proxy's web certificate;
	                                  NULL = the system roots */

	/* host */
	char *host_name;               /* default gethostname(); never NULL after a successful load */
	char *host_id;                 /* NULL = from the credential's certificate */
	struct tu_labels host_labels;  /* each value list has exactly one value */

	/* accounts */
	enum tu_accounts_source source;
	uint32_t uid_min, uid_max;     /* default 200000..899999999 */
	uint32_t trait_id_min, trait_id_max; /* accounts.trait_id_range, default 1000..2147483647 */
	char *home_template;           /* default /home/{login} */
	char *shell;                   /* default /bin/bash */

	/* cache */
	char *cache_dir;               /* default $(localstatedir)/cache/teleport-unix (NSS looks there) */
	bool cache_read_only;          /* tu_ctx_new_profile: a person's tsh login never writes it */
	uint64_t refresh_after_usec;   /* default 5m */
	uint64_t offline_max_age_usec; /* default 72h */
	uint64_t negative_ttl_usec;    /* default 1m */

	/* pam */
	enum tu_pam_offline pam_offline;
	bool trust_teleport_env;
	bool trust_ssh_cert;
};

enum {
	TU_CONF_RELAXED_PERMS = 1 << 0, /* skip the owner/mode check (tests only; CLI --insecure-perms) */
};

/*
 * Loads and validates path.  flags: TU_CONF_*.  On success *ret is a new
 * object (free with tu_conf_free); *ret is untouched on failure.  The file is
 * read with tu_fs_read_file (O_NOFOLLOW, regular file, <= 1 MiB, root-owned
 * and not group/other-writable unless TU_CONF_RELAXED_PERMS).
 * Errors: -ENOENT (missing), -EACCES/-EPERM (owner or mode refused; the
 * message names the path), -ELOOP (symlink), -EINVAL (not a regular file),
 * -EMSGSIZE (over 1 MiB), -EBADMSG (syntax or schema: tu_err.file = path,
 * .line 1-based, .key e.g. "auth.timeouts.connect" or "auth.addresses[1]"),
 * -ENOMEM.  Thread-safe (no shared state).
 */
int tu_conf_load(const char *path, unsigned flags, struct tu_conf **ret, struct tu_err *reterr);

/*
 * Parses YAML text already in memory (len bytes, need not be NUL-terminated;
 * name, which may be NULL for "<config>", goes into tu_err.file).  Result has
 * path == NULL.  Errors as tu_conf_load minus the file ones; -EMSGSIZE when
 * len > 1 MiB.
 */
int tu_conf_parse(const char *text, size_t len, const char *name, struct tu_conf **ret, struct tu_err *reterr);

/*
 * A configuration with every default and no credential or address (the
 * CLI's --profile with no configuration file; the caller fills in
 * profile_dir).  host_name from gethostname().  -ENOMEM, or gethostname's
 * errno.
 */
int tu_conf_new_default(struct tu_conf **ret, struct tu_err *reterr);

/* Frees; accepts NULL; returns NULL. */
struct tu_conf *tu_conf_free(struct tu_conf *c);

/*
 * The config path to use: explicit (CLI -c / PAM config=) if non-NULL, else
 * secure_getenv("TELEPORT_UNIX_CONFIG"), else TU_CONF_DEFAULT_PATH. Borrowed.
 */
const char *tu_conf_path(const char *explicit_path);
