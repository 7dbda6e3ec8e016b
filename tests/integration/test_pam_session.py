# SPDX-License-Identifier: Apache-2.0
"""test_pam_session.py - which PAM phase decides (issue 10 B), through pamtester under
pam_wrapper with the two lines of etc/pam.d/teleport, against the stand-in Auth (`test` dataset).

With pam.trust_ssh_cert an sshd login (service sshd, or SSH_AUTH_INFO_0 in the PAM environment)
is decided in the session phase, where OpenSSH fills SSH_AUTH_INFO_0: the account phase answers
PAM_IGNORE (never a guessed owner).  Every other login (su, trust_ssh_cert off) keeps the account
phase's decision and the session phase ignores it.  test_sshd.py runs the same against the real
sshd."""

import os
import re
import shutil
import subprocess

import pytest

import helpers

PERM_DENIED = "Permission denied"


def include_lines():
    """The account and session lines of the shipped include, as they are."""
    with open(os.path.join(helpers.TOP_SRCDIR, "etc", "pam.d", "teleport"), encoding="utf-8") as f:
        lines = [ln for ln in f.read().splitlines() if ln and not ln.startswith("#")]
    assert [ln.split()[0] for ln in lines] == ["account", "session"], lines
    return lines


@pytest.fixture
def stack(builddir, tmp_path):
    if not shutil.which("pamtester") or not helpers.find_lib("libpam_wrapper.so"):
        pytest.skip("pamtester or libpam_wrapper is not installed")
    module = helpers.module_path(builddir, "pam_teleport.so")
    svc = str(tmp_path / "pam.d")

    def run(service, config, login, op, auth_info=None):
        arg = f"config={config} insecure_perms"
        pre = []
        if auth_info is not None:
            envconf = tmp_path / "pam_env.conf"
            envconf.write_text(f'SSH_AUTH_INFO_0 DEFAULT="{auth_info}"\n')
            pre = [f"auth optional pam_env.so conffile={envconf} envfile=/dev/null readenv=0"]
        lines = pre[:]
        for ln in include_lines():
            lines.append(ln.replace("pam_teleport.so", f"{module} {arg}"))
        lines += ["account required pam_permit.so", "session required pam_permit.so"]
        helpers.write_pam_service(svc, service, lines)
        ops = ("setcred", op) if auth_info is not None else (op,)
        env = {"PAM_WRAPPER_DEBUGLEVEL": "4"}
        if os.environ.get("TU_PRELOAD"):
            env["LD_PRELOAD"] = os.environ["TU_PRELOAD"] + " " + helpers.find_lib("libpam_wrapper.so")
        return helpers.run_pamtester(svc, service, login, *ops, env=env)

    return run


def ok(res):
    return res.rc == 0 and PERM_DENIED not in res.stdout + res.stderr


def test_sshd_login_decided_in_session(stack, auth_server, write_config):
    """bob (locked) logs in over sshd with whatever sshd accepted: the account phase does not
    guess, the session phase refuses."""
    auth_server()
    cfg = write_config(pam={"trust_ssh_cert": True})
    res = stack("sshd", cfg, "bob", "acct_mgmt")
    assert ok(res), res
    assert "deciding there" in res.stderr, res
    res = stack("sshd", cfg, "bob", "open_session")
    assert res.rc != 0 and PERM_DENIED in res.stdout + res.stderr, res
    assert re.search(r"Teleport user 'bob': deny: Teleport user 'bob' is locked", res.stderr), res
    res = stack("sshd", cfg, "frank", "open_session")
    assert ok(res), res


@pytest.mark.parametrize("service,trust", [("su", True), ("login", True), ("sshd", False)])
def test_other_logins_decided_in_account(stack, auth_server, write_config, service, trust):
    auth_server()
    cfg = write_config(pam={"trust_ssh_cert": trust})
    res = stack(service, cfg, "bob", "acct_mgmt")
    assert res.rc != 0 and PERM_DENIED in res.stdout + res.stderr, res
    res = stack(service, cfg, "bob", "open_session")
    assert ok(res), res  # PAM_IGNORE: the account phase decided


def test_session_uses_the_certificate(stack, auth_server, write_config, tmp_path):
    """SSH_AUTH_INFO_0 as sshd sets it for the session: frank's Teleport certificate on root is
    refused (deny rule), on frank allowed; a plain key on root is not a Teleport login."""
    ca = str(tmp_path / "ca")
    for k in (ca, str(tmp_path / "user")):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", ca, "-I", "frank", "-n", "frank,root",
                    str(tmp_path / "user.pub")], check=True)
    cert = open(str(tmp_path / "user-cert.pub")).read().split()
    key = open(str(tmp_path / "user.pub")).read().split()
    auth_server(ssh_user_ca=ca + ".pub")
    cfg = write_config(pam={"trust_ssh_cert": True})
    cert_info = f"publickey {cert[0]} {cert[1]}"
    res = stack("sshd", cfg, "root", "open_session", auth_info=cert_info)
    assert res.rc != 0 and PERM_DENIED in res.stdout + res.stderr, res
    assert "Teleport user 'frank'" in res.stderr, res
    res = stack("sshd", cfg, "frank", "open_session", auth_info=cert_info)
    assert ok(res), res
    res = stack("sshd", cfg, "root", "open_session", auth_info=f"publickey {key[0]} {key[1]}")
    assert ok(res), res  # root with its own key: not a Teleport login, user_unknown=ignore
