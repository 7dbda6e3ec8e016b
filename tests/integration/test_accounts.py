# SPDX-License-Identifier: Apache-2.0
"""test_accounts.py - the POSIX mapping end to end (SPEC §4): stand-in Auth
-> `teleport-unix sync` -> public snapshot -> `teleport-unix passwd/group`
(and getent through libnss_teleport.so.2 where it matters).  Source modes,
owners, traits for uid/gid (inside and outside uid_range), expired users and
bots, skipped names, and order independence across hosts and syncs."""

import os

import pytest

import helpers

from test_sync import home_id, parse_group, parse_passwd

ROLE_KEEP = '''
Kind: "role"
Version: "v7"
Metadata { Name: "keep" Namespace: "default" }
Spec {
  Options { CreateHostUserMode: HOST_USER_MODE_KEEP }
  Allow {
    Logins: ["{{internal.logins}}", "shared"]
    Namespaces: ["default"]
    NodeLabels { Values { key: "env" value { Values: ["dev"] } } }
    HostGroups: ["team-{{internal.logins}}", "everyone"]
  }
}
'''

ROLE_PLAIN = '''
Kind: "role"
Version: "v7"
Metadata { Name: "plain" Namespace: "default" }
Spec {
  Allow {
    Logins: ["plain-{{internal.logins}}"]
    Namespaces: ["default"]
    NodeLabels { Values { key: "*" value { Values: ["*"] } } }
  }
}
'''


def user(name, roles, logins, traits=None, labels=None, expires=None):
    t = "".join(f'    Values {{ key: "{k}" value {{ Values: ["{v}"] }} }}\n' for k, v in (traits or {}).items())
    lab = "".join(f'  Labels {{ key: "{k}" value: "{v}" }}\n' for k, v in (labels or {}).items())
    exp = f"  Expires {{ seconds: {expires} }}\n" if expires else ""
    lg = ", ".join(f'"{x}"' for x in logins)
    rl = ", ".join(f'"{x}"' for x in roles)
    return (f'Kind: "user"\nVersion: "v2"\nMetadata {{\n  Name: "{name}"\n  Namespace: "default"\n{lab}{exp}}}\n'
            f'Spec {{\n  Roles: [{rl}]\n  Traits {{\n    Values {{ key: "logins" value {{ Values: [{lg}] }} }}\n{t}  }}\n}}\n')


USERS = {
    "users/amy.txtpb": user("amy@example.com", ["keep"], ["amy"], {"host_user_uid": "300123", "host_user_gid": "300500"}),
    "users/ben.txtpb": user("ben@example.com", ["keep", "plain"], ["ben"]),
    "users/cat.txtpb": user("cat@example.com", ["keep"], ["cat"], {"host_user_uid": "999"}),  # below trait_id_range
    "users/dan.txtpb": user("dan@example.com", ["plain"], ["dan"]),
    "users/eve.txtpb": user("eve@example.com", ["keep"], ["eve"], expires=1700000000),  # expired 2023
    "users/bot.txtpb": user("bot-ci", ["keep"], ["botlogin"], labels={"teleport.internal/bot": "ci"}),
    "users/zed.txtpb": user("zed@example.com", ["keep"], ["zed", "root", "bad:name", "-x"]),
}


@pytest.fixture
def dataset(tmp_path):
    return helpers.make_dataset(str(tmp_path / "mapping"), base=str(tmp_path / "empty"),
                                files={"roles/keep.txtpb": ROLE_KEEP, "roles/plain.txtpb": ROLE_PLAIN, **USERS})


@pytest.fixture(autouse=True)
def _empty(tmp_path):
    for sub in ("users", "roles", "locks"):
        os.makedirs(tmp_path / "empty" / sub, exist_ok=True)


def sync(run_cli):
    r = run_cli("sync", json=True)
    assert r.rc == 0, r
    return r.json()


