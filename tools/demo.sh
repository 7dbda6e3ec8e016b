#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tools/demo.sh ROOT BUILD - the ./run demo walk-through: per-run certificates,
# the stand-in Auth server with the demo dataset (tests/fixtures/demo), a
# private config, then the CLI, getent through libnss_teleport.so.2 (under
# nss_wrapper) and pamtester through pam_teleport.so (under pam_wrapper).
# Touches nothing outside BUILD/demo.
set -uo pipefail

ROOT=$1
BUILD=$2
PY=/usr/bin/python3
DEMO=$BUILD/demo
CLI=$BUILD/teleport-unix

rm -rf "$DEMO"
mkdir -p "$DEMO/cache" "$DEMO/pam.d"
chmod 0755 "$DEMO" "$DEMO/cache"

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
show() { say "$*"; "$@"; echo "(exit $?)"; }

$PY "$ROOT/tests/fake_auth/certs.py" --out "$DEMO/certs" --cluster example.com >/dev/null || exit 2
$PY "$ROOT/tests/fake_auth/server.py" --certs "$DEMO/certs" --dataset demo \
	--port-file "$DEMO/port" --die-with-parent >"$DEMO/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$DEMO/port" ] && break; sleep 0.1; done
[ -s "$DEMO/port" ] || { echo "stand-in Auth server did not start:"; cat "$DEMO/server.log"; exit 2; }
PORT=$(cat "$DEMO/port")

cat >"$DEMO/teleport-unix.yaml" <<YAML
# demo config written by ./run demo
auth:
  addresses: ["127.0.0.1:$PORT"]
  cluster_name: example.com
  credentials:
    key_pair: { cert: $DEMO/certs/client.crt, key: $DEMO/certs/client.key, ca: $DEMO/certs/ca.crt }
  timeouts: { connect: 1s, request: 3s }
host:
  name: dev-1
  labels: { env: dev, team: infra }
accounts:
  source: host_user_creation
  uid_range: [200000, 899999999]
  home: /home/{login}
  shell: /bin/bash
cache:
  dir: $DEMO/cache
  refresh_after: 5m
  offline_max_age: 72h
  negative_ttl: 1m
pam:
  offline: cached
YAML
chmod 0600 "$DEMO/teleport-unix.yaml"
export TELEPORT_UNIX_CONFIG=$DEMO/teleport-unix.yaml
RELAX=()
[ "$(id -u)" -eq 0 ] || RELAX=(--insecure-perms)

echo "stand-in Auth server on 127.0.0.1:$PORT (dataset tests/fixtures/demo), config $TELEPORT_UNIX_CONFIG"

show "$CLI" "${RELAX[@]}" ping
show "$CLI" "${RELAX[@]}" sync
show "$CLI" "${RELAX[@]}" user alice@example.com
show "$CLI" "${RELAX[@]}" check alice@example.com alice
show "$CLI" "${RELAX[@]}" check frank@example.com root
show "$CLI" "${RELAX[@]}" check dave@example.com dave
show "$CLI" "${RELAX[@]}" passwd
show "$CLI" "${RELAX[@]}" group
show "$CLI" "${RELAX[@]}" status

# NSS through glibc: nss_wrapper loads our module; the module reads the snapshot
# in the demo cache dir (TELEPORT_UNIX_CACHE_DIR; by default /var/cache/teleport-unix).
: >"$DEMO/nss.passwd"; : >"$DEMO/nss.group"
nss() {
	LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD=$DEMO/nss.passwd NSS_WRAPPER_GROUP=$DEMO/nss.group \
	NSS_WRAPPER_MODULE_SO_PATH=$BUILD/.libs/libnss_teleport.so.2 NSS_WRAPPER_MODULE_FN_PREFIX=teleport \
	TELEPORT_UNIX_CACHE_DIR=$DEMO/cache "$@"
}
say "getent passwd alice    (through libnss_teleport.so.2)"; nss getent passwd alice; echo "(exit $?)"
say "getent group developers"; nss getent group developers; echo "(exit $?)"
say "id alice"; nss id alice; echo "(exit $?)"

# PAM through a real stack: pam_wrapper + a private service file.
cat >"$DEMO/pam.d/demo" <<PAM
account [success=ok user_unknown=ignore default=bad] $BUILD/.libs/pam_teleport.so config=$DEMO/teleport-unix.yaml
account required pam_permit.so
PAM
printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$DEMO/pam.d/other"
pam() {
	say "pamtester demo $1 acct_mgmt    # $3"
	LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$DEMO/pam.d \
		pamtester ${2:+"-ETELEPORT_USERNAME=$2"} demo "$1" acct_mgmt
	echo "(exit $?)"
}
pam alice "" "alice@example.com's role dev allows login alice here: PAM_SUCCESS"
pam dave "" "dave is locked (lock-user-dave): PAM_PERM_DENIED"
pam deploy "" "deploy is shared by gina and hank, no trusted identity: PAM_PERM_DENIED"
pam root "" "not a Teleport login: PAM_USER_UNKNOWN, and user_unknown=ignore lets local accounts pass"

say "Auth goes away: decisions come from the cache (pam.offline: cached)"
kill $SERVER; wait $SERVER 2>/dev/null
show "$CLI" "${RELAX[@]}" check --offline alice@example.com alice
pam alice "" "Auth down, fresh cache: decided offline from the 0600 state snapshot"
pam dave "" "locks are in the cache too"
show "$CLI" "${RELAX[@]}" status
echo
echo "demo files are in $DEMO"
