#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tools/package.sh SRCDIR OUTDIR - builds the Debian packages (debian/) with
# `dpkg-buildpackage -us -uc -b` from a copy of the source tree, so the
# working tree is never touched (no in-tree autoreconf, no ../*.deb).
# The copy holds the files git knows (tracked, or new and not ignored), or
# without git the whole tree minus build directories.  Leaves OUTDIR/*.deb,
# OUTDIR/*.changes and OUTDIR/build.log; prints the .deb paths.
# Used by `./run package` and tests/integration/test_package.py.
set -euo pipefail

SRC=$(cd "${1:?usage: tools/package.sh SRCDIR OUTDIR}" && pwd)
OUT=${2:?usage: tools/package.sh SRCDIR OUTDIR}
JOBS=${TU_PACKAGE_JOBS:-$(nproc 2>/dev/null || echo 2)}

for tool in dpkg-buildpackage dh; do
	command -v "$tool" >/dev/null || { echo "package: $tool not found (Debian: dpkg-dev, debhelper)" >&2; exit 2; }
done
[ -f "$SRC/debian/control" ] || { echo "package: $SRC/debian/control not found" >&2; exit 2; }

version=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$OUT/src
tree=$work/teleport-unix-$version
rm -rf "$work"
mkdir -p "$tree"
rm -f "$OUT"/*.deb "$OUT"/*.changes "$OUT"/*.buildinfo

if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$SRC" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -e "$SRC/$f" ] && printf '%s\0' "$f"
		done |
		tar -C "$SRC" --null -T - -cf - | tar -C "$tree" -xf -
else
	# (build-aux/ is source: only the build trees ./run makes are left out)
	tar -C "$SRC" --exclude=./build --exclude=./build-asan --exclude='./_build*' --exclude=./.git -cf - . |
		tar -C "$tree" -xf -
fi
# Generated files of an in-tree build would confuse dh_autoreconf's clean-up.
rm -rf "$tree/autom4te.cache"

log=$OUT/build.log
if ! (cd "$tree" && DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -us -uc -b -j"$JOBS") >"$log" 2>&1; then
	tail -40 "$log" >&2
	echo "package: dpkg-buildpackage failed (whole log: $log)" >&2
	exit 2
fi
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$OUT"/
rm -rf "$work"
ls -1 "$OUT"/*.deb
