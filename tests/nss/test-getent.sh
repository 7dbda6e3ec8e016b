#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# test-getent.sh - the built libnss_teleport.so.2 through glibc's real NSS
# code under nss_wrapper: getent passwd/group/initgroups, id and ls -l
# resolve our accounts byte for byte; a corrupt snapshot is a clean miss.
set -u
top_builddir=${top_builddir:-$(pwd)}
so="$top_builddir/.libs/libnss_teleport.so.2"
mksnap="$top_builddir/tests/nss/mksnap"
wrapper=
for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
	[ -f "$d/libnss_wrapper.so" ] && wrapper="$d/libnss_wrapper.so" && break
done
[ -n "$wrapper" ] || { echo "SKIP: libnss_wrapper.so not found"; exit 77; }
[ -x "$mksnap" ] && [ -f "$so" ] || { echo "FAIL: build first ($so, $mksnap)"; exit 1; }

tmp=$(mktemp -d /tmp/test-getent.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

# What we serve (initgroups is derived from the member lists).
cat >"$tmp/tp.passwd" <<'X'
alice:*:300000:300000:alice@example.com:/home/alice:/bin/bash
bob:*:300001:300001::/home/bob:/bin/sh
carol.d-x_9:*:300002:5000:Carol, the third:/srv/home/carol:/usr/bin/zsh
X
cat >"$tmp/tp.group" <<'X'
alice:*:300000:
bob:*:300001:
devs:*:5000:alice,bob
ops:*:5001:alice
docker-users:*:5002:bob,carol.d-x_9,alice
X
# The local files nss_wrapper serves first.
printf 'root:x:0:0:root:/root:/bin/bash\nlocal:x:1000:1000:Local:/home/local:/bin/sh\n' >"$tmp/passwd"
printf 'root:x:0:\nlocal:x:1000:\n' >"$tmp/group"
mkdir "$tmp/cache"
"$mksnap" files "$tmp/tp.passwd" "$tmp/tp.group" "$tmp/cache/accounts.db" || exit 1

run() {
	LD_PRELOAD="${TU_PRELOAD:+$TU_PRELOAD }$wrapper" NSS_WRAPPER_PASSWD="$tmp/passwd" NSS_WRAPPER_GROUP="$tmp/group" \
		NSS_WRAPPER_MODULE_SO_PATH="$so" NSS_WRAPPER_MODULE_FN_PREFIX=teleport \
		TELEPORT_UNIX_CACHE_DIR="$tmp/cache" TELEPORT_UNIX_NSS_ONLINE=0 "$@"
}

expect() { # NAME EXPECTED-FILE COMMAND...
	name=$1 want=$2
	shift 2
	run "$@" >"$tmp/out" 2>"$tmp/err"
	if ! cmp -s "$want" "$tmp/out"; then
		echo "FAIL: $name"
		diff -u "$want" "$tmp/out" | sed 's/^/  /'
		sed 's/^/  stderr: /' "$tmp/err"
		fail=1
	else
		echo "ok: $name"
	fi
}

expect_rc() { # NAME RC COMMAND...
	name=$1 want=$2
	shift 2
	run "$@" >/dev/null 2>&1
	rc=$?
	if [ "$rc" -ne "$want" ]; then echo "FAIL: $name: exit $rc, want $want"; fail=1; else echo "ok: $name"; fi
}

sed -n 1p "$tmp/tp.passwd" >"$tmp/w"; expect "getent passwd alice" "$tmp/w" getent passwd alice
sed -n 3p "$tmp/tp.passwd" >"$tmp/w"; expect "getent passwd 300002" "$tmp/w" getent passwd 300002
sed -n 2p "$tmp/tp.passwd" >"$tmp/w"; expect "getent passwd bob (empty gecos)" "$tmp/w" getent passwd bob
cat "$tmp/passwd" "$tmp/tp.passwd" >"$tmp/w"; expect "getent passwd (enumeration)" "$tmp/w" getent passwd
sed -n 5p "$tmp/tp.group" >"$tmp/w"; expect "getent group docker-users" "$tmp/w" getent group docker-users
sed -n 3p "$tmp/tp.group" >"$tmp/w"; expect "getent group 5000" "$tmp/w" getent group 5000
# Enumeration is in name order: alice bob devs docker-users ops.
{ cat "$tmp/group"; sed -n '1,3p' "$tmp/tp.group"; sed -n 5p "$tmp/tp.group"; sed -n 4p "$tmp/tp.group"; } >"$tmp/w"
expect "getent group (enumeration)" "$tmp/w" getent group
# initgroups: the set matters, not the order glibc merges it in.
run getent initgroups alice | tr -s ' ' '\n' | sort >"$tmp/out"
printf '5000\n5001\n5002\nalice\n' >"$tmp/w"
if cmp -s "$tmp/w" "$tmp/out"; then echo "ok: getent initgroups alice"; else echo "FAIL: getent initgroups alice: $(cat "$tmp/out")"; fail=1; fi
printf 'uid=300001(bob) gid=300001(bob) groups=300001(bob),5000(devs),5002(docker-users)\n' >"$tmp/w"
expect "id bob" "$tmp/w" id bob
printf 'uid=300002(carol.d-x_9) gid=5000(devs) groups=5000(devs),5002(docker-users)\n' >"$tmp/w"
expect "id carol.d-x_9" "$tmp/w" id carol.d-x_9
expect_rc "getent passwd nosuch: not found" 2 getent passwd nosuch
expect_rc "getent passwd 12345: not found" 2 getent passwd 12345
expect_rc "getent group nosuch: not found" 2 getent group nosuch
printf 'local:x:1000:1000:Local:/home/local:/bin/sh\n' >"$tmp/w"; expect "local files still first" "$tmp/w" getent passwd local

# ls -l / stat name a file's owner through NSS (needs root to chown).
if [ "$(id -u)" = 0 ]; then
	touch "$tmp/owned"
	chown 300000:5001 "$tmp/owned"
	printf 'alice ops\n' >"$tmp/w"; expect "stat owner names" "$tmp/w" stat -c '%U %G' "$tmp/owned"
	run ls -l "$tmp/owned" >"$tmp/out" 2>&1
	if grep -q ' alice ops ' "$tmp/out"; then echo "ok: ls -l"; else echo "FAIL: ls -l: $(cat "$tmp/out")"; fail=1; fi
else
	echo "skip: ls -l (not root, cannot chown)"
fi

# A delta alone (what `teleport-unix watch` writes per event): accounts.db stays as it is and
# every tool sees the change: alice's shell, bob gone (his uid now dave's), dave new, carol out of
# docker-users.
cat >"$tmp/tp2.passwd" <<'X'
alice:*:300000:300000:alice@example.com:/home/alice:/bin/dash
carol.d-x_9:*:300002:5000:Carol, the third:/srv/home/carol:/usr/bin/zsh
dave:*:300001:300003::/home/dave:/bin/sh
X
cat >"$tmp/tp2.group" <<'X'
alice:*:300000:
dave:*:300003:
devs:*:5000:alice,dave
ops:*:5001:alice
docker-users:*:5002:alice
X
sum_before=$(cksum <"$tmp/cache/accounts.db")
"$mksnap" delta "$tmp/tp2.passwd" "$tmp/tp2.group" "$tmp/cache/accounts.db" || exit 1
if [ "$(cksum <"$tmp/cache/accounts.db")" = "$sum_before" ] && [ -f "$tmp/cache/accounts.delta" ]; then
	echo "ok: delta written, accounts.db untouched"
else
	echo "FAIL: delta: accounts.db changed or no accounts.delta"; fail=1
fi
sed -n 1p "$tmp/tp2.passwd" >"$tmp/w"; expect "delta: getent passwd alice" "$tmp/w" getent passwd alice
expect_rc "delta: getent passwd bob (deleted)" 2 getent passwd bob
sed -n 3p "$tmp/tp2.passwd" >"$tmp/w"; expect "delta: getent passwd 300001 (moved to dave)" "$tmp/w" getent passwd 300001
expect_rc "delta: getent group bob (deleted)" 2 getent group bob
sed -n 5p "$tmp/tp2.group" >"$tmp/w"; expect "delta: getent group docker-users" "$tmp/w" getent group docker-users
run getent passwd | sort >"$tmp/out"; cat "$tmp/passwd" "$tmp/tp2.passwd" | sort >"$tmp/w"
if cmp -s "$tmp/w" "$tmp/out"; then echo "ok: delta: getent passwd (enumeration)"; else echo "FAIL: delta: enumeration"; diff -u "$tmp/w" "$tmp/out"; fail=1; fi
run getent group | sort >"$tmp/out"; cat "$tmp/group" "$tmp/tp2.group" | sort >"$tmp/w"
if cmp -s "$tmp/w" "$tmp/out"; then echo "ok: delta: getent group (enumeration)"; else echo "FAIL: delta: group enumeration"; diff -u "$tmp/w" "$tmp/out"; fail=1; fi
printf 'uid=300001(dave) gid=300003(dave) groups=300003(dave),5000(devs)\n' >"$tmp/w"
expect "delta: id dave" "$tmp/w" id dave
run getent initgroups carol.d-x_9 | tr -s ' ' '\n' | sort >"$tmp/out"
printf 'carol.d-x_9\n' >"$tmp/w" # the base says 5002 too
if cmp -s "$tmp/w" "$tmp/out"; then echo "ok: delta: getent initgroups carol.d-x_9"; else echo "FAIL: delta: initgroups carol: $(cat "$tmp/out")"; fail=1; fi
rm -f "$tmp/cache/accounts.delta"

# A corrupt snapshot: a clean miss for every tool, never a crash.
printf 'garbage, not a snapshot\n' >"$tmp/cache/accounts.db"
expect_rc "corrupt: getent passwd alice" 2 getent passwd alice
expect_rc "corrupt: getent group devs" 2 getent group devs
cat "$tmp/passwd" >"$tmp/w"; expect "corrupt: enumeration shows local files only" "$tmp/w" getent passwd
rm -f "$tmp/cache/accounts.db"
expect_rc "missing: getent passwd alice" 2 getent passwd alice
expect_rc "missing: id alice" 1 id alice
exit $fail
