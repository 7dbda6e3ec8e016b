# SPDX-License-Identifier: Apache-2.0
"""test_rbac_rules.py - Teleport's answer for every record (issue 11), through
the CLI and pam_teleport.so against the stand-in Auth server (`test` dataset,
host labels env: dev):

 - locks on the host's FQDN "<host-uuid>.<cluster>" and on the MFA device /
   trusted device of the session's certificate (Teleport's ComputeLockTargets);
 - a role that does not exist (or cannot be used) refuses its holders,
   online, offline, in `check`, `user` and the accounts mapping.
"""

import json

import pytest

import helpers
from test_pam import _cert_auth_info, outcome, pam, pam_module  # noqa: F401 (fixtures)


def _lock(name, target):
    return (f'Kind: "lock"\nVersion: "v2"\nMetadata {{ Name: "{name}" }}\n'
            f'Spec {{ Target {{ {target} }} Message: "m" }}\n')


# ---- 1. lock targets ------------------------------------------------------

@pytest.mark.parametrize("target", [f'ServerID: "{helpers.HOST_UUID}.{helpers.CLUSTER}"',
                                    f'Node: "{helpers.HOST_UUID}.{helpers.CLUSTER}"',
                                    f'ServerID: "{helpers.HOST_UUID}"'])
@pytest.mark.parametrize("host_cfg", [{"id": helpers.HOST_UUID},
                                      {"id": f"{helpers.HOST_UUID}.{helpers.CLUSTER}"},
                                      {}])
def test_host_lock_fqdn(auth_server, write_config, run_cli, tmp_path, target, host_cfg):
    """A lock on the host, by id or by "<id>.<cluster>", whether host.id is configured
    (without auth.cluster_name) or read from the credential."""
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={"locks/host.txtpb": _lock("lock-host", target)})
    auth_server(dataset=ds)
    write_config(host=host_cfg)
    res = run_cli("check", "frank", "frank")
    assert res.rc == 1, res
    assert "locked by lock 'lock-host'" in res.stdout, res
    # offline, from the snapshot, the same
    assert run_cli("sync").rc == 0
    res = run_cli("check", "--offline", "frank", "frank")
    assert res.rc == 1 and "locked by lock 'lock-host'" in res.stdout, res


def test_host_lock_other_cluster(auth_server, write_config, run_cli, tmp_path):
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={
        "locks/host.txtpb": _lock("lock-host", f'ServerID: "{helpers.HOST_UUID}.other.example"')})
    auth_server(dataset=ds)
    write_config(host={"id": helpers.HOST_UUID})
    res = run_cli("check", "frank", "frank")
    assert res.rc == 0, res


@pytest.mark.parametrize("target,extensions,want", [
    ('MFADevice: "mfa-dev-1"', {"mfa-verified": "mfa-dev-1"}, "deny"),
    ('MFADevice: "mfa-dev-1"', {"mfa-verified": "mfa-dev-2"}, "allow"),
    ('Device: "device-1"', {"teleport-device-id": "device-1", "teleport-device-asset-tag": "A",
                            "teleport-device-credential-id": "c"}, "deny"),
    ('Device: "device-1"', {"teleport-device-id": "device-2"}, "allow"),
])
def test_certificate_lock_targets(pam, auth_server, write_config, tmp_path, target, extensions, want):
    """The session's certificate names its MFA device and trusted device: locks on them refuse
    the login (frank may log in as frank here otherwise)."""
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={"locks/dev.txtpb": _lock("lock-dev", target)})
    auth_server(dataset=ds)
    envconf = tmp_path / "pam_env.conf"
    envconf.write_text(f'SSH_AUTH_INFO_0 DEFAULT="{_cert_auth_info("frank", extensions=extensions)}"\n')
    pre = [f"auth optional pam_env.so conffile={envconf} envfile=/dev/null readenv=0"]
    cfg = write_config(pam={"trust_ssh_cert": True})
    res = pam(cfg, "frank", pre=pre, ops=("setcred", "acct_mgmt"))
    if "Teleport user 'frank'" not in res.stderr:
        pytest.skip("pam_env did not set SSH_AUTH_INFO_0 under pam_wrapper")
    assert outcome(res) == want, res
    if want == "deny":
        assert "locked by lock 'lock-dev'" in res.stderr, res


