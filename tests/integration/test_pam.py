# SPDX-License-Identifier: Apache-2.0
"""test_pam.py - pam_teleport.so through a real PAM stack: pamtester under
pam_wrapper, against the stand-in Auth server (`test` dataset, host labels
env: dev, source host_user_creation).

Every PAM code of SPEC §5 is checked through pamtester's message (it prints
pam_strerror of the result), the [success=ok user_unknown=ignore default=bad]
stacking lets non-Teleport logins through to pam_permit, a broken config
fails closed, Auth down uses the cache or answers PAM_AUTHINFO_UNAVAIL.
With a sanitizer build set TU_PRELOAD to its runtime(s) (put first in LD_PRELOAD).
"""

import os
import re
import shutil

import pytest

import helpers

PERM_DENIED = "Permission denied"
USER_UNKNOWN = "User not known to the underlying authentication module"
AUTHINFO_UNAVAIL = "Authentication service cannot retrieve authentication info"
SUCCESS = "account management done"


@pytest.fixture(scope="module")
def pam_module(builddir):
    if not shutil.which("pamtester"):
        pytest.skip("pamtester is not installed")
    if not helpers.find_lib("libpam_wrapper.so"):
        pytest.skip("libpam_wrapper is not installed")
    p = helpers.module_path(builddir, "pam_teleport.so")
    if not os.path.exists(p):
        pytest.skip(f"{p} not built")
    return p


def pam_env(env=None):
    """Extra environment for pamtester: pam_wrapper prints pam_syslog lines on
    stderr (level 4 shows info/notice too); TU_PRELOAD puts a sanitizer
    runtime first (e.g. TU_PRELOAD="$(gcc -print-file-name=libasan.so)")."""
    e = {"PAM_WRAPPER_DEBUGLEVEL": "4", **(env or {})}
    if os.environ.get("TU_PRELOAD"):
        e["LD_PRELOAD"] = os.environ["TU_PRELOAD"] + " " + helpers.find_lib("libpam_wrapper.so")
    return e


@pytest.fixture
def pam(pam_module, tmp_path):
    """pam(config, login, stacked=False, args=(), pre=(), ops=None) -> Result."""
    service_dir = str(tmp_path / "pam.d")

    def run(config, login, stacked=False, args=(), pre=(), ops=None, env=None):
        arg = " ".join([f"config={config}", "insecure_perms", *args])
        if stacked:
            lines = [*pre,
                     f"account [success=ok user_unknown=ignore default=bad] {pam_module} {arg}",
                     "account required pam_permit.so"]
        else:
            lines = [*pre, f"account required {pam_module} {arg}"]
        helpers.write_pam_service(service_dir, "tu-test", lines)
        return helpers.run_pamtester(service_dir, "tu-test", login, *(ops or ("acct_mgmt",)), env=pam_env(env))

    return run


def outcome(res):
    text = res.stdout + res.stderr
    if res.rc == 0 and SUCCESS in text:
        return "allow"
    for word, msg in (("deny", PERM_DENIED), ("unknown", USER_UNKNOWN), ("unavail", AUTHINFO_UNAVAIL)):
        if msg in text:
            return word
    return f"other rc={res.rc}: {text!r}"


# login -> expected verdict on the test host (env: dev), from tests/fixtures/README.md
CASES = [
    ("alice", "unknown"),    # allowed, but no account: access (host users off) vetoes dev's keep
    ("ubuntu", "unknown"),   # alice's logins trait: same
    ("robert", "deny"),      # bob: LoginStatus locked
    ("bob", "deny"),
    ("dave", "deny"),        # lock-user-dave
    ("ivan", "deny"),        # role contractor locked
    ("judy", "allow"),       # only an expired lock
    ("frank", "allow"),
    ("deploy", "deny"),      # shared by gina and hank, no identity
    ("carol", "unknown"),    # expired user owns nothing
    ("root", "unknown"),     # never a Teleport account
    ("localonly", "unknown"),
]


