#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tools/fuzz.sh - libFuzzer campaign over every tests/fuzz/fuzz-*.c.
#
# Builds each target with clang -fsanitize=fuzzer,address,undefined against
# the libcore sources and the protoc-c output of a configured build dir, runs
# each one for SECONDS (sequentially: the machine is shared), prints one line
# per fuzzer (execs, exec/s, edge coverage, features, corpus size, findings),
# and copies every crash/leak/timeout/oom input into
# tests/fuzz/corpus/<target>/ so it becomes a regression test replayed by
# `make check` (tests/fuzz/replay.sh).
#
# Usage: tools/fuzz.sh [-m] [-j JOBS] [SECONDS] [TARGET...]
#   SECONDS   per fuzzer (default 60); 0 = build only
#   TARGET    conf, dns, find, grpc, labels, model, parse, pem, profile, snapshot,
#             template
#             (default: every tests/fuzz/fuzz-*.c)
#   -m        afterwards merge (libFuzzer -merge=1) the new coverage-increasing
#             inputs into the committed corpus (off by default: review first)
#   -j JOBS   libFuzzer -fork=JOBS workers per fuzzer (default 1: in-process)
# Environment:
#   FUZZ_BUILD   work dir (default: <src>/build-fuzz): config.h, generated
#                proto files, objects, fuzzer binaries, work corpora,
#                artifacts, logs, and the summary file fuzz-summary.txt
#   CC_FUZZ      clang binary (default: clang)
#   FUZZ_ARGS    extra libFuzzer arguments (e.g. -max_len=65536)
#
# Exit: 0 when every fuzzer ran without a finding, 1 on a finding, 2 on a
# build problem.  The committed corpus is read-only to the fuzzers: new
# inputs go to FUZZ_BUILD/work/<target>.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${FUZZ_BUILD:-$ROOT/build-fuzz}
CC_FUZZ=${CC_FUZZ:-clang}
MERGE=0 FORK=1

while getopts "mj:h" opt; do
	case $opt in
	m) MERGE=1 ;;
	j) FORK=$OPTARG ;;
	*) sed -n '4,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
SECS=60
if [[ ${1:-} =~ ^[0-9]+$ ]]; then SECS=$1; shift; fi

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'fuzz.sh: %s\n' "$*" >&2; exit 2; }

command -v "$CC_FUZZ" >/dev/null || die "$CC_FUZZ not found (Debian: clang, libclang-rt-14-dev)"