# ---- 2. a role that does not exist ---------------------------------------

ZOE = ('Kind: "user"\nVersion: "v2"\nMetadata { Name: "zoe" }\n'
       'Spec { Roles: ["dev", "%s"] Traits { Values { key: "logins" value { Values: ["zoe"] } } } }\n')


def test_missing_role_refuses_everywhere(auth_server, write_config, run_cli, tmp_path):
    """zoe holds dev (which gives her zoe here) and a role that does not exist: refused online,
    offline, in `user`, and she owns no account."""
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={"users/zoe.txtpb": ZOE % "ghost-role"})
    auth_server(dataset=ds)
    write_config()
    res = run_cli("check", "zoe", "zoe")
    assert res.rc == 1 and "role 'ghost-role' does not exist or cannot be used" in res.stdout, res
    assert run_cli("sync").rc == 0
    res = run_cli("check", "--offline", "zoe", "zoe")
    assert res.rc == 1 and "role 'ghost-role' does not exist" in res.stdout, res
    assert "zoe:" not in run_cli("passwd").stdout
    user = run_cli("user", "zoe", json=True)
    assert user.rc in (0, 1), user
    assert "zoe" not in json.dumps(user.json().get("logins", [])), user
    # without the role she is an account again (the test can fail)
    ds2 = helpers.make_dataset(str(tmp_path / "ds2"), files={"users/zoe.txtpb": ZOE % "dev"})
    auth_server(dataset=ds2)
    write_config()
    assert run_cli("check", "zoe", "zoe").rc == 0


# ---- 3. one hostile record never stops a sync -----------------------------

HOSTILE_USER = ('Kind: "user"\nVersion: "v2"\nMetadata { Name: "zed" }\n'
                'Spec { Roles: ["dev"] Traits { Values { key: "logins" value { Values: ["zed\\000root"] } } } }\n')
HOSTILE_ROLE = ('Kind: "role"\nVersion: "v7"\nMetadata { Name: "odd-role" }\n'
                'Spec { Allow { Logins: ["x\\000y"] NodeLabels { Values { key: "*" value { Values: ["*"] } } } } }\n')
ODD_NAMES = ('Kind: "user"\nVersion: "v2"\nMetadata { Name: "ev:il\\nname\\033[31m" }\n'
             'Spec { Roles: ["dev"] Traits { Values { key: "logins" value { Values: ["evil", "a:b", "c\\nd", "e\\001f"] } } } }\n')


def test_hostile_records_are_left_out(auth_server, write_config, run_cli, tmp_path):
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={
        "users/zed.txtpb": HOSTILE_USER, "roles/odd-role.txtpb": HOSTILE_ROLE,
        "users/zoe.txtpb": ZOE % "odd-role", "users/evil.txtpb": ODD_NAMES})
    auth_server(dataset=ds)
    write_config()
    res = run_cli("sync")
    assert res.rc == 0, res
    assert "left out: 1 users, 1 roles" in res.stdout, res
    doc = run_cli("sync", json=True).json()
    assert doc["users_left_out"] == 1 and doc["roles_left_out"] == 1, doc
    st = run_cli("status", json=True)
    assert '"users_left_out":1' in st.stdout and '"roles_left_out":1' in st.stdout, st
    assert "left out:   1 users, 1 roles" in run_cli("status").stdout
    # everyone else was refreshed
    pw = run_cli("passwd").stdout
    assert "bob:" in pw and "zed" not in pw, pw
    # no control byte, ':' or newline of a hostile name reaches an NSS line
    for line in pw.splitlines():
        assert len(line.split(":")) == 7, line
        assert all(c >= " " and c != "\x7f" for c in line), repr(line)
    assert "evil:" in pw
    # the user and the role holders are refused, naming why
    res = run_cli("check", "zed", "zed")
    assert res.rc == 1 and "cannot be used" in res.stdout, res
    res = run_cli("check", "zoe", "zoe")
    assert res.rc == 1 and "role 'odd-role' does not exist or cannot be used" in res.stdout, res


