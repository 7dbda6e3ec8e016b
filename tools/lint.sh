#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tools/lint.sh - the house rules a compiler does not check (STYLE.md
# §2.3, §2.9, §2.11, §2.16).  Fails on:
#   - banned functions in our C code (libcore, nss, pam, cli): atoi/atol,
#     sscanf, strtok, sprintf/vsprintf, gets, strcpy (curl's banned list);
#   - layering: curl/OpenSSL/libyaml/protobuf-c/PAM headers in libcore/base or
#     nss/; generated *.pb-c.h outside libcore/model.c and libcore/auth.c;
#     PAM/curl/YAML/protobuf types in the decision code (rbac, decide,
#     accounts, idhash);
#   - code loaded into other processes (libcore, nss, pam) calling getenv()
#     instead of secure_getenv(), or changing process-wide state (signal
#     handlers, locale, umask, cwd, environment, atexit, openlog);
#   - open()/fopen()/socket() without close-on-exec in that code;
#   - the export and NEEDED allow-lists (tools/check-*.sh) when a build dir
#     is given.
# Informational only (never fails): strcat/strncpy, clang-format drift,
# trailing whitespace; with --tidy also clang-tidy (.clang-tidy) over a
# compilation database, and cppcheck when installed.
#
# Usage: tools/lint.sh [--tidy] [BUILDDIR]
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
TIDY=0
if [ "${1:-}" = --tidy ]; then TIDY=1; shift; fi
BUILDDIR=${1:-}
bad=0

fail() { printf 'FAIL: %s\n' "$*"; bad=1; }
note() { printf 'note: %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }

# Code without comments and string literals, one "file:line:text" per line,
# so a word in a comment ("never calls openlog()") is not a finding.
strip() {
	local f
	for f in "$@"; do
		/usr/bin/python3 - "$f" <<'EOF'
import re, sys
path = sys.argv[1]
src = open(path, encoding="utf-8", errors="replace").read()
def blank(m):
    return re.sub(r"[^\n]", " ", m.group(0))
# strings and chars first (a "/*" inside a string is not a comment), then comments
pat = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', re.S)
def repl(m):
    t = m.group(0)
    if t.startswith('"'):
        return '""'
    return blank(m)
out = pat.sub(repl, src)
for i, line in enumerate(out.split("\n"), 1):
    if line.strip():
        print(f"{path}:{i}:{line}")
EOF
	done
}

mapfile -t OURS < <(find libcore nss pam cli -name '*.[ch]' ! -name '*.pb-c.*' | sort)
mapfile -t HOSTED < <(find libcore nss pam -name '*.[ch]' ! -name '*.pb-c.*' | sort)
CODE=$(strip "${OURS[@]}")
HOSTED_CODE=$(grep -E "^($(IFS='|'; echo "${HOSTED[*]}")):" <<<"$CODE")

# 1. Banned functions.
hits=$(grep -E '(^|[^A-Za-z0-9_>.])(atoi|atol|atoll|sscanf|strtok|strtok_r|sprintf|vsprintf|gets|strcpy)[[:space:]]*\(' <<<"$CODE")
if [ -n "$hits" ]; then fail "banned functions (use tu_parse_*, snprintf, strbuf):"; sed 's/^/  /' <<<"$hits"
else ok "no atoi/sscanf/strtok/sprintf/gets/strcpy in libcore, nss, pam, cli"; fi
hits=$(grep -E '(^|[^A-Za-z0-9_>.])(strcat|strncpy|strncat)[[:space:]]*\(' <<<"$CODE")
[ -z "$hits" ] || { note "strcat/strncpy (bounded here? prefer snprintf or strbuf):"; sed 's/^/  /' <<<"$hits"; }

# 2. Layering.
hits=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](curl/|openssl/|yaml\.h|protobuf-c/|security/|[^">]*\.pb-c\.h)' \
	$(find libcore/base nss -name '*.[ch]') 2>/dev/null)
if [ -n "$hits" ]; then fail "libcore/base and nss/ may include libc/POSIX/Linux headers only:"; sed 's/^/  /' <<<"$hits"
else ok "libcore/base and nss/ include no curl/OpenSSL/YAML/protobuf/PAM header"; fi
hits=$(grep -lE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^">]*\.pb-c\.h' "${OURS[@]}" tests/unit/*.c 2>/dev/null |
	grep -vE '^libcore/(model|auth)\.c$')
if [ -n "$hits" ]; then fail "*.pb-c.h included outside libcore/model.c and libcore/auth.c:"; sed 's/^/  /' <<<"$hits"
else ok "*.pb-c.h only in model.c/auth.c"; fi
hits=$(grep -E '^libcore/(base/)?(rbac|decide|accounts|idhash)\.[ch]:' <<<"$CODE" |
	grep -E 'pam_handle_t|CURL[[:space:]]*\*|CURLcode|yaml_[a-z_]+_t|ProtobufC|Teleport__|Types__|#[[:space:]]*include[[:space:]]*[<"](security/|curl/|yaml\.h|openssl/)')
if [ -n "$hits" ]; then fail "decision code must not see PAM/curl/YAML/protobuf types:"; sed 's/^/  /' <<<"$hits"
else ok "decision code (rbac, decide, accounts, idhash) free of PAM/curl/YAML/protobuf types"; fi

# 3. Code loaded into other processes: environment and process-wide state.
hits=$(grep -E '(^|[^A-Za-z0-9_])getenv[[:space:]]*\(' <<<"$HOSTED_CODE")
if [ -n "$hits" ]; then fail "getenv() in module/core code (secure_getenv only, STYLE §2.9.7):"; sed 's/^/  /' <<<"$hits"
else ok "environment read through secure_getenv only"; fi
hits=$(grep -E '(^|[^A-Za-z0-9_])(signal|sigaction|setlocale|umask|chdir|fchdir|setenv|putenv|unsetenv|clearenv|atexit|openlog|closelog|alarm|setrlimit)[[:space:]]*\(' <<<"$HOSTED_CODE")
if [ -n "$hits" ]; then fail "process-wide state changed by module/core code (STYLE §2.9.6):"; sed 's/^/  /' <<<"$hits"
else ok "no signal/locale/umask/cwd/env/atexit/openlog changes in libcore, nss, pam"; fi
hits=$(grep -E '__attribute__[[:space:]]*\(\([[:space:]]*(constructor|destructor)' <<<"$HOSTED_CODE")
if [ -n "$hits" ]; then fail "library constructors/destructors:"; sed 's/^/  /' <<<"$hits"
else ok "no library constructors/destructors"; fi

# 4. Close-on-exec.  open()/openat() calls whose flags (up to the closing
#    parenthesis on the same or next line) lack O_CLOEXEC; fopen modes
#    without 'e'; socket() without SOCK_CLOEXEC.
hits=$(/usr/bin/python3 - "${HOSTED[@]}" <<'EOF'
import re, sys
for path in sys.argv[1:]:
    src = open(path, encoding="utf-8", errors="replace").read()
    src_nc = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), src, flags=re.S)
    for m in re.finditer(r"(?<![A-Za-z0-9_])(open|openat|open64|socket|fopen|fdopen|mkostemp|accept4?|pipe2?|dup|dup2)\s*\(", src_nc):
        fn = m.group(1)
        # the argument list up to the matching parenthesis
        depth, i = 0, m.end() - 1
        while i < len(src_nc):
            c = src_nc[i]
            depth += c == "("
            depth -= c == ")"
            i += 1
            if depth == 0:
                break
        args = src_nc[m.end():i - 1]
        line = src_nc.count("\n", 0, m.start()) + 1
        bad = False
        if fn in ("open", "openat", "open64"):
            bad = "O_CLOEXEC" not in args and "O_PATH" not in args
        elif fn == "socket":
            bad = "SOCK_CLOEXEC" not in args
        elif fn in ("fopen", "fdopen"):
            mode = re.findall(r'"([^"]*)"', args)
            bad = not mode or "e" not in mode[-1]
        elif fn in ("pipe", "accept", "dup", "dup2"):
            bad = True
        elif fn == "pipe2":
            bad = "O_CLOEXEC" not in args
        elif fn == "accept4":
            bad = "SOCK_CLOEXEC" not in args
        elif fn == "mkostemp":
            bad = "O_CLOEXEC" not in args
        if bad:
            print(f"{path}:{line}: {fn}({' '.join(args.split())[:80]})")
EOF
)
if [ -n "$hits" ]; then fail "file descriptors without close-on-exec (STYLE §2.9.4):"; sed 's/^/  /' <<<"$hits"
else ok "every open/fopen/socket in libcore, nss, pam is close-on-exec"; fi