def test_host_user_creation_mode(auth_server, dataset, write_config, run_cli):
    auth_server(dataset=dataset)
    write_config()
    doc = sync(run_cli)
    pw = parse_passwd(run_cli("passwd").stdout)
    # ben has keep + plain: plain has no host-user mode ("off"), which vetoes keep for ben.
    # dan has plain only; eve is expired; bot-ci is a bot; zed's root and invalid names are skipped.
    assert sorted(pw) == ["amy", "cat", "shared", "zed"], pw
    assert doc["accounts"] == 4
    assert doc["skipped"] >= 1
    # uid/gid from traits inside accounts.trait_id_range; below it (999) the hash is used.
    assert (pw["amy"]["uid"], pw["amy"]["gid"]) == (300123, 300500)
    assert pw["cat"]["uid"] == home_id("cat") and pw["cat"]["gid"] == pw["cat"]["uid"]
    # shared: granted to amy, cat and zed (no user named shared, no logins trait): smallest name owns.
    assert pw["shared"]["gecos"] == "amy@example.com"
    gr = parse_group(run_cli("group").stdout)
    # amy's trait gid becomes a group named amy; team-<login> groups per owner; everyone for all.
    assert gr["amy"]["gid"] == 300500
    assert gr["everyone"]["members"] == ["amy", "cat", "shared", "zed"]
    assert gr["team-amy"]["members"] == ["amy", "shared"]  # shared's owner is amy
    ids = [g["gid"] for g in gr.values()] + [p["uid"] for p in pw.values()]
    assert len(set(g["gid"] for g in gr.values())) == len(gr)
    assert all(200000 <= i <= 899999999 for i in ids)


def test_all_logins_mode(auth_server, dataset, write_config, run_cli):
    auth_server(dataset=dataset)
    write_config(accounts={"source": "all_logins"})
    sync(run_cli)
    pw = parse_passwd(run_cli("passwd").stdout)
    assert sorted(pw) == ["amy", "ben", "cat", "plain-ben", "plain-dan", "shared", "zed"], pw
    assert pw["plain-dan"]["gecos"] == "dan@example.com"
    assert "eve" not in pw and "botlogin" not in pw and "root" not in pw


def test_same_result_on_another_host_and_order(auth_server, dataset, write_config, run_cli, tmp_path):
    """Two hosts with the same labels (different names/ids) and a re-sync give identical files."""
    auth_server(dataset=dataset)
    write_config()
    sync(run_cli)
    first = run_cli("passwd").stdout + run_cli("group").stdout
    write_config(host={"name": "web-2", "id": "0b7c3f1e-0000-4000-8000-000000000002"},
                 cache={"dir": str(tmp_path / "cache2")}, name="other.yaml")
    sync(run_cli)
    second = run_cli("passwd").stdout + run_cli("group").stdout
    assert first == second


def test_getent_hides_skipped_names(auth_server, dataset, write_config, run_cli, builddir, cache_dir, tmp_path):
    if not helpers.find_lib("libnss_wrapper.so"):
        pytest.skip("nss_wrapper not installed")
    auth_server(dataset=dataset)
    write_config()
    sync(run_cli)
    env = {"TELEPORT_UNIX_CACHE_DIR": cache_dir}
    wd = str(tmp_path / "getent")
    for name in ("root", "bad:name", "eve", "botlogin", "dan", "ben"):
        g = helpers.run_getent(builddir, "passwd", name, workdir=wd, env=env)
        assert g.rc == 2 and g.stdout == "", (name, g)
    g = helpers.run_getent(builddir, "passwd", "amy", workdir=wd, env=env)
    assert g.stdout == "amy:*:300123:300500:amy@example.com:/home/amy:/bin/bash\n", g


def test_no_accounts(auth_server, tmp_path, write_config, run_cli):
    """An empty cluster: sync writes valid empty snapshots; listing them is not an error."""
    auth_server(dataset=str(tmp_path / "empty"))
    write_config()
    doc = sync(run_cli)
    assert (doc["users"], doc["roles"], doc["locks"], doc["accounts"], doc["groups"]) == (0, 0, 0, 0, 0)
    for db in ("passwd", "group"):
        r = run_cli(db)
        assert (r.rc, r.stdout) == (0, ""), r
        r = run_cli(db, json=True)
        assert r.rc == 0 and r.json() == {db: []}, r
    assert run_cli("passwd", "anyone").rc == 1
