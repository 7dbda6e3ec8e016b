/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dial/find.c - discovery from a Proxy address alone: GET /webapi/find
 * (PROXY.md §5) and the few fields that pick the path (TLS routing on?
 * the tunnel address; the cluster name).  Layer: libcore, in the transport
 * module (libcurl for the HTTPS GET, through h2-curl.h's shared set-up); the
 * answer is read by find-parse.c.
 */
#include "dial.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "conf.h"
#include "err.h"
#include "h2-curl.h"
#include "parse.h"
#include "resolve.h"
#include "transport.h"

#define FIND_MAX_BODY  (64u * 1024u)

/* ---- the HTTPS GET ------------------------------------------------------- */

struct body {
	char *buf;
	size_t len;
	bool over;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;

	if (b->len + n > FIND_MAX_BODY) {
		b->over = true;
		return CURL_WRITEFUNC_ERROR;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	return n;
}

int tu_dial_find(const struct tu_conf *conf, uint64_t deadline_usec, struct tu_dial_memo *ret,
		 struct tu_err *reterr)
{
	char what[TU_DIAL_WHAT_MAX], url[TU_DIAL_WHAT_MAX + 64], entry[TU_RESOLVE_MAX_NAME + 16 + TU_RESOLVE_MAX_ADDRS * 50];
	char addrs[TU_RESOLVE_MAX_ADDRS * 50], errbuf[CURL_ERROR_SIZE] = "", d[CURL_ERROR_SIZE];
	struct tu_resolve_result res;
	struct body b = {0};
	struct curl_slist *resolve = NULL;
	CURLM *multi = NULL;
	CURL *c = NULL;
	CURLcode rc = CURLE_OK;
	long status = 0;
	int r;

	if (!conf->proxy.host)
		return tu_err_set(reterr, -EINVAL, "auth.proxy is not set");
	const char *host = conf->proxy.host;
	uint16_t port = conf->proxy.port ? conf->proxy.port : TU_DEFAULT_PROXY_PORT;
	bool v6 = strchr(host, ':') != NULL;
	snprintf(what, sizeof(what), v6 ? "[%s]:%u" : "%s:%u", host, port);
	r = tu_h2_curl_init(reterr);
	if (r < 0)
		return r;
	uint64_t now = tu_transport_now_usec();
	if (now >= deadline_usec)
		return tu_err_set(reterr, -ETIMEDOUT, "Proxy %s: no time left to ask /webapi/find",
				  what);
	r = tu_resolve(host, deadline_usec, NULL, &res, reterr);
	if (r < 0) {
		tu_err_prefix(reterr, "Proxy %s", what);
		return r;
	}
	if (tu_resolve_format_list(&res, addrs, sizeof(addrs)) < 0)
		return tu_err_set(reterr, -EIO, "cannot format the addresses of %s", what);
	/* An IPv6 literal cannot be a CURLOPT_RESOLVE name: a private stand-in then. */
	const char *name = v6 ? "proxy-address.invalid" : host;
	snprintf(entry, sizeof(entry), "%s:%u:%s", name, port, addrs);
	snprintf(url, sizeof(url), "https://%s:%u/webapi/find", name, port);

	b.buf = malloc(FIND_MAX_BODY);
	resolve = curl_slist_append(NULL, entry);
	c = curl_easy_init();
	multi = tu_h2_multi_new();
	if (!b.buf || !resolve || !c || !multi) {
		r = tu_err_set(reterr, -ENOMEM, "out of memory");
		goto out;
	}
	uint64_t left = deadline_usec - tu_transport_now_usec();
#define SET(opt, val)                                       \
	do {                                                \
		if (rc == CURLE_OK)                         \
			rc = curl_easy_setopt(c, opt, val); \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (conf->proxy_ca) {
		SET(CURLOPT_CAINFO, conf->proxy_ca);
		SET(CURLOPT_CAPATH, NULL);
	}
	SET(CURLOPT_RESOLVE, resolve);
	SET(CURLOPT_TIMEOUT_MS, (long) ((left + 999) / 1000));
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long) ((left + 999) / 1000));
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, &b);
	SET(CURLOPT_OPENSOCKETFUNCTION, tu_h2_open_socket);
	SET(CURLOPT_RESOLVER_START_FUNCTION, tu_h2_refuse_resolver);
	SET(CURLOPT_HTTPHEADER, NULL);
	SET(CURLOPT_USERAGENT, "teleport-unix/" PACKAGE_VERSION);
#undef SET
	if (rc != CURLE_OK) {
		r = tu_err_set(reterr, -EIO, "cannot configure libcurl: %s", curl_easy_strerror(rc));
		goto out;
	}
	rc = tu_h2_perform(multi, c, NULL);
	tu_sanitize(errbuf[0] ? errbuf : curl_easy_strerror(rc), d, sizeof(d));
	(void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_OPERATION_TIMEDOUT:
		r = tu_err_set(reterr, -ETIMEDOUT, "Proxy %s: /webapi/find timed out: %s", what, d);
		goto out;
	case CURLE_COULDNT_CONNECT: {
		long os_errno = 0;
		(void) curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ECONNREFUSED)
			r = tu_err_set(reterr, -ECONNREFUSED,
				       "cannot connect to the Proxy %s: connection refused", what);
		else if (os_errno == ETIMEDOUT)
			r = tu_err_set(reterr, -ETIMEDOUT, "cannot connect to the Proxy %s: timed out",
				       what);
		else
			r = tu_err_set(reterr, -EHOSTUNREACH, "cannot connect to the Proxy %s: %s",
				       what, d);
		goto out;
	}
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		r = tu_err_set(reterr, -EPROTO,
			       "Proxy %s: TLS failed (its web certificate is checked against %s): %s",
			       what, conf->proxy_ca ? conf->proxy_ca : "the system's trusted roots",
			       d);
		goto out;
	default:
		r = tu_err_set(reterr, b.over ? -EMSGSIZE : -EPROTO, "Proxy %s: /webapi/find failed: %s",
			       what, b.over ? "answer over 64 KiB" : d);
		goto out;
	}
	if (status != 200) {
		r = tu_err_set(reterr, -EPROTO,
			       "Proxy %s: /webapi/find answered HTTP %ld: is this a Teleport Proxy's web "
			       "address?",
			       what, status);
		goto out;
	}
	struct tu_dial_memo m = *ret;
	r = tu_dial_find_parse(b.buf, b.len, port, &m, reterr);
	if (r < 0) {
		tu_err_prefix(reterr, "Proxy %s: /webapi/find", what);
		goto out;
	}
	snprintf(m.proxy, sizeof(m.proxy), "%s", what);
	m.valid = true;
	*ret = m;
	r = 0;
out:
	if (c) {
		if (multi)
			(void) curl_multi_remove_handle(multi, c);
		curl_easy_cleanup(c);
	}
	if (multi)
		curl_multi_cleanup(multi);
	curl_slist_free_all(resolve);
	free(b.buf);
	return r;
}