@pytest.mark.parametrize("login,want", CASES)
def test_pam_verdicts(pam, auth_server, write_config, login, want):
    auth_server()
    cfg = write_config()
    res = pam(cfg, login)
    assert outcome(res) == want, res
    # one syslog line per decision (pam_wrapper prints syslog on stderr)
    word = {"allow": "allow", "deny": "deny", "unknown": "unknown"}[want]
    assert f"login '{login}' service 'tu-test' rhost '-' Teleport user " in res.stderr, res
    assert f": {word}: " in res.stderr, res


def test_pam_denied_message_and_silent(pam, auth_server, write_config):
    auth_server()
    cfg = write_config()
    res = pam(cfg, "dave")
    assert outcome(res) == "deny", res
    assert "Teleport: access denied" in res.stdout + res.stderr


def test_pam_stacking_lets_local_accounts_through(pam, auth_server, write_config):
    auth_server()
    cfg = write_config()
    # not a Teleport login: user_unknown=ignore, then pam_permit
    assert outcome(pam(cfg, "localonly", stacked=True)) == "allow"
    assert outcome(pam(cfg, "root", stacked=True)) == "allow"
    # a Teleport login still decided by us
    assert outcome(pam(cfg, "frank", stacked=True)) == "allow"
    res = pam(cfg, "dave", stacked=True)
    assert res.rc != 0 and outcome(res) == "deny", res


