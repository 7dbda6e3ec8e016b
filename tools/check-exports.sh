#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# check-exports.sh - each shared object exports exactly its allow-list
# (STYLE §2.10): _nss_teleport_* from the NSS module, pam_sm_* from the PAM
# module, tu_* (version node TU_0) from libteleport-unix.so.0, tu_h2_module_new
# from the online transport teleport-unix-h2.so, tu_crypto_module_v1 from the
# OpenSSL module teleport-unix-crypto.so.  The NSS
# module must exist; the others are checked when built.
# Usage: check-exports.sh [BUILDDIR]   (default: $top_builddir, else .)
set -u
builddir=${1:-${top_builddir:-.}}
command -v nm >/dev/null 2>&1 || { echo "SKIP: nm not found"; exit 77; }
bad=0

# check FILE REGEX [required]
check() {
	file=$1 allow=$2 required=${3:-}
	if [ ! -f "$file" ]; then
		if [ -n "$required" ]; then echo "FAIL: $file not built"; bad=1; else echo "skip: $file not built"; fi
		return
	fi
	syms=$(nm -D --defined-only "$file" | awk '$2 != "A" { print $3 }' | sed 's/@.*//')
	[ -n "$syms" ] || { echo "FAIL: $file exports nothing"; bad=1; return; }
	extra=$(printf '%s\n' "$syms" | grep -Ev "$allow" || true)
	if [ -n "$extra" ]; then
		echo "FAIL: $file exports symbols outside $allow:"
		printf '  %s\n' $extra
		bad=1
	else
		echo "ok: $file ($(printf '%s\n' "$syms" | wc -l) symbols)"
	fi
}

check "$builddir/.libs/libnss_teleport.so.2" '^_nss_teleport_' required
check "$builddir/.libs/pam_teleport.so" '^pam_sm_'
check "$builddir/.libs/libteleport-unix.so.0" '^tu_'
check "$builddir/.libs/teleport-unix-h2.so" '^tu_h2_module_new$'
check "$builddir/.libs/teleport-unix-crypto.so" '^tu_crypto_module_v1$'
exit $bad
