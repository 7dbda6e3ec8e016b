#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tools/harden.sh - the whole suite under AddressSanitizer + UBSan, then the
# lint rules and (optionally) a short fuzz smoke.  Run by `./run harden`.
#
#   1. configures a second build dir with --enable-sanitizers=address,undefined
#      (gcc; -fno-sanitize-recover=all, so any UB report fails the test);
#   2. `make check` there (unit, module, safety and corpus-replay tests) with
#      ASAN_OPTIONS=strict_string_checks=1:detect_stack_use_after_return=1
#      (leak detection on) and UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1;
#   3. the pytest integration suite against that build: getent and pamtester
#      are not instrumented, so the ASan runtime goes first in LD_PRELOAD
#      (TU_PRELOAD, read by the tests) and leak detection is off for them
#      (the CLI and test programs keep it);
#   4. tools/lint.sh over the normal build;
#   5. with FUZZ_SECONDS=N (default 0): tools/fuzz.sh N over every fuzzer.
# valgrind memcheck of the CLI, the PAM module (pamtester) and the NSS module
# (getent) runs in ./run test (tests/integration/test_host_safety.py).
#
# Usage: tools/harden.sh [SRC BUILD]   (defaults: repo root, <root>/build-asan)
# Environment: HARDEN_BUILD (sanitizer build dir), TU_BUILD_DIR (normal build
# for lint), FUZZ_SECONDS, PYTEST_ARGS (extra pytest arguments, e.g. -x -k faults),
# HARDEN_FAILURES_QUIET (set by ./run test, which prints failures.txt itself).
# Ends with "N passed, N failed" like ./run test; exit 0 only when all passed.
set -uo pipefail

ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
B=${2:-${HARDEN_BUILD:-$ROOT/build-asan}}
NORMAL=${TU_BUILD_DIR:-$ROOT/build}
PY=/usr/bin/python3
JOBS=$(nproc 2>/dev/null || echo 2)
log() { printf '==> %s\n' "$*" >&2; }

if [ ! -x "$ROOT/configure" ] || [ "$ROOT/configure.ac" -nt "$ROOT/configure" ]; then
	(cd "$ROOT" && autoreconf -fi >/dev/null 2>&1) || { log "autoreconf failed"; exit 2; }
fi
mkdir -p "$B"
# This run's failing test logs only (./run prints the file): never an older run's.
failures=$B/failures.txt
: >"$failures"
if [ ! -f "$B/Makefile" ]; then
	log "configure --enable-sanitizers=address,undefined ($B)"
	(cd "$B" && "$ROOT/configure" -q --enable-sanitizers=address,undefined) || exit 2
fi
log "make ($B)"
make -C "$B" -j"$JOBS" >"$B/make.log" 2>&1 || { tail -40 "$B/make.log"; exit 2; }

export ASAN_OPTIONS="strict_string_checks=1:detect_stack_use_after_return=1:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Test helpers only (see the file): product code has no suppression.
export LSAN_OPTIONS="suppressions=$ROOT/tests/safety/lsan.supp:print_suppressions=0"
# Uninstrumented hosts (getent, id, ls, pamtester) loading an instrumented
# module need the runtimes first in LD_PRELOAD: tests read TU_PRELOAD.
asan_rt=$(gcc -print-file-name=libasan.so)
ubsan_rt=$(gcc -print-file-name=libubsan.so)
export TU_PRELOAD="$asan_rt $ubsan_rt"
rc=0
touch "$B/.test-start"
sleep 1
log "make check under ASan+UBSan"
# A failing test's own log goes to $B/failures.txt whole (at most 150 lines
# a test: cmocka's verdicts and messages, the sanitizer's report with its
# stacks); ./run prints that file unfiltered, so CI's output says what failed.
if ! make -C "$B" -j"$JOBS" check >"$B/check.log" 2>&1; then
	rc=1
	grep -E '^(FAIL|ERROR):' "$B/check.log"
	for f in $(grep -lE ':test-result: (FAIL|ERROR)' /dev/null $(find "$B" -name '*.trs' -newer "$B/.test-start") 2>/dev/null); do
		{
			echo "---- ${f%.trs}.log (failed under ASan+UBSan)"
			grep -vE '^(\[ +(OK|RUN) +\]|ok [0-9]+ )' "${f%.trs}.log" | head -150
		} >>"$failures"
	done
	[ -n "${HARDEN_FAILURES_QUIET:-}" ] || cat "$failures"