targets=()
if (($#)); then
	for t in "$@"; do
		[ -f "$ROOT/tests/fuzz/fuzz-$t.c" ] || die "no tests/fuzz/fuzz-$t.c"
		targets+=("$t")
	done
else
	for f in "$ROOT"/tests/fuzz/fuzz-*.c; do
		t=${f##*/fuzz-}; t=${t%.c}
		[ "$t" = main ] || targets+=("$t")
	done
fi

# 1. A configured build dir for config.h and the protoc-c output.
mkdir -p "$B"
if [ ! -f "$B/config.h" ] || [ ! -f "$B/Makefile" ]; then
	if [ ! -x "$ROOT/configure" ]; then
		(cd "$ROOT" && autoreconf -fi >/dev/null 2>&1) || die "autoreconf failed"
	fi
	log "configure ($B)"
	(cd "$B" && CC=$CC_FUZZ "$ROOT/configure" -q >/dev/null) || die "configure failed in $B"
fi
B=$(cd "$B" && pwd)
cd "$B"   # AM_CPPFLAGS names $(top_builddir) as "."
protos=(proto/wrappers.pb-c.c proto/types.pb-c.c proto/authservice.pb-c.c proto/users_service.pb-c.c proto/trust_service.pb-c.c)
make -C "$B" -s "${protos[@]}" "${protos[@]/%.c/.h}" >/dev/null || die "protoc-c generation failed"

# 2. The core compiled once with coverage instrumentation (fuzzer-no-link),
#    archived; rebuilt per object only when its source or a header changed.
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# The preprocessor flags come from the Makefile itself (config.h, include
# dirs, compiled-in paths), so this script never drifts from the build.
cppflags=$(printf 'tu-print-cppflags:\n\t@echo $(AM_CPPFLAGS)\n' |
	make -s -C "$B" -f Makefile -f - tu-print-cppflags) || die "cannot read AM_CPPFLAGS from $B/Makefile"
CFLAGS_F="-g -O1 -std=gnu17 $SAN $cppflags -I$ROOT/tests/unit"
PKGS="libcurl libssl libcrypto yaml-0.1 libprotobuf-c"
CFLAGS_F="$CFLAGS_F $(pkg-config --cflags $PKGS)"
LIBS_F="$(pkg-config --libs $PKGS) -lpthread -ldl"
O=$B/fuzz-obj
mkdir -p "$O" "$B/fuzz-bin" "$B/work" "$B/artifacts" "$B/logs"
newest_hdr=$(find "$ROOT/libcore" "$B/proto" "$B/config.h" -name '*.h' -printf '%T@\n' | sort -n | tail -1)
objs=()
for src in "$ROOT"/libcore/base/*.c "$ROOT"/libcore/*.c "$ROOT"/libcore/dial/*.c "$B"/proto/*.pb-c.c; do
	obj=$O/$(basename "$(dirname "$src")")-$(basename "${src%.c}").o
	objs+=("$obj")
	if [ -f "$obj" ] && [ "$obj" -nt "$src" ] &&
	   [ "$(stat -c %Y "$obj")" -ge "${newest_hdr%.*}" ]; then
		continue
	fi
	$CC_FUZZ $CFLAGS_F -fsanitize=fuzzer-no-link -c "$src" -o "$obj" 2>"$obj.log" ||
		{ cat "$obj.log" >&2; die "compiling $src failed"; }
done
rm -f "$O/libcore-fuzz.a"
ar rcs "$O/libcore-fuzz.a" "${objs[@]}"

for t in "${targets[@]}"; do
	bin=$B/fuzz-bin/fuzz-$t
	# -u: the crypto module's code (libcore/crypto.c) is linked in; the core's loader then
	# uses it instead of dlopen()ing teleport-unix-crypto.so (crypto-load.c).
	$CC_FUZZ $CFLAGS_F -fsanitize=fuzzer -Wl,-u,tu_crypto_module_v1 "$ROOT/tests/fuzz/fuzz-$t.c" "$O/libcore-fuzz.a" $LIBS_F -o "$bin" \
		2>"$B/logs/build-$t.log" || { cat "$B/logs/build-$t.log" >&2; die "linking fuzz-$t failed"; }
done
log "built ${#targets[@]} fuzzers in $B/fuzz-bin"
[ "$SECS" -gt 0 ] || exit 0

# 3. The campaign.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=$B/fuzz-summary.txt
found=0
{
	printf '# tools/fuzz.sh campaign %s, %ss per fuzzer, %s, %s\n' "$(date -u +%FT%TZ)" "$SECS" \
		"$($CC_FUZZ --version | head -1)" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
	printf '%-10s %8s %12s %9s %7s %7s %7s %s\n' target seconds execs exec/s cov ft corpus findings
} | tee "$summary"
for t in "${targets[@]}"; do
	seed=$ROOT/tests/fuzz/corpus/$t
	work=$B/work/$t art=$B/artifacts/$t
	mkdir -p "$work" "$art" "$seed"
	flog=$B/logs/run-$t.log
	args=(-max_total_time="$SECS" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
	      -artifact_prefix="$art/" -close_fd_mask=1)
	[ "$FORK" -gt 1 ] && args+=(-fork="$FORK" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
	before=$(find "$art" -maxdepth 1 -type f | wc -l)
	t0=$(date +%s)
	# shellcheck disable=SC2086
	"$B/fuzz-bin/fuzz-$t" "${args[@]}" ${FUZZ_ARGS:-} "$work" "$seed" >"$flog" 2>&1 || true
	el=$(($(date +%s) - t0))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$flog" | tail -1)
	# the fork mode prints no final stats: take the last status line's #N
	[ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$flog" | tail -1 | tr -d '#')
	status=$(grep -E '^#[0-9]+.*cov: ' "$flog" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' <<<"$status" | grep -oE '[0-9]+' || echo '?')
	ft=$(grep -oE 'ft: [0-9]+' <<<"$status" | grep -oE '[0-9]+' || echo '?')
	corp=$(grep -oE 'corp: [0-9]+' <<<"$status" | grep -oE '[0-9]+' || echo '?')
	after=$(find "$art" -maxdepth 1 -type f | wc -l)
	nfind=$((after - before))
	if [ "$nfind" -gt 0 ] || grep -qE '^==[0-9]+==ERROR|runtime error:|^SUMMARY: ' "$flog"; then
		found=1
		for f in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*; do
			[ -f "$f" ] || continue
			cp -n "$f" "$seed/" && log "$t: kept ${f##*/} in tests/fuzz/corpus/$t/ (add it to git, fix the bug)"
		done
		[ "$nfind" -gt 0 ] || nfind="see $flog"
	fi
	execs=${execs:-0}
	printf '%-10s %8s %12s %9s %7s %7s %7s %s\n' "$t" "$el" "$execs" "$((execs / (el > 0 ? el : 1)))" \
		"$cov" "$ft" "$corp" "$nfind" | tee -a "$summary"
	if [ "$MERGE" -eq 1 ]; then
		"$B/fuzz-bin/fuzz-$t" -merge=1 -close_fd_mask=1 "$seed" "$work" >"$B/logs/merge-$t.log" 2>&1 ||
			log "$t: merge failed (see $B/logs/merge-$t.log)"
	fi
done
log "summary in $summary; logs in $B/logs"
exit $found