def test_pam_malformed_config_fails_closed(pam, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("auth: [this is: not valid\n")
    for stacked in (False, True):
        res = pam(str(bad), "localonly", stacked=stacked)
        assert res.rc != 0, res
        assert outcome(res) == "deny", res
        assert "configuration error" in res.stdout + res.stderr
        assert "configuration error, failing closed" in res.stderr  # the log line
    missing = pam(str(tmp_path / "nope.yaml"), "alice")
    assert outcome(missing) == "deny", missing


def test_pam_unknown_argument_is_ignored(pam, auth_server, write_config):
    auth_server()
    cfg = write_config()
    res = pam(cfg, "frank", args=("frobnicate", "debug"))
    assert outcome(res) == "allow", res
    assert "unknown argument 'frobnicate', ignoring" in res.stderr, res


def test_pam_auth_down_without_cache_is_unavail(pam, write_config):
    cfg = write_config(addresses="127.0.0.1:1")
    res = pam(cfg, "frank")
    assert outcome(res) == "unavail", res
    assert "no usable cache" in res.stderr, res
    # and the stacking treats it as bad
    res = pam(cfg, "frank", stacked=True)
    assert res.rc != 0, res


def test_pam_offline_from_cache_then_deny_mode(pam, auth_server, write_config):
    srv = auth_server()
    cfg = write_config()
    # an online decision without identity fetches everything and refreshes the cache
    assert outcome(pam(cfg, "frank")) == "allow"
    srv.stop()
    down = write_config(addresses="127.0.0.1:1", name="down.yaml")
    res = pam(down, "frank")
    assert outcome(res) == "allow", res
    assert "(offline, from cache)" in res.stderr, res
    assert outcome(pam(down, "dave")) == "deny"
    assert outcome(pam(down, "localonly")) == "unknown"
    deny = write_config(addresses="127.0.0.1:1", name="deny.yaml", pam={"offline": "deny"})
    res = pam(deny, "frank")
    assert outcome(res) == "unavail", res
    assert "pam.offline is deny" in res.stderr, res


def test_pam_blackhole_is_bounded(pam, blackhole_server, write_config):
    cfg = write_config(auth={"timeouts": {"connect": "1s", "request": "1s"}})
    res = pam(cfg, "frank")
    assert outcome(res) == "unavail", res
    assert res.elapsed < 10, res


def test_pam_trusted_teleport_username(pam, auth_server, write_config, tmp_path):
    """TELEPORT_USERNAME from the PAM environment (pam_env sets it in setcred)."""
    auth_server()
    envconf = tmp_path / "pam_env.conf"
    envconf.write_text("TELEPORT_USERNAME DEFAULT=gina\n")
    pre = [f"auth optional pam_env.so conffile={envconf} envfile=/dev/null readenv=0"]
    trusted = write_config(pam={"trust_teleport_env": True}, name="trusted.yaml")
    res = pam(trusted, "deploy", pre=pre, ops=("setcred", "acct_mgmt"))
    if outcome(res) == "deny" and "shared" in res.stdout + res.stderr:
        pytest.skip("pam_env did not set TELEPORT_USERNAME under pam_wrapper")
    assert outcome(res) == "allow", res
    untrusted = write_config(name="untrusted.yaml")
    assert outcome(pam(untrusted, "deploy", pre=pre, ops=("setcred", "acct_mgmt"))) == "deny"


def test_pam_other_phases_ignore(pam_module, tmp_path):
    service_dir = str(tmp_path / "pam.d")
    helpers.write_pam_service(service_dir, "tu-other", [
        f"auth optional {pam_module} config=/nonexistent",
        "auth required pam_permit.so",
        f"session optional {pam_module} config=/nonexistent",
        "session required pam_permit.so",
    ])
    res = helpers.run_pamtester(service_dir, "tu-other", "alice", "authenticate", "open_session",
                                "close_session", env=pam_env())
    assert res.rc == 0, res


def _cert_auth_info(key_id, cert_type=1, extensions=None, ca="teleport", **kw):
    """An SSH_AUTH_INFO_0 line with a real ed25519 user certificate (cert_type 2: a host
    certificate) made by ssh-keygen, signed by the session's SSH CA called ca: "teleport" is the
    one tests serve as Teleport's user CA (auth_server(ssh_user_ca=TELEPORT_CA)), any other name
    a self-made CA.  extensions {name: value} ("" = no value)."""
    return helpers.ssh_ca(ca).auth_info(key_id, extensions, host=cert_type == 2, **kw)


def teleport_ca():
    """The public key file of the CA served as Teleport's user CA."""
    return helpers.ssh_ca("teleport").pub


@pytest.mark.parametrize("key_id,trust,want", [
    ("hank", True, "allow"),       # the certificate says who: the shared login is fine
    ("hank", False, "deny"),       # not trusted: shared login refused
    ("erin", True, "deny"),        # erin has no access to deploy here
    ("nobody", True, "deny"),      # no such Teleport user
])
def test_pam_trusted_ssh_certificate(pam, auth_server, write_config, tmp_path, key_id, trust, want):
    """SSH_AUTH_INFO_0 in the PAM environment (sshd ExposeAuthInfo; pam_env here), with a
    certificate from Teleport's user CA (served by Auth)."""
    auth_server(ssh_user_ca=teleport_ca())
    envconf = tmp_path / "pam_env.conf"
    envconf.write_text(f'SSH_AUTH_INFO_0 DEFAULT="{_cert_auth_info(key_id)}"\n')
    pre = [f"auth optional pam_env.so conffile={envconf} envfile=/dev/null readenv=0"]
    cfg = write_config(pam={"trust_ssh_cert": trust})
    res = pam(cfg, "deploy", pre=pre, ops=("setcred", "acct_mgmt"))
    assert outcome(res) == want, res
    if trust:
        assert f"Teleport user '{key_id}'" in res.stderr, res
    if trust and key_id == "nobody":
        assert "the Teleport SSH certificate's key id 'nobody' names no Teleport user" in res.stderr, res


@pytest.mark.parametrize("tp_user,login,want,reason", [
    ("frank", "root", "deny", "denied by role 'no-root' (deny logins 'root')"),
    ("carol", "carol", "deny", "Teleport user 'carol' has expired"),
    ("bob", "robert", "deny", "Teleport user 'bob' is locked"),
    ("dave", "dave", "deny", "locked by lock 'lock-user-dave' (user=dave)"),
    ("ivan", "ivan", "deny", "locked by lock 'lock-role-contractor' (role=contractor)"),
    ("erin", "erin", "deny", "no role allows login 'erin' on this host"),
    ("frank", "frank", "allow", "allowed by role"),
])
def test_pam_reasons_with_identity(pam, auth_server, write_config, tmp_path, tp_user, login, want, reason):
    """With TELEPORT_USERNAME trusted, each kind of refusal is logged with its reason."""
    auth_server()
    envconf = tmp_path / "pam_env.conf"
    envconf.write_text(f"TELEPORT_USERNAME DEFAULT={tp_user}\n")
    pre = [f"auth optional pam_env.so conffile={envconf} envfile=/dev/null readenv=0"]
    cfg = write_config(pam={"trust_teleport_env": True})
    res = pam(cfg, login, pre=pre, ops=("setcred", "acct_mgmt"))
    assert outcome(res) == want, res
    assert reason in res.stderr, res


@pytest.mark.parametrize("login,want", [("alice", "allow"), ("ubuntu", "allow"), ("erin", "unknown"),
                                        ("robert", "deny"), ("localonly", "unknown")])
def test_pam_source_all_logins(pam, auth_server, write_config, login, want):
    """accounts.source: all_logins: every granted login is an account, host-user mode or not."""
    auth_server()
    cfg = write_config(accounts={"source": "all_logins"})
    assert outcome(pam(cfg, login)) == want


MFA_ROLE = """# proto-message: types.RoleV6
Kind: "role"
Version: "v7"
Metadata { Name: "ops-mfa" Namespace: "default" }
Spec {
  Options { CreateHostUserMode: HOST_USER_MODE_KEEP RequireMFAType: SESSION }
  Allow { Logins: ["opsmfa"] Namespaces: ["default"] NodeLabels { Values { key: "*" value { Values: ["*"] } } } }
}
"""
DEVICE_ROLE = """# proto-message: types.RoleV6
Kind: "role"
Version: "v7"
Metadata { Name: "ops-device" Namespace: "default" }
Spec {
  Options { CreateHostUserMode: HOST_USER_MODE_KEEP DeviceTrustMode: "required" }
  Allow { Logins: ["opsdev"] Namespaces: ["default"] NodeLabels { Values { key: "*" value { Values: ["*"] } } } }
}
"""
MONA = """# proto-message: types.UserV2
Kind: "user"
Version: "v2"
Metadata { Name: "mona" Namespace: "default" }
Spec { Roles: ["ops-mfa", "ops-device"] }
"""


@pytest.mark.parametrize("login,needs", [("opsmfa", "per-session MFA"), ("opsdev", "a trusted device")])
def test_pam_mfa_and_device_trust_roles(pam, auth_server, write_config, run_cli, tmp_path, login, needs):
    """A role with require_session_mfa or device_trust_mode: required: Teleport refuses a session
    that has not proven them, and an OpenSSH login proves neither, so PAM and `check` refuse it,
    online and from the cache; a session that Teleport's own SSH service opened (trusted
    TELEPORT_USERNAME) was checked by Teleport and is allowed."""
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={
        "roles/ops-mfa.txtpb": MFA_ROLE, "roles/ops-device.txtpb": DEVICE_ROLE, "users/mona.txtpb": MONA})
    srv = auth_server(dataset=ds)
    cfg = write_config()
    res = pam(cfg, login)
    assert outcome(res) == "deny", res
    assert f"requires {needs}" in res.stderr, res
    r = run_cli("check", "mona", login)
    assert r.rc == 1 and f"requires {needs}" in r.stdout, r

    envconf = tmp_path / "pam_env.conf"
    envconf.write_text("TELEPORT_USERNAME DEFAULT=mona\n")
    pre = [f"auth optional pam_env.so conffile={envconf} envfile=/dev/null readenv=0"]
    trusted = write_config(pam={"trust_teleport_env": True}, name="trusted.yaml")
    res = pam(trusted, login, pre=pre, ops=("setcred", "acct_mgmt"))
    if outcome(res) == "deny" and f"requires {needs}" in res.stderr and "mona" not in res.stderr:
        pytest.skip("pam_env did not set TELEPORT_USERNAME under pam_wrapper")
    assert outcome(res) == "allow", res

    # From the cache: the options survive the private snapshot.
    assert run_cli("sync").rc == 0
    srv.stop()
    r = run_cli("check", "--offline", "mona", login)
    assert r.rc == 1 and f"requires {needs}" in r.stdout, r
    res = pam(cfg, login)
    assert outcome(res) == "deny" and f"requires {needs}" in res.stderr, res


