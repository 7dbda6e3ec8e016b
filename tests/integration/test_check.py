# SPDX-License-Identifier: Apache-2.0
"""test_check.py - `teleport-unix check USER LOGIN [--offline]` against the
stand-in Auth server (`test` dataset, host env: dev), its exit codes and
--json, and agreement with pam_teleport.so on every fixture login."""

import os
import shutil

import pytest

import helpers

# (user, login, exit code, substring of the reason)
CASES = [
    ("alice", "alice", 0, "allowed by role"),
    ("alice", "ubuntu", 0, "allowed by role"),
    ("alice", "root", 1, "no role allows login 'root'"),
    ("bob", "robert", 1, "is locked"),
    ("carol", "carol", 1, "has expired"),
    ("dave", "dave", 1, "locked by lock 'lock-user-dave' (user=dave)"),
    ("erin", "erin", 1, "no role allows"),
    ("frank", "frank", 0, "allowed"),
    ("frank", "root", 1, "denied by role 'no-root' (deny logins 'root')"),
    ("gina", "deploy", 0, "allowed by role 'deploy'"),
    ("hank", "deploy", 0, "allowed by role 'deploy'"),
    ("ivan", "ivan", 1, "locked by lock 'lock-role-contractor' (role=contractor)"),
    ("judy", "judy", 0, "allowed"),
    ("nosuchuser", "alice", 1, "does not exist"),
    ("sam@example.com", "sam", 0, "allowed"),
]


@pytest.mark.parametrize("user,login,rc,reason", CASES)
def test_check_online(auth_server, write_config, run_cli, user, login, rc, reason):
    auth_server()
    write_config()
    res = run_cli("check", user, login)
    assert res.rc == rc, res
    assert reason in res.stdout, res
    assert res.stdout.startswith("allow: " if rc == 0 else "deny: "), res


def test_check_json(auth_server, write_config, run_cli):
    auth_server()
    write_config()
    res = run_cli("check", "frank", "root", json=True)
    assert res.rc == 1, res
    doc = res.json()
    assert doc["decision"] == "deny" and doc["allowed"] is False
    assert doc["role"] == "no-root"
    assert doc["user"] == "frank" and doc["login"] == "root"
    assert "deny logins 'root'" in doc["reason"]
    assert doc["offline"] is False
    ok = run_cli("check", "alice", "alice", json=True).json()
    assert ok["decision"] == "allow" and ok["allowed"] is True


def test_check_usage_errors(write_config, run_cli):
    write_config()
    for args in (("check",), ("check", "alice"), ("check", "a", "b", "c"), ("check", "", "x")):
        res = run_cli(*args)
        assert res.rc == 2, res
        assert res.stderr.startswith("teleport-unix: check"), res


def test_check_offline(auth_server, write_config, run_cli):
    srv = auth_server()
    write_config()
    # no cache yet: --offline has nothing to decide from
    res = run_cli("check", "alice", "alice", "--offline")
    assert res.rc == 2, res
    assert res.stderr.startswith("teleport-unix: check: no usable cache"), res
    assert run_cli("sync").rc == 0
    srv.stop()
    res = run_cli("check", "alice", "alice", "--offline")
    assert res.rc == 0 and "(offline)" in res.stdout, res
    res = run_cli("check", "--offline", "dave", "dave")
    assert res.rc == 1, res
    # Auth down and pam.offline: cached -> the cache answers without --offline too
    write_config(addresses="127.0.0.1:1")
    res = run_cli("check", "frank", "root")
    assert res.rc == 1 and "(offline)" in res.stdout, res
    write_config(addresses="127.0.0.1:1", pam={"offline": "deny"})
    res = run_cli("check", "alice", "alice")
    assert res.rc == 2 and "pam.offline is deny" in res.stderr, res


def test_check_auth_down_no_cache(write_config, run_cli):
    write_config(addresses="127.0.0.1:1")
    res = run_cli("check", "alice", "alice")
    assert res.rc == 2, res
    assert "no usable cache" in res.stderr


def test_check_host_lock(auth_server, write_config, run_cli, tmp_path):
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={
        "locks/host.txtpb": (
            'Kind: "lock"\nVersion: "v2"\nMetadata { Name: "lock-host" }\n'
            f'Spec {{ Target {{ ServerID: "{helpers.HOST_UUID}.{helpers.CLUSTER}" }} Message: "maintenance" }}\n'),
    })
    auth_server(dataset=ds)
    write_config()
    res = run_cli("check", "alice", "alice")
    assert res.rc == 1, res
    assert "locked by lock 'lock-host' (server_id=" in res.stdout, res


# ---- check agrees with the PAM module ----

