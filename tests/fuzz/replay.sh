#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Replays every fuzz corpus (tests/fuzz/corpus/<target>/) through its
# replay-<target> program; any crash or sanitizer report fails the test.
set -eu
: "${top_srcdir:?}" "${top_builddir:?}"
rc=0
for bin in "$top_builddir"/tests/fuzz/replay-*; do
	[ -x "$bin" ] || continue
	t=${bin##*/replay-}
	corpus=$top_srcdir/tests/fuzz/corpus/$t
	if [ ! -d "$corpus" ]; then
		echo "no corpus for $t"; rc=1; continue
	fi
	"$bin" "$corpus" || { echo "FAIL: corpus replay of $t"; rc=1; }
done
exit $rc