@pytest.mark.parametrize("login,extensions,want", [
    ("opsmfa", {"permit-pty": ""}, "deny"),
    ("opsmfa", {"mfa-verified": "webauthn-1", "permit-pty": ""}, "allow"),
    ("opsdev", {"mfa-verified": "webauthn-1"}, "deny"),
    ("opsdev", {"teleport-device-id": "d1", "teleport-device-asset-tag": "C02X",
                "teleport-device-credential-id": "c1"}, "allow"),
    ("opsdev", {"teleport-device-id": "d1", "teleport-device-asset-tag": "C02X"}, "deny"),
])
def test_pam_ssh_certificate_proves_mfa_or_device(pam, auth_server, write_config, tmp_path, login, extensions, want):
    """With pam.trust_ssh_cert (sshd verified the certificate against Teleport's user CA), a
    per-session MFA certificate (extension mfa-verified) or a device-bound one (the three
    teleport-device-* extensions) proves what the role requires, as Teleport's own SSH service
    reads the same certificate; without them the login is refused."""
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={
        "roles/ops-mfa.txtpb": MFA_ROLE, "roles/ops-device.txtpb": DEVICE_ROLE, "users/mona.txtpb": MONA})
    auth_server(dataset=ds, ssh_user_ca=teleport_ca())
    envconf = tmp_path / "pam_env.conf"
    envconf.write_text(f'SSH_AUTH_INFO_0 DEFAULT="{_cert_auth_info("mona", extensions=extensions)}"\n')
    pre = [f"auth optional pam_env.so conffile={envconf} envfile=/dev/null readenv=0"]
    cfg = write_config(pam={"trust_ssh_cert": True})
    res = pam(cfg, login, pre=pre, ops=("setcred", "acct_mgmt"))
    if want == "deny" and "Teleport user 'mona'" not in res.stderr:
        pytest.skip("pam_env did not set SSH_AUTH_INFO_0 under pam_wrapper")
    assert outcome(res) == want, res
    assert "Teleport user 'mona'" in res.stderr, res


