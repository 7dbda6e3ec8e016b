#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# check-needed.sh - libnss_teleport.so.2 is loaded into every process that
# resolves a user: it may depend on libc only (STYLE §2.3).  Fails when
# `readelf -d` lists any NEEDED entry besides libc, libpthread or ld.so.
# Also (issue 10): the core libteleport-unix.so.0, the CLI and pam_teleport.so
# never need libcurl, libssl or nghttp2: the online transport is the module
# teleport-unix-h2.so, loaded only once Auth took a TCP connection, so an
# offline decision (sshd's AuthorizedPrincipalsCommand) does not load them.
# Nor libcrypto: X.509, private keys and SSH signatures are the module
# teleport-unix-crypto.so, loaded on first use (libcore/crypto.h).
# Usage: check-needed.sh [BUILDDIR]   (default: $top_builddir, else .)
set -u
builddir=${1:-${top_builddir:-.}}
so="$builddir/.libs/libnss_teleport.so.2"
command -v readelf >/dev/null 2>&1 || { echo "SKIP: readelf not found"; exit 77; }
[ -f "$so" ] || { echo "FAIL: $so not built"; exit 1; }

needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p')
# A build configured with --enable-sanitizers (tools/harden.sh) links the
# sanitizer runtimes into everything, the module included: allowed there only.
sanitized=
grep -q '^SAN_CFLAGS = .*-fsanitize' "$builddir/Makefile" 2>/dev/null && sanitized=1
bad=0
for lib in $needed; do
	case "$lib" in
	libc.so.*|libpthread.so.*|ld-linux*.so.*|ld64.so.*) echo "ok: $lib" ;;
	libasan.so.*|libubsan.so.*|liblsan.so.*|libtsan.so.*)
		if [ -n "$sanitized" ]; then echo "ok: $lib (sanitizer build)"
		else echo "FAIL: libnss_teleport.so.2 needs $lib (only libc is allowed)"; bad=1; fi ;;
	*) echo "FAIL: libnss_teleport.so.2 needs $lib (only libc is allowed)"; bad=1 ;;
	esac
done
[ -n "$needed" ] || { echo "FAIL: no NEEDED entries at all (not a dynamic library?)"; exit 1; }

for obj in "$builddir/.libs/libteleport-unix.so.0" "$builddir/.libs/teleport-unix" "$builddir/.libs/pam_teleport.so"; do
	[ -f "$obj" ] || { echo "skip: $obj not built"; continue; }
	deps=$(readelf -d "$obj" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p')
	online=$(echo "$deps" | grep -E '^lib(curl|ssl|nghttp2|gnutls)[.-]' || true)
	crypto=$(echo "$deps" | grep -E '^libcrypto[.-]' || true)
	if [ -n "$online" ]; then
		echo "FAIL: $obj needs $(echo $online) (the online stack belongs in teleport-unix-h2.so)"
		bad=1
	elif [ -n "$crypto" ]; then
		echo "FAIL: $obj needs $(echo $crypto) (OpenSSL belongs in teleport-unix-crypto.so)"
		bad=1
	else
		echo "ok: $obj loads no online stack and no libcrypto"
	fi
done
exit $bad
