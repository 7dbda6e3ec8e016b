# SPDX-License-Identifier: Apache-2.0
"""test_ssh_cert_ca.py - issue 14 F3: an SSH certificate proves something only when Teleport's
user CA signed it.

With pam.trust_ssh_cert, the key id of a certificate names the Teleport user and its
mfa-verified / teleport-device-* extensions prove per-session MFA / a trusted device.  sshd also
accepts certificates through a cert-authority line a user may write in their own
authorized_keys, so a self-made CA can mint any key id and any extension.  teleport-unix fetches
Teleport's user CA (TrustService.GetCertAuthority), keeps it in the state snapshot and believes a
certificate only when its signature key is one of that CA's keys.

Certificates are made here with ssh-keygen (helpers.SshCA): "teleport" is served by the stand-in
Auth as the cluster's user CA, "self-made" is not.  Through `teleport-unix check --ssh-cert` and
pam_teleport.so under pamtester (SSH_AUTH_INFO_0 set with pam_env, as sshd's ExposeAuthInfo).
"""

import base64
import os

import pytest

import helpers
from test_pam import DEVICE_ROLE, MFA_ROLE, MONA, outcome, pam, pam_module  # noqa: F401 (fixtures)

MFA = {"mfa-verified": "webauthn-1"}


def _world(tmp_path):
    return helpers.make_dataset(str(tmp_path / "ds"), files={"roles/ops-mfa.txtpb": MFA_ROLE,
                                                             "roles/ops-device.txtpb": DEVICE_ROLE,
                                                             "users/mona.txtpb": MONA})


def _cert_file(tmp_path, key_id, ca="teleport", extensions=None, **kw):
    """An OpenSSH certificate file as ssh-keygen writes it ("<type> <base64>")."""
    t, b64 = helpers.ssh_ca(ca).cert(key_id, extensions, **kw)
    path = tmp_path / f"{ca}-{key_id}-{len(os.listdir(tmp_path))}-cert.pub"
    path.write_text(f"{t} {b64}\n")
    return str(path)


def _auth_info(key_id, ca="teleport", extensions=None):
    return helpers.ssh_ca(ca).auth_info(key_id, extensions)


CHECK_CASES = [
    # (name, key id, CA, extensions, login, rc, in the output)
    ("Teleport CA, mfa-verified: the MFA role allows", "mona", "teleport", MFA, "opsmfa", 0,
     "allowed by role 'ops-mfa'"),
    ("Teleport CA, no mfa-verified: refused", "mona", "teleport", None, "opsmfa", 1,
     "requires per-session MFA"),
    ("self-made CA, mfa-verified: MFA bypass refused", "mona", "self-made", MFA, "opsmfa", 1,
     "requires per-session MFA"),
    ("Teleport CA, key id names no Teleport user: refused", "nobody", "teleport", None, "hank", 1,
     "the Teleport SSH certificate's key id 'nobody' names no Teleport user"),
    ("Teleport CA on the shared login: the key id decides", "hank", "teleport", None, "deploy", 0,
     "allowed by role 'deploy'"),
    ("locked dave's self-made cert naming hank on the shared login: nothing", "hank", "self-made", None,
     "deploy", 1, "the login is shared, an identity is needed"),
]