def _auth_pref(mfa="OFF", locking="", device=""):
    dt = f' DeviceTrust {{ Mode: "{device}" }}' if device else ""
    lm = f' LockingMode: "{locking}"' if locking else ""
    return ("# proto-message: types.AuthPreferenceV2\n"
            'Kind: "cluster_auth_preference" Version: "v2" Metadata { Name: "cluster-auth-preference" }\n'
            f'Spec {{ Type: "local" SecondFactor: "on" RequireMFAType: {mfa}{lm}{dt} }}\n')


@pytest.mark.parametrize("profile", ["v16", "v14"])
def test_pam_cluster_requires_session_mfa(pam, auth_server, write_config, run_cli, tmp_path, profile):
    """auth_preference require_session_mfa (cluster-wide): every login Teleport's RBAC allows needs
    per-session MFA, which an OpenSSH login cannot prove; a session opened by Teleport's SSH service
    (trusted TELEPORT_USERNAME) can.  Read with ClusterConfigService.GetAuthPreference (v16) or the
    legacy AuthService.GetAuthPreference (v14), online and from the cache."""
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={"auth_preference.txtpb": _auth_pref("SESSION")})
    srv = auth_server(dataset=ds, profile=profile)
    cfg = write_config()
    needs = "the cluster requires per-session MFA (auth_preference require_session_mfa)"
    res = pam(cfg, "frank")
    assert outcome(res) == "deny" and needs in res.stderr, res
    assert outcome(pam(cfg, "localonly")) == "unknown"   # not Teleport's: the rule does not reach it
    r = run_cli("check", "frank", "frank")
    assert r.rc == 1 and needs in r.stdout, r
    r = run_cli("user", "frank")
    assert r.rc == 0, r
    assert re.search(r"^Cluster: +requires per-session MFA$", r.stdout, re.M), r
    assert re.search(r"^Refused: +frank: login 'frank' is allowed by role but the cluster requires", r.stdout, re.M), r
    doc = run_cli("user", "frank", json=True).json()
    assert doc["cluster"] == {"require_session_mfa": True, "device_trust_mode": "", "locking_mode": ""}, doc
    assert [x["login"] for x in doc["refused"]] == doc["logins"] and needs in doc["refused"][0]["reason"], doc

    envconf = tmp_path / "pam_env.conf"
    envconf.write_text("TELEPORT_USERNAME DEFAULT=frank\n")
    pre = [f"auth optional pam_env.so conffile={envconf} envfile=/dev/null readenv=0"]
    trusted = write_config(pam={"trust_teleport_env": True}, name="trusted.yaml")
    res = pam(trusted, "frank", pre=pre, ops=("setcred", "acct_mgmt"))
    if outcome(res) == "deny" and needs in res.stderr and "frank" not in res.stderr:
        pytest.skip("pam_env did not set TELEPORT_USERNAME under pam_wrapper")
    assert outcome(res) == "allow", res

    assert run_cli("sync").rc == 0
    srv.stop()
    res = pam(cfg, "frank")
    assert outcome(res) == "deny" and needs in res.stderr and "offline" in res.stderr, res
    r = run_cli("check", "--offline", "frank", "frank")
    assert r.rc == 1 and needs in r.stdout, r


