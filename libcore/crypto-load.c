/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto-load.c - the core's side of the crypto module (crypto.h): loads
 * teleport-unix-crypto.so from the core's own directory (the rule of
 * h2-load.c: tu_core_module_path) the first time something needs OpenSSL,
 * and forwards the signature check (sshsig.h).  Layer: libcore (libc and
 * libdl only; no OpenSSL).
 *
 * A build that links the module's code into the program itself (the
 * fuzzers: tools/fuzz.sh links every libcore source statically) uses it
 * directly: tu_crypto_module_v1 is then defined, and only then (weak
 * reference).
 */
#include "crypto.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "err.h"
#include "h2.h"
#include "sshsig.h"

#pragma weak tu_crypto_module_v1

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const struct tu_crypto_ops *ops;
static char load_error[PATH_MAX + 300];

static void load_module(void)
{
	char path[PATH_MAX];
	tu_crypto_module_fn get;
	Dl_info di;
	void *h;

	if (tu_crypto_module_v1) { /* linked in (static builds) */
		ops = tu_crypto_module_v1();
		return;
	}
	tu_core_module_path(dladdr((void *) tu_crypto_get, &di) ? di.dli_fname : NULL, TU_CRYPTO_MODULE_FILE, path,
			    sizeof(path));
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror();
		snprintf(load_error, sizeof(load_error), "cannot load the crypto module: %s", why ? why : path);
		return;
	}
	*(void **) &get = dlsym(h, TU_CRYPTO_MODULE_SYMBOL);
	if (!get || !(ops = get())) {
		snprintf(load_error, sizeof(load_error), "cannot load the crypto module: %s has no %s", path,
			 TU_CRYPTO_MODULE_SYMBOL);
		ops = NULL;
		(void) dlclose(h);
	}
}

int tu_crypto_get(const struct tu_crypto_ops **ret, struct tu_err *reterr)
{
	(void) pthread_once(&load_once, load_module);
	if (!ops)
		return tu_err_set(reterr, -EIO, "%s", load_error);
	*ret = ops;
	return 0;
}

bool tu_crypto_loaded(void)
{
	return ops != NULL;
}

void tu_x509_info_done(struct tu_x509_info *x)
{
	if (!x)
		return;
	free(x->cn);
	free(x->cluster);
	x->cn = x->cluster = NULL;
}

int tu_sshsig_verify(const uint8_t *key, size_t klen, const uint8_t *sig, size_t slen, const uint8_t *data,
		     size_t dlen, struct tu_err *reterr)
{
	const struct tu_crypto_ops *o;
	int r = tu_crypto_get(&o, reterr);

	if (r < 0)
		return r;
	return o->sshsig_verify(key, klen, sig, slen, data, dlen) ? 1 : 0;
}