@pytest.mark.parametrize("name,key_id,ca,ext,login,rc,text", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_check_ssh_cert(auth_server, write_config, run_cli, tmp_path, name, key_id, ca, ext, login, rc, text):
    auth_server(dataset=_world(tmp_path), ssh_user_ca=helpers.ssh_ca("teleport").pub)
    write_config(pam={"trust_ssh_cert": True})
    r = run_cli("check", "--ssh-cert", _cert_file(tmp_path, key_id, ca, ext), login)
    assert r.rc == rc and text in r.stdout, r
    if ca != "teleport":
        # a log line says the certificate was ignored, and why
        assert "proves nothing" in r.stderr and "not Teleport's user CA" in r.stderr, r


def test_check_ssh_cert_without_user_ca(auth_server, write_config, run_cli, tmp_path):
    """No user CA known (Auth has none to show): every certificate proves nothing."""
    auth_server(dataset=_world(tmp_path), ssh_user_ca="none")
    write_config(pam={"trust_ssh_cert": True})
    r = run_cli("check", "--ssh-cert", _cert_file(tmp_path, "mona", "teleport", MFA), "opsmfa")
    assert r.rc == 1 and "requires per-session MFA" in r.stdout, r
    assert "user CA is not known" in r.stderr, r
    r = run_cli("sync")
    assert r.rc == 0 and "user CA: 0 keys" in r.stdout, r


def test_check_ssh_cert_bad_input(auth_server, write_config, run_cli, tmp_path):
    """A malformed certificate: a clear log line, no identity, never a crash."""
    auth_server(dataset=_world(tmp_path), ssh_user_ca=helpers.ssh_ca("teleport").pub)
    write_config(pam={"trust_ssh_cert": True})
    good = open(_cert_file(tmp_path, "hank", "teleport"), encoding="ascii").read().split()
    garbage = base64.b64encode(base64.b64decode(good[1]) + b"\0\0\0\0").decode()
    for body, why in ((good[1][:-20], "SSH_AUTH_INFO_0"), ("!!!!" + good[1], "not valid base64"),
                      (garbage, "trailing garbage")):
        p = tmp_path / "bad-cert.pub"
        p.write_text(f"{good[0]} {body}\n")
        r = run_cli("check", "--ssh-cert", str(p), "deploy")
        assert r.rc == 1 and "the login is shared" in r.stdout, r
        assert why in r.stderr and "no identity" in r.stderr, r
    big = tmp_path / "big-cert.pub"
    big.write_text(f"{good[0]} {'A' * 70000}\n")
    r = run_cli("check", "--ssh-cert", str(big), "deploy")
    assert r.rc == 2 and "larger than" in r.stderr, r


PAM_CASES = [
    ("mona", "teleport", MFA, "opsmfa", "allow", "allowed by role 'ops-mfa'"),
    ("mona", "self-made", MFA, "opsmfa", "deny", "requires per-session MFA"),
    ("nobody", "teleport", None, "deploy", "deny", "key id 'nobody' names no Teleport user"),
    ("hank", "self-made", None, "deploy", "deny", "the login is shared"),
    ("hank", "teleport", None, "deploy", "allow", "allowed by role 'deploy'"),
]


@pytest.mark.parametrize("key_id,ca,ext,login,want,text", PAM_CASES)
def test_pam_ssh_cert(pam, auth_server, write_config, tmp_path, key_id, ca, ext, login, want, text):
    auth_server(dataset=_world(tmp_path), ssh_user_ca=helpers.ssh_ca("teleport").pub)
    envconf = tmp_path / "pam_env.conf"
    envconf.write_text(f'SSH_AUTH_INFO_0 DEFAULT="{_auth_info(key_id, ca, ext)}"\n')
    pre = [f"auth optional pam_env.so conffile={envconf} envfile=/dev/null readenv=0"]
    cfg = write_config(pam={"trust_ssh_cert": True})
    res = pam(cfg, login, pre=pre, ops=("setcred", "acct_mgmt"))
    if ca == "teleport" and f"Teleport user '{key_id}'" not in res.stderr:
        pytest.skip("pam_env did not set SSH_AUTH_INFO_0 under pam_wrapper")
    assert outcome(res) == want, res
    assert text in res.stderr, res


def test_offline_uses_the_snapshot_ca(auth_server, write_config, run_cli, tmp_path):
    """sync stores the user CA in the state snapshot; a sync whose CA fetch fails keeps it (and
    users, roles, locks are still refreshed); an offline decision believes only that CA."""
    srv = auth_server(dataset=_world(tmp_path), ssh_user_ca=helpers.ssh_ca("teleport").pub)
    write_config(pam={"trust_ssh_cert": True})
    r = run_cli("sync")
    assert r.rc == 0 and "user CA: 1 key\n" in r.stdout, r
    assert run_cli("sync", json=True).json()["user_ca_keys"] == 1
    r = run_cli("status")
    assert "user CA:    1 key" in r.stdout, r
    assert run_cli("status", json=True).json()["cache"]["user_ca_keys"] == 1

    # Auth fails the CA (only): the sync still succeeds and keeps the previous keys.
    srv.set_control(faults={"/teleport.trust.v1.TrustService/GetCertAuthority": "unavailable"})
    r = run_cli("sync")
    assert r.rc == 0 and "user CA: 1 key (kept from the previous sync: fetching it failed)" in r.stdout, r
    assert "fetching Teleport's user CA failed" in r.stderr, r

    srv.stop()
    mfa_ok = _cert_file(tmp_path, "mona", "teleport", MFA)
    mfa_self = _cert_file(tmp_path, "mona", "self-made", MFA)
    r = run_cli("check", "--offline", "--ssh-cert", mfa_ok, "opsmfa")
    assert r.rc == 0 and "(offline)" in r.stdout, r
    r = run_cli("check", "--offline", "--ssh-cert", mfa_self, "opsmfa")
    assert r.rc == 1 and "requires per-session MFA" in r.stdout, r
    # Online attempt, Auth gone: pam.offline (default: cache) decides from the snapshot's CA.
    r = run_cli("check", "--ssh-cert", mfa_ok, "opsmfa")
    assert r.rc == 0 and "(offline)" in r.stdout, r