# 5. Exports and NEEDED (need a build).
if [ -n "$BUILDDIR" ]; then
	sh tools/check-exports.sh "$BUILDDIR" | sed 's/^/  /' || true
	sh tools/check-exports.sh "$BUILDDIR" >/dev/null || fail "exports (tools/check-exports.sh $BUILDDIR)"
	out=$(sh tools/check-needed.sh "$BUILDDIR"); r=$?
	sed 's/^/  /' <<<"$out"
	[ $r -eq 0 ] || fail "NEEDED (tools/check-needed.sh $BUILDDIR)"
else
	note "no build dir given: export and NEEDED checks skipped (tools/lint.sh BUILDDIR)"
fi

# 6. Informational: formatting and whitespace.
if command -v clang-format >/dev/null; then
	n=0 files=""
	for f in "${OURS[@]}"; do
		if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then n=$((n + 1)); files="$files ${f}"; fi
	done
	note "clang-format: $n of ${#OURS[@]} files differ from .clang-format (informational)${files:+:$files}"
fi
ws=$(git -C "$ROOT" grep -nIE '[[:space:]]+$' -- '*.c' '*.h' '*.am' '*.mk' '*.ac' '*.sh' 'run' 2>/dev/null | head -20)
[ -z "$ws" ] || { note "trailing whitespace:"; sed 's/^/  /' <<<"$ws"; }

# 7. Optional deeper checks.
if [ $TIDY -eq 1 ]; then
	db=${BUILDDIR:+$BUILDDIR/compile_commands.json}
	if [ -n "$db" ] && [ -f "$db" ] && command -v clang-tidy >/dev/null; then
		clang-tidy -p "$BUILDDIR" --quiet "${OURS[@]/%.h/.c}" 2>/dev/null | grep -E 'warning:|error:' | sort -u |
			sed 's/^/  tidy: /' | head -100
	else
		note "clang-tidy skipped: make a database first (cd BUILDDIR && make clean && bear -- make)"
	fi
	if command -v cppcheck >/dev/null; then
		cppcheck -q --enable=warning,portability,performance --std=c11 --inline-suppr \
			--suppress=missingIncludeSystem -Iinclude -Ilibcore -Ilibcore/base libcore nss pam cli 2>&1 |
			sed 's/^/  cppcheck: /' | head -60
	fi
fi

if [ $bad -eq 0 ]; then echo "lint: ok"; else echo "lint: FAILED"; fi
exit $bad
