/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secure-probe.c - helper of test-host-safety: run once as an ordinary
 * program (the control) and once as a setuid-nobody copy (AT_SECURE).
 *   secure-probe NSS_MODULE CORE_LIB [expect-secure]
 * Looks up 'forged' through the NSS module (dlopen, as glibc) and asks the
 * core which config path it would load (tu_conf_path(NULL)).  The caller
 * points TELEPORT_UNIX_CACHE_DIR at a forged snapshot and
 * TELEPORT_UNIX_CONFIG at a forged config.
 * Exit: 10 both variables were honoured (ordinary program); 0 both ignored
 * under AT_SECURE; 1 anything else (printed); 77 expect-secure without
 * AT_SECURE (nosuid mount); 2 setup problem.
 */
#include <dlfcn.h>
#include <nss.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

typedef enum nss_status (*getpwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef const char *(*conf_path_fn)(const char *);

int main(int argc, char **argv)
{
	bool secure = getauxval(AT_SECURE) != 0, served, conf_env;
	char buf[1024];
	struct passwd pw;
	int err = 0;
	void *nss, *core;
	getpwnam_fn getpwnam_r;
	conf_path_fn conf_path;
	const char *env_conf, *path;

	if (argc < 3)
		return 2;
	if (argc > 3 && strcmp(argv[3], "expect-secure") == 0 && !secure)
		return 77;
	nss = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	core = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
	if (!nss || !core) {
		fprintf(stderr, "secure-probe: %s\n", dlerror());
		return 2;
	}
	getpwnam_r = (getpwnam_fn) dlsym(nss, "_nss_teleport_getpwnam_r");
	conf_path = (conf_path_fn) dlsym(core, "tu_conf_path");
	if (!getpwnam_r || !conf_path)
		return 2;
	served = getpwnam_r("forged", &pw, buf, sizeof(buf), &err) == NSS_STATUS_SUCCESS;
	env_conf = getenv("TELEPORT_UNIX_CONFIG");
	path = conf_path(NULL);
	conf_env = path && env_conf && strcmp(path, env_conf) == 0;
	printf("AT_SECURE=%d forged-served=%d config=%s\n", secure, served, path ? path : "(null)");
	if (!secure)
		return served && conf_env ? 10 : 1;
	return !served && !conf_env ? 0 : 1;
}
