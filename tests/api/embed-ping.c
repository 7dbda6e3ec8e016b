/* SPDX-License-Identifier: Apache-2.0 */
/*
 * embed-ping.c - a program that embeds libteleport-unix through its public
 * header only (include/teleport-unix/teleport-unix.h; built without the
 * project's internal include paths), as docs/embedding.md shows: it reads
 * the certificate, key and CA files itself into memory, builds the
 * credential from that PEM text, and pings Auth (and asks whether a user
 * exists).  tests/integration/test_embed.py runs it against the stand-in
 * Auth.
 *
 * Usage: embed-ping CERT KEY CA HOST[:PORT] [USER]
 * Prints "cluster=<name> version=<v> identity=<cn>" (and "user <U>: yes|no").
 * Exit 0 ok, 1 the user does not exist, 2 error ("embed-ping: <error>").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <teleport-unix/teleport-unix.h>
#include <time.h>

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rbe");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		return NULL;
	do {
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0 && len < (size_t) 4 << 20);
	fclose(f);
	*ret_len = len;
	return buf;
}

static int fail(const struct tu_err *e)
{
	char buf[1024];

	fprintf(stderr, "embed-ping: %s\n", tu_err_format(e, buf, sizeof(buf)));
	return 2;
}

int main(int argc, char **argv)
{
	struct tu_creds *creds = NULL;
	struct tu_conf *conf = NULL;
	struct tu_auth *auth = NULL;
	struct tu_err e;
	char cluster[256], version[64];
	size_t cl = 0, kl = 0, al = 0;
	struct timespec now;
	int ret = 2;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: embed-ping CERT KEY CA HOST[:PORT] [USER]\n");
		return 2;
	}
	char *cert = slurp(argv[1], &cl), *key = slurp(argv[2], &kl), *ca = slurp(argv[3], &al);
	if (!cert || !key || !ca) {
		fprintf(stderr, "embed-ping: cannot read %s\n",
			!cert  ? argv[1]
			: !key ? argv[2]
			       : argv[3]);
		goto out;
	}
	/* EMBED_PING_CLUSTER_BUF: a smaller cluster buffer (the tests' "does not fit") */
	const char *cb = getenv("EMBED_PING_CLUSTER_BUF");
	size_t cluster_size = cb ? strtoul(cb, NULL, 10) : sizeof(cluster);
	if (cluster_size > sizeof(cluster))
		cluster_size = sizeof(cluster);
	clock_gettime(CLOCK_REALTIME, &now);
	tu_err_clear(&e);
	if (tu_creds_parse_pem(cert, cl, key, kl, ca, al,
			       (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000, &creds,
			       &e) < 0) {
		ret = fail(&e);
		goto out;
	}
	/* the credential holds its own copy: the caller's key buffer can go now */
	memset(key, 0, kl);
	if (tu_conf_new_default(&conf, &e) < 0 || tu_conf_add_address(conf, argv[4], &e) < 0 ||
	    tu_conf_set_timeouts(conf, 1000000, 3000000, &e) < 0 ||
	    tu_auth_new(conf, creds, &auth, &e) < 0 ||
	    tu_auth_ping_info(auth, cluster, cluster_size, version, sizeof(version), &e) < 0) {
		ret = fail(&e);
		goto out;
	}
	printf("cluster=%s version=%s identity=%s\n", cluster, version, tu_creds_subject_cn(creds));
	ret = 0;
	if (argc == 6) {
		bool exists = false;
		if (tu_auth_user_exists(auth, argv[5], &exists, &e) < 0) {
			ret = fail(&e);
			goto out;
		}
		printf("user %s: %s\n", argv[5], exists ? "yes" : "no");
		ret = exists ? 0 : 1;
	}
out:
	tu_auth_free(auth);
	tu_conf_free(conf);
	tu_creds_free(creds);
	free(cert);
	free(key);
	free(ca);
	return ret;
}