def test_pam_cluster_device_trust_and_locking_mode(pam, auth_server, write_config, run_cli, tmp_path):
    """device_trust.mode: required refuses what Teleport would; locking_mode: strict refuses offline
    decisions (the lock list cannot be current), while online ones and best_effort go through."""
    ds = helpers.make_dataset(str(tmp_path / "dt"), files={"auth_preference.txtpb": _auth_pref(device="required")})
    auth_server(dataset=ds)
    cfg = write_config()
    res = pam(cfg, "frank")
    assert outcome(res) == "deny" and "the cluster requires a trusted device" in res.stderr, res

    ds = helpers.make_dataset(str(tmp_path / "strict"), files={"auth_preference.txtpb": _auth_pref(locking="strict")})
    srv = auth_server(dataset=ds)
    cfg = write_config(name="strict.yaml")
    assert outcome(pam(cfg, "frank")) == "allow"
    assert run_cli("sync", config=cfg).rc == 0
    srv.stop()
    res = pam(cfg, "frank")
    assert outcome(res) == "deny" and "the cluster's locking_mode is strict" in res.stderr, res
    r = run_cli("check", "--offline", "frank", "frank", config=cfg)
    assert r.rc == 1 and "locking_mode is strict" in r.stdout, r


@pytest.mark.parametrize("fault", ["unavailable", "delay=5"])
def test_pam_auth_preference_failure_never_allows(pam, auth_server, write_config, run_cli, tmp_path, fault):
    """When GetAuthPreference fails or hangs mid-decision, the login is decided as if Auth were
    unreachable (from the cache, which holds the cluster's requirement), never as if the cluster
    required nothing."""
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={"auth_preference.txtpb": _auth_pref("SESSION")})
    srv = auth_server(dataset=ds)
    write_config()
    assert run_cli("sync").rc == 0
    srv.stop()
    v1 = "/teleport.clusterconfig.v1.ClusterConfigService/GetAuthPreference"
    auth_server(dataset=ds, faults=[f"{v1}={fault}", f"/proto.AuthService/GetAuthPreference={fault}"])
    cfg = write_config(auth={"timeouts": {"connect": "1s", "request": "1s"}}, name="faulty.yaml")
    res = pam(cfg, "frank")
    assert outcome(res) == "deny", res
    assert "the cluster requires per-session MFA" in res.stderr and "offline" in res.stderr, res
    strict = write_config(auth={"timeouts": {"connect": "1s", "request": "1s"}}, pam={"offline": "deny"},
                          name="strict.yaml")
    assert outcome(pam(strict, "frank")) == "unavail"