HOSTILE_LOCK = ('Kind: "lock"\nVersion: "v2"\nMetadata { Name: "lock-odd" }\n'
                'Spec { Target { User: "nobody\\000x" } Message: "m" }\n')


def test_unreadable_lock_fails_closed(auth_server, write_config, run_cli, tmp_path):
    """A lock whose target cannot be read is never dropped: it refuses every login here,
    online and offline (it is kept in the snapshot)."""
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={"locks/odd.txtpb": HOSTILE_LOCK})
    auth_server(dataset=ds)
    write_config()
    res = run_cli("check", "frank", "frank")
    assert res.rc == 1 and "locked by lock 'lock-odd' (its content cannot be read" in res.stdout, res
    assert run_cli("sync").rc == 0
    res = run_cli("check", "--offline", "frank", "frank")
    assert res.rc == 1 and "lock-odd" in res.stdout, res


# ---- 5. the auth-preference NOTICE once per sync, not per login -----------

NO_PREF = {"/teleport.clusterconfig.v1.ClusterConfigService/GetAuthPreference": "unimplemented",
           "/proto.AuthService/GetAuthPreference": "unimplemented"}
NOTICE = "cluster-wide MFA, device trust and locking mode unknown, roles decide"


def test_auth_pref_notice_once_per_sync(pam, auth_server, write_config, run_cli):
    auth_server(faults=NO_PREF)
    cfg = write_config()
    res = pam(cfg, "frank")
    assert outcome(res) == "allow", res
    assert NOTICE not in res.stdout + res.stderr, res
    res = run_cli("sync")
    assert res.rc == 0, res
    assert (res.stdout + res.stderr).count(NOTICE) == 1, res


# ---- 4. trait ids: accounts.trait_id_range --------------------------------

def _free_id(start):
    """An id no local account or group holds (trait ids never take those)."""
    import grp  # noqa: PLC0415
    import pwd  # noqa: PLC0415
    i = start
    while True:
        try:
            pwd.getpwuid(i)
        except KeyError:
            try:
                grp.getgrgid(i)
            except KeyError:
                return i
        i += 1


def _trait_user(name, login, uid):
    return (f'Kind: "user"\nVersion: "v2"\nMetadata {{ Name: "{name}" }}\n'
            f'Spec {{ Roles: ["dev"] Traits {{ Values {{ key: "logins" value {{ Values: ["{login}"] }} }}'
            f' Values {{ key: "host_user_uid" value {{ Values: ["{uid}"] }} }}'
            f' Values {{ key: "host_user_gid" value {{ Values: ["{uid}"] }} }} }} }}\n')


def test_trait_id_range(auth_server, write_config, run_cli, tmp_path):
    """host_user_uid/gid outside uid_range are honoured inside accounts.trait_id_range
    (NFS homes at 1000-60000), the first login wins a clash, 65534 never."""
    nfs = _free_id(43210)
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={
        "users/ann.txtpb": _trait_user("ann", "ann", nfs),
        "users/zak.txtpb": _trait_user("zak", "zak", nfs),      # clash: ann (first login) wins
        "users/nob.txtpb": _trait_user("nob", "nob", 65534)})   # never
    auth_server(dataset=ds)
    write_config()
    assert run_cli("sync").rc == 0
    pw = {ln.split(":")[0]: ln.split(":") for ln in run_cli("passwd").stdout.splitlines()}
    assert int(pw["ann"][2]) == nfs and int(pw["ann"][3]) == nfs, pw["ann"]
    assert 200000 <= int(pw["zak"][2]) <= 899999999, pw["zak"]
    assert 200000 <= int(pw["nob"][2]) <= 899999999, pw["nob"]
    # a narrower fence: the same trait is now outside it
    write_config(accounts={"trait_id_range": [1000, nfs - 1]})
    assert run_cli("sync").rc == 0
    pw = {ln.split(":")[0]: ln.split(":") for ln in run_cli("passwd").stdout.splitlines()}
    assert 200000 <= int(pw["ann"][2]) <= 899999999, pw["ann"]
    # 0 is never a trait id
    write_config(accounts={"trait_id_range": [0, 5000]})
    res = run_cli("sync")
    assert res.rc != 0 and "accounts.trait_id_range" in res.stderr and "root" in res.stderr, res