fi
grep -E '^# (TOTAL|PASS|FAIL|SKIP|ERROR):' "$B/check.log" >&2 || true

# pytest-xdist when installed, as ./run test does (TU_TEST_JOBS=0: serially).
XDIST=
if [ "${TU_TEST_JOBS:-2}" != 0 ] && $PY -c 'import xdist' 2>/dev/null; then
	XDIST="-n ${TU_TEST_JOBS:-2} --dist loadgroup"
fi
log "pytest under ASan+UBSan (sanitizer runtime preloaded into getent/pamtester)"
pylog=$B/pytest.log
# Uninstrumented hosts (getent, pamtester, python) leak on their own: leak
# detection stays on only where we own main() (TU_PRELOAD users turn it off).
# shellcheck disable=SC2086 # word splitting of the arguments is wanted
TU_BUILDDIR=$B TU_SANITIZED=1 \
	timeout 1500 $PY -m pytest -q -rfEs -p no:cacheprovider $XDIST ${PYTEST_ARGS:-} "$ROOT/tests/integration" >"$pylog" 2>&1
prc=$?
tail -30 "$pylog"
if [ $prc -ne 0 ] && [ $prc -ne 5 ]; then rc=1; fi

log "lint"
if [ -f "$NORMAL/.libs/libnss_teleport.so.2" ]; then
	"$ROOT/tools/lint.sh" "$NORMAL" >"$B/lint.log" 2>&1 || { rc=1; grep -A5 FAIL "$B/lint.log"; }
else
	"$ROOT/tools/lint.sh" >"$B/lint.log" 2>&1 || { rc=1; grep -A5 FAIL "$B/lint.log"; }
fi
tail -1 "$B/lint.log"

if [ "${FUZZ_SECONDS:-0}" -gt 0 ]; then
	log "fuzz smoke: ${FUZZ_SECONDS}s per fuzzer"
	FUZZ_BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz} "$ROOT/tools/fuzz.sh" "$FUZZ_SECONDS" || rc=1
fi

# Same counting as ./run test.
pass=0 fail=0 skip=0
while IFS= read -r trs; do
	logf=${trs%.trs}.log
	verdict=$(sed -n 's/^:test-result: //p' "$trs" | head -1)
	if grep -q '^\[==========\] .* test(s) run\.' "$logf" 2>/dev/null; then
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$logf" | awk '{s+=$1} END {print s+0}')
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$logf" | awk '{s+=$1} END {print s+0}')
		pass=$((pass + p)); fail=$((fail + f))
		case $verdict in FAIL|ERROR) [ "$f" -eq 0 ] && fail=$((fail + 1)) ;; esac
	else
		case $verdict in
			PASS|XFAIL) pass=$((pass + 1)) ;;
			SKIP) skip=$((skip + 1)) ;;
			*) fail=$((fail + 1)) ;;
		esac
	fi
done < <(find "$B" -name '*.trs' -newer "$B/.test-start" 2>/dev/null | sort)
line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed).* in [0-9.]+s' "$pylog" | tail -1)
num() { grep -oE "[0-9]+ ($1)" <<<"$line" | grep -oE '^[0-9]+' | awk '{s+=$1} END {print s+0}'; }
pass=$((pass + $(num 'passed|xfailed')))
fail=$((fail + $(num 'failed|errors?|xpassed')))
skip=$((skip + $(num 'skipped')))
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
if [ "$skip" -gt 0 ]; then
	echo "harden (ASan+UBSan): $pass passed, $fail failed, $skip skipped"
else
	echo "harden (ASan+UBSan): $pass passed, $fail failed"
fi
[ "$fail" -eq 0 ] && [ "$rc" -eq 0 ]