@pytest.fixture(scope="module")
def pam_module(builddir):
    if not shutil.which("pamtester") or not helpers.find_lib("libpam_wrapper.so"):
        pytest.skip("pamtester / libpam_wrapper not installed")
    p = helpers.module_path(builddir, "pam_teleport.so")
    if not os.path.exists(p):
        pytest.skip(f"{p} not built")
    return p


# (login, its single owner) on the test host
OWNED = [("alice", "alice"), ("ubuntu", "alice"), ("robert", "bob"), ("dave", "dave"), ("frank", "frank"),
         ("ivan", "ivan"), ("judy", "judy"), ("sam", "sam@example.com"), ("mallory", "mallory"),
         ("olga", "olga")]


def test_check_agrees_with_pam(pam_module, auth_server, write_config, run_cli, tmp_path):
    """Where the login is a Teleport account here (the module does not answer
    PAM_USER_UNKNOWN), `check OWNER LOGIN` and the module agree."""
    auth_server()
    cfg = write_config()
    service_dir = str(tmp_path / "pam.d")
    helpers.write_pam_service(service_dir, "tu-agree",
                              [f"account required {pam_module} config={cfg} insecure_perms"])
    compared = 0
    for login, owner in OWNED:
        chk = run_cli("check", owner, login)
        pam = helpers.run_pamtester(service_dir, "tu-agree", login)
        assert chk.rc in (0, 1), chk
        if "User not known" in pam.stdout + pam.stderr:
            continue
        compared += 1
        assert (chk.rc == 0) == (pam.rc == 0), (login, owner, chk, pam)
    assert compared >= 5


# ---- Auth misbehaving: the decision falls back to the cache or says unavailable ----

def test_check_slow_auth_is_bounded(auth_server, write_config, run_cli):
    """Each call answers within its own deadline, but together they exceed
    connect + request: the decision gives up on Auth (no cache here)."""
    auth_server(faults={"/teleport.users.v1.UsersService/GetUser": "delay=0.9",
                        "/proto.AuthService/GetRole": "delay=0.9"})
    write_config(auth={"timeouts": {"connect": "1s", "request": "1s"}})
    res = run_cli("check", "alice", "alice")
    assert res.rc == 2, res
    assert "time budget for all RPCs spent" in res.stderr, res
    assert res.elapsed < 6, res


@pytest.mark.parametrize("fault", ["unavailable", "internal", "malformed"])
def test_check_locks_failure_falls_back_to_cache(auth_server, write_config, run_cli, fault):
    srv = auth_server()
    write_config()
    assert run_cli("sync").rc == 0
    srv.set_control(faults={"/proto.AuthService/GetLocks": fault})
    res = run_cli("check", "dave", "dave")          # lock-user-dave, from the cached locks
    assert res.rc == 1 and "(offline)" in res.stdout and "lock-user-dave" in res.stdout, res
    res = run_cli("check", "frank", "frank")
    assert res.rc == 0 and "(offline)" in res.stdout, res


@pytest.mark.parametrize("fault", ["permission_denied", "unauthenticated"])
def test_check_refused_credential_does_not_fall_back(auth_server, write_config, run_cli, fault):
    """Auth refusing our credential is an answer, not an outage: Auth refuses
    every RPC of a locked host, and a cache synced before that lock would
    let logins in.  No offline decision, exit 2."""
    srv = auth_server()
    write_config()
    assert run_cli("sync").rc == 0
    srv.set_control(faults={"/proto.AuthService/GetLocks": fault})
    res = run_cli("check", "frank", "frank")
    assert res.rc == 2 and "(offline)" not in res.stdout, res
    assert "refused this host's credential" in res.stdout + res.stderr, res


def test_check_host_lock_after_sync_is_enforced(auth_server, write_config, run_cli, tmp_path):
    """A host lock created after the last sync: Auth (enforcing locks on the
    caller, as the real authorizer does) refuses every RPC; the login must
    not be allowed from the older cache."""
    srv = auth_server(extra=("--enforce-caller-locks",))
    write_config()
    assert run_cli("sync").rc == 0
    assert run_cli("check", "frank", "frank").rc == 0
    locked = helpers.make_dataset(str(tmp_path / "ds"), files={"locks/host.txtpb": f"""
Metadata {{ Name: "lock-this-host" }}
Spec {{ Target {{ ServerID: "{helpers.HOST_UUID}" }} Message: "host quarantined" }}
"""})
    srv.set_control(dataset=locked)
    res = run_cli("check", "frank", "frank")
    assert res.rc == 2 and "(offline)" not in res.stdout, res
    assert "host quarantined" in res.stdout + res.stderr, res


def test_check_legacy_auth(auth_server, write_config, run_cli):
    """Teleport 13/14 (no UsersService, no ListRoles): same answers."""
    auth_server(profile="v13")
    write_config()
    assert run_cli("check", "frank", "root").rc == 1
    res = run_cli("check", "frank", "frank")
    assert res.rc == 0 and "(offline)" not in res.stdout, res
