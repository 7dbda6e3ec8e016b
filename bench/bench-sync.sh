#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench-sync.sh - builds and runs bench/bench-sync.c against a build tree's
# libteleport-unix: sync cost (mapping + cache write) and peak RSS for
# 100k users and 1k roles.  Usage: bench/bench-sync.sh BUILDDIR [USERS [ROLES]]
# (called by `make bench`; BUILDDIR defaults to the current directory).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=$(cd "${1:-.}" && pwd)
shift || true
out="$build/bench/bench-sync"
mkdir -p "$build/bench"
${CC:-cc} -std=gnu17 -O2 -Wall -Wextra -include "$build/config.h" \
	-I "$top/libcore" -I "$top/libcore/base" -I "$top/include" -I "$build/proto" \
	-o "$out" "$here/bench-sync.c" \
	-L "$build/.libs" -lteleport-unix -Wl,-rpath,"$build/.libs"
exec "$out" "$@"
