# SPDX-License-Identifier: Apache-2.0
"""test_sync.py - `teleport-unix sync`, `passwd`, `group` and `cache clear`
against the stand-in Auth server (SPEC §6, §7): the cache files and their
modes, the printed counts, getent-style output byte-for-byte equal to
`getent` through libnss_teleport.so.2 (nss_wrapper), exit codes, --json, and
a failed sync (Auth down or black-holed) leaving the cache untouched."""

import json
import os
import re
import stat
import fcntl
import subprocess
import threading
import time

import pytest

import helpers

# The `test` dataset on a host labelled env=dev with source host_user_creation
# (tests/fixtures/README.md).  alice is absent: her `access` role matches every
# node and has no host-user mode, which Teleport reads as "off" and which vetoes
# dev's keep (API.md §5).  carol is expired, erin has prod only, mallory's
# invalid logins and every root are skipped.
# The dataset used here is `test` without frank (roles dev + no-root): whether no-root's deny
# (logins [root] on every node) takes all of frank's logins or only root is rbac's business,
# tested there, not here.
HUC_LOGINS = ["bob", "dave", "deploy", "ivan", "judy", "mallory", "olga", "robert", "sam"]
# With source all_logins, `access` also gives alice her logins-trait logins.
ALL_LOGINS = sorted(HUC_LOGINS + ["alice", "ubuntu"])
UID_MIN, UID_MAX = 200000, 899999999


def fnv1a64(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def home_id(name, lo=UID_MIN, hi=UID_MAX):
    """base/idhash.h's home slot (no reserved ids inside the default range)."""
    return lo + fnv1a64(name) % (hi - lo + 1)


def parse_passwd(text):
    out = {}
    for line in text.splitlines():
        f = line.split(":")
        assert len(f) == 7, line
        out[f[0]] = {"uid": int(f[2]), "gid": int(f[3]), "gecos": f[4], "dir": f[5], "shell": f[6]}
    return out


def parse_group(text):
    out = {}
    for line in text.splitlines():
        f = line.split(":")
        assert len(f) == 4, line
        out[f[0]] = {"gid": int(f[2]), "members": f[3].split(",") if f[3] else []}
    return out


def local_group_names():
    with open("/etc/group", encoding="utf-8", errors="replace") as f:
        return {line.split(":", 1)[0] for line in f if ":" in line}


def files_in(d):
    return {n: os.stat(os.path.join(d, n)) for n in os.listdir(d) if not n.startswith(".")}


@pytest.fixture
def dataset(tmp_path):
    return helpers.make_dataset(str(tmp_path / "dataset"), remove=("users/frank.txtpb",))


@pytest.fixture
def synced(auth_server, dataset, write_config, run_cli, cache_dir):
    auth_server(dataset=dataset)
    write_config()
    r = run_cli("sync")
    assert r.rc == 0, r
    return r


def test_sync_writes_both_files_with_modes(synced, cache_dir):
    assert re.fullmatch(r"users 12, roles 7, locks 2, accounts 9, groups \d+\nuser CA: 1 key\n", synced.stdout), synced
    assert synced.stderr == "" or "skipping" in synced.stderr, synced
    st = files_in(cache_dir)
    assert stat.S_IMODE(st["accounts.db"].st_mode) == 0o644
    assert stat.S_IMODE(st["state.db"].st_mode) == 0o600
    assert st["accounts.db"].st_uid == os.geteuid()
    # the host identity read from the certificate (issue 10, for offline decisions): private
    assert stat.S_IMODE(st["host.identity"].st_mode) == 0o600
    # No temp files left behind.
    assert sorted(st) == ["accounts.db", "host.identity", "state.db"], sorted(os.listdir(cache_dir))
    # The public file carries no secrets: no trait values that are not served, no lock messages.
    with open(os.path.join(cache_dir, "accounts.db"), "rb") as f:
        pub = f.read()
    assert b"unix_login" not in pub and b"lock-user-dave" not in pub and b"contractor" not in pub


def test_sync_creates_cache_dir(auth_server, dataset, write_config, run_cli, tmp_path):
    auth_server(dataset=dataset)
    d = tmp_path / "new" / "cache"
    write_config(cache={"dir": str(d)})
    r = run_cli("sync")
    assert r.rc == 0, r
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o755
    assert (d / "accounts.db").exists() and (d / "state.db").exists()


def test_sync_json(auth_server, dataset, write_config, run_cli, cache_dir):
    auth_server(dataset=dataset)
    write_config()
    r = run_cli("sync", json=True)
    assert r.rc == 0, r
    doc = r.json()
    assert doc["users"] == 12 and doc["roles"] == 7 and doc["locks"] == 2
    assert doc["accounts"] == len(HUC_LOGINS)
    assert doc["groups"] >= len(HUC_LOGINS)
    assert doc["cache_dir"] == cache_dir
    # One document, nothing else on stdout; no progress on stderr (not a TTY).
    assert r.stdout.count("\n") == 1
    assert "fetching" not in r.stderr


def test_passwd_lists_the_accounts(synced, run_cli):
    r = run_cli("passwd")
    assert r.rc == 0, r
    pw = parse_passwd(r.stdout)
    assert sorted(pw) == HUC_LOGINS
    assert list(pw) == sorted(pw)  # enumeration in login order
    for login, e in pw.items():
        assert UID_MIN <= e["uid"] <= UID_MAX, (login, e)
        assert e["dir"] == f"/home/{login}" and e["shell"] == "/bin/bash"
    assert len({e["uid"] for e in pw.values()}) == len(pw)
    # Owners: the user of that name, else the logins trait, else the smallest grantee.
    assert pw["bob"]["gecos"] == "bob"
    assert pw["robert"]["gecos"] == "bob"
    assert pw["sam"]["gecos"] == "sam@example.com"
    assert pw["deploy"]["gecos"] == "gina"
    # Hashed uids are the documented hash of the login (no collisions among these few).
    for login, e in pw.items():
        assert e["uid"] == home_id(login), login
        assert e["gid"] == e["uid"], login  # user-private group


def test_passwd_one_and_exit_codes(synced, run_cli):
    r = run_cli("passwd", "bob")
    assert r.rc == 0, r
    uid = home_id("bob")
    assert r.stdout == f"bob:*:{uid}:{uid}:bob:/home/bob:/bin/bash\n"
    r2 = run_cli("passwd", str(uid))
    assert (r2.rc, r2.stdout) == (0, r.stdout)
    for missing in ("nobody-here", "root", "carol", "erin", "alice", "bad:name", "12"):
        r = run_cli("passwd", missing)
        assert (r.rc, r.stdout) == (1, ""), (missing, r)
    r = run_cli("passwd", "a", "b")
    assert r.rc == 2 and r.stderr.startswith("teleport-unix: passwd: "), r


def test_group_output(synced, run_cli):
    r = run_cli("group")
    assert r.rc == 0, r
    gr = parse_group(r.stdout)
    local = local_group_names()
    # user-private groups, plus dev's host_groups that are not local groups.
    for login in HUC_LOGINS:
        assert gr[login]["gid"] == home_id(login), login
    for g in ("developers", "docker"):
        if g in local:
            assert g not in gr
        else:
            assert UID_MIN <= gr[g]["gid"] <= UID_MAX
            assert gr[g]["members"] == sorted(["bob", "dave", "judy", "mallory", "robert", "sam"]), gr[g]
    # deploy's host group "deploy" is the deploy account's own group: members are not repeated.
    assert gr["deploy"]["members"] == []
    gids = [e["gid"] for e in gr.values()]
    assert len(set(gids)) == len(gids)
    one = run_cli("group", "deploy")
    assert one.rc == 0 and one.stdout == f"deploy:*:{gr['deploy']['gid']}:\n", one
    assert run_cli("group", str(gr["deploy"]["gid"])).stdout == one.stdout
    assert run_cli("group", "nope").rc == 1


def test_passwd_group_json(synced, run_cli):
    r = run_cli("passwd", json=True)
    assert r.rc == 0, r
    doc = r.json()
    assert [e["name"] for e in doc["passwd"]] == HUC_LOGINS
    text = run_cli("passwd").stdout.splitlines()
    assert [e["line"] for e in doc["passwd"]] == text
    bob = next(e for e in doc["passwd"] if e["name"] == "bob")
    assert bob == {"name": "bob", "uid": home_id("bob"), "gid": home_id("bob"), "gecos": "bob",
                   "dir": "/home/bob", "shell": "/bin/bash", "line": text[0]}
    r = run_cli("group", "deploy", json=True)
    assert r.rc == 0, r
    assert r.json()["group"][0]["members"] == []
    r = run_cli("passwd", "nobody-here", json=True)
    assert r.rc == 1 and r.json() == {"passwd": []}, r


def test_cli_equals_getent(synced, run_cli, builddir, cache_dir, tmp_path):
    """SPEC §7 / STYLE §2.4: the CLI prints exactly what getent prints through the module."""
    if not os.path.exists(helpers.module_path(builddir, "libnss_teleport.so.2")):
        pytest.skip("libnss_teleport.so.2 not built")
    if not helpers.find_lib("libnss_wrapper.so"):
        pytest.skip("nss_wrapper not installed")
    env = {"TELEPORT_UNIX_CACHE_DIR": cache_dir}
    wd = str(tmp_path / "getent")
    cases = [("passwd",), ("group",), ("passwd", "bob"), ("passwd", str(home_id("robert"))),
             ("passwd", "00" + str(home_id("bob"))),
             ("group", "deploy"), ("group", str(home_id("sam")))]
    for args in cases:
        g = helpers.run_getent(builddir, *args, workdir=wd, env=env)
        c = run_cli(*args)
        assert g.rc == 0 and c.rc == 0, (args, g, c)
        assert c.stdout == g.stdout, (args, g.stdout, c.stdout)
    # initgroups: the supplementary groups (dev's host_groups); glibc's caller adds the primary one.
    g = helpers.run_getent(builddir, "initgroups", "bob", workdir=wd, env=env)
    assert g.rc == 0, g
    ids = sorted(int(x) for x in g.stdout.split()[1:])
    gr = parse_group(run_cli("group").stdout)
    want = sorted(gr[n]["gid"] for n in ("developers", "docker") if n in gr)
    assert set(want) <= set(ids) and len(ids) == 2, (g, want)


def test_sync_auth_down_leaves_cache(auth_server, dataset, write_config, run_cli, cache_dir):
    srv = auth_server(dataset=dataset)
    write_config()
    assert run_cli("sync").rc == 0
    before = {n: open(os.path.join(cache_dir, n), "rb").read() for n in ("accounts.db", "state.db")}
    srv.stop()
    t0 = time.monotonic()
    r = run_cli("sync")
    assert r.rc == 2, r
    assert r.stdout == ""
    assert re.match(r"teleport-unix: sync: [^:]+: .+", r.stderr.splitlines()[-1]), r.stderr
    assert time.monotonic() - t0 < 10
    after = {n: open(os.path.join(cache_dir, n), "rb").read() for n in ("accounts.db", "state.db")}
    assert before == after
    # passwd keeps serving from the cache.
    assert run_cli("passwd", "bob").rc == 0


def test_sync_blackhole_is_bounded(blackhole_server, write_config, run_cli, cache_dir):
    write_config(addresses=blackhole_server.address, auth={"timeouts": {"connect": "1s", "request": "1s"}})
    t0 = time.monotonic()
    r = run_cli("sync", json=True, timeout=30)
    assert r.rc == 2, r
    assert time.monotonic() - t0 < 10, r
    assert "error" in r.json()
    assert files_in(cache_dir) == {}


def test_sync_unreachable_nothing_written(write_config, run_cli, cache_dir):
    write_config(addresses="127.0.0.1:1")
    r = run_cli("sync")
    assert r.rc == 2, r
    assert r.stderr.startswith("teleport-unix: sync: "), r
    assert files_in(cache_dir) == {}


def test_sync_waits_for_another_refresh(auth_server, dataset, write_config, run_cli, cache_dir):
    """`sync` takes the cache's refresh lock (the one the NSS online refresh and `cache clear`
    take): while another writer holds it, sync waits and writes nothing; then it runs."""
    auth_server(dataset=dataset)
    write_config()
    os.makedirs(cache_dir, exist_ok=True)
    seen = {}
    fd = os.open(os.path.join(cache_dir, ".online.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)

    def release_later():
        time.sleep(1.5)
        seen["written while held"] = sorted(files_in(cache_dir))
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    t = threading.Thread(target=release_later)
    t0 = time.monotonic()
    t.start()
    r = run_cli("sync")
    took = time.monotonic() - t0
    t.join()
    assert r.rc == 0, r
    assert seen["written while held"] == [], seen
    assert took >= 1.4, took
    assert sorted(files_in(cache_dir)) == ["accounts.db", "host.identity", "state.db"]
    # cache clear waits the same way, then clears.
    fd = os.open(os.path.join(cache_dir, ".online.lock"), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    t = threading.Thread(target=release_later)
    t.start()
    r = run_cli("cache", "clear")
    t.join()
    assert r.rc == 0, r
    assert seen["written while held"] == ["accounts.db", "host.identity", "state.db"], seen
    assert files_in(cache_dir) == {}


def test_passwd_without_cache(write_config, run_cli, cache_dir):
    write_config()
    r = run_cli("passwd")
    assert r.rc == 2, r
    assert r.stderr == f"teleport-unix: passwd: no accounts cache at {cache_dir}/accounts.db (run 'teleport-unix sync')\n"
    r = run_cli("group", json=True)
    assert r.rc == 2 and "error" in r.json(), r


def test_corrupt_public_file(synced, run_cli, cache_dir):
    p = os.path.join(cache_dir, "accounts.db")
    data = bytearray(open(p, "rb").read())
    data[len(data) // 2] ^= 0x40
    with open(p, "wb") as f:
        f.write(data)
    r = run_cli("passwd")
    assert r.rc == 2, r
    assert r.stdout == ""
    assert r.stderr.startswith("teleport-unix: passwd: "), r


def test_cache_clear(synced, run_cli, cache_dir):
    r = run_cli("cache", "clear")
    assert r.rc == 0, r
    assert files_in(cache_dir) == {}
    assert run_cli("cache", "clear").rc == 0  # nothing to remove is fine
    r = run_cli("cache", "clear", json=True)
    assert r.rc == 0 and r.json() == {"cleared": True, "cache_dir": cache_dir}
    assert run_cli("passwd", "bob").rc == 2
    for bad in ((), ("wipe",), ("clear", "x")):
        r = run_cli("cache", *bad)
        assert r.rc == 2 and r.stderr.startswith("teleport-unix: cache: "), (bad, r)


def test_resync_replaces_and_keeps_uids(auth_server, dataset, write_config, run_cli, cache_dir, tmp_path):
    """Adding a user changes nothing for the others (uids are per login, not per position)."""
    srv = auth_server(dataset=dataset)
    write_config()
    assert run_cli("sync").rc == 0
    before = parse_passwd(run_cli("passwd").stdout)
    ds = helpers.make_dataset(str(tmp_path / "ds"), base=dataset, files={"users/zoe.txtpb": ZOE})
    srv.set_control(dataset=ds)
    r = run_cli("sync")
    assert r.rc == 0, r
    after = parse_passwd(run_cli("passwd").stdout)
    assert sorted(after) == sorted(HUC_LOGINS + ["aardvark"])
    for login, e in before.items():
        assert after[login] == e, login


ZOE = '''
Kind: "user"
Version: "v2"
Metadata { Name: "zoe" Namespace: "default" }
Spec {
  Roles: ["dev"]
  Traits { Values { key: "logins" value { Values: ["aardvark"] } } }
}
'''


def test_sync_rejects_extra_args(write_config, run_cli):
    write_config()
    r = run_cli("sync", "now")
    assert r.rc == 2 and r.stderr.startswith("teleport-unix: sync: unexpected argument"), r


def _default_cache_dir(builddir):
    """localstatedir/cache/teleport-unix as configured in the build tree (TU_LOCALSTATEDIR)."""
    return helpers.make_vars(builddir, "localstatedir")["localstatedir"] + "/cache/teleport-unix"


def test_sync_links_default_dir_for_nss(auth_server, dataset, write_config, run_cli, cache_dir, builddir):
    """Without --insecure-perms, a non-default cache.dir is linked from the default one (NSS
    cannot read the config).  The previous state of the system directory is restored."""
    link = os.path.join(_default_cache_dir(builddir), "accounts.db")
    if os.path.exists(link) and not os.path.islink(link):
        pytest.skip(f"{link} is a real cache here")
    saved = os.readlink(link) if os.path.islink(link) else None
    auth_server(dataset=dataset)
    write_config()
    try:
        r = run_cli("sync", insecure_perms=False)
        assert r.rc == 0, r
        assert os.readlink(link) == os.path.join(cache_dir, "accounts.db")
        # cache clear removes it with the cache; the next sync puts it back.
        assert run_cli("cache", "clear", insecure_perms=False).rc == 0
        assert not os.path.lexists(link)
        assert run_cli("sync", insecure_perms=False).rc == 0
        assert os.readlink(link) == os.path.join(cache_dir, "accounts.db")
        # Test mode never touches it.
        os.unlink(link)
        assert run_cli("sync").rc == 0
        assert not os.path.lexists(link)
    finally:
        if os.path.lexists(link):
            os.unlink(link)
        if saved is not None:
            os.symlink(saved, link)


def test_online_refresh_table(auth_server, dataset, write_config, cache_dir, builddir):
    """libteleport-unix's NSS table (online.h) through ctypes, as nss/dl.c reaches it: a refresh
    writes both snapshots; a second miss within negative_ttl does not go to Auth again."""
    import ctypes

    if os.geteuid() != 0:
        pytest.skip("online refresh requires root")
    so = os.path.join(builddir, ".libs", "libteleport-unix.so.0")
    needed = subprocess.run(["readelf", "-d", so], capture_output=True, text=True).stdout
    if "libasan" in needed or "libubsan" in needed:
        pytest.skip("sanitizer build: its runtime cannot be loaded into Python")
    lib = ctypes.CDLL(so, mode=os.RTLD_NOW)

    LOGFN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)

    class Req(ctypes.Structure):
        _fields_ = [("size", ctypes.c_size_t), ("config_path", ctypes.c_char_p), ("log_fn", LOGFN),
                    ("log_userdata", ctypes.c_void_p), ("debug", ctypes.c_bool), ("now_usec", ctypes.c_int64)]

    NAMEFN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Req), ctypes.c_char_p)
    IDFN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Req), ctypes.c_uint32)

    class Table(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("size", ctypes.c_size_t), ("refresh_for_name", NAMEFN),
                    ("refresh_for_id", IDFN)]

    lib.tu_online_v1_get.restype = ctypes.POINTER(Table)
    t = lib.tu_online_v1_get().contents
    assert t.version == 1 and t.size == ctypes.sizeof(Table)

    srv = auth_server(dataset=dataset)
    cfg = write_config()
    os.chmod(cfg, 0o644)  # tu_ctx_new checks owner/mode (no --insecure-perms here)
    msgs = []
    logfn = LOGFN(lambda ud, prio, msg: msgs.append(msg.decode()))
    req = Req(ctypes.sizeof(Req), cfg.encode(), logfn, None, True, int(time.time() * 1e6))
    # The refresh also maintains the default-dir link (production path): restore it afterwards.
    link = os.path.join(_default_cache_dir(builddir), "accounts.db")
    saved = os.readlink(link) if os.path.islink(link) else None
    try:
        assert t.refresh_for_name(ctypes.byref(req), b"bob") == 0, msgs
    finally:
        if os.path.islink(link):
            os.unlink(link)
            if saved is not None:
                os.symlink(saved, link)
    st = files_in(cache_dir)
    assert stat.S_IMODE(st["accounts.db"].st_mode) == 0o644 and stat.S_IMODE(st["state.db"].st_mode) == 0o600
    n_calls = len(srv.calls())
    assert n_calls >= 3
    assert srv.calls("/teleport.users.v1.UsersService/ListUsers")  # no state yet: full sync
    # Within negative_ttl: the miss stands (-ENOENT), no RPC.
    assert t.refresh_for_id(ctypes.byref(req), 12345) == -2, msgs
    assert len(srv.calls()) == n_calls
    # Later, with a usable state: a name costs the user, the roles, the locks and the auth
    # preference only.
    srv.clear_calls()
    req.now_usec += 120 * 1000000
    try:
        assert t.refresh_for_name(ctypes.byref(req), b"judy") == 0, msgs
    finally:
        if os.path.islink(link):
            os.unlink(link)
            if saved is not None:
                os.symlink(saved, link)
    paths = sorted({c["path"] for c in srv.calls()})
    assert not any("ListUsers" in p or "GetUsers" in p for p in paths), paths
    assert any(p.endswith("/GetUser") for p in paths) and any("Role" in p for p in paths), paths
    # ... and the auth preference, so offline decisions see what the cluster requires now
    assert any(p.endswith("/GetAuthPreference") for p in paths), paths
    # A name that is no Teleport user: the miss stands, and the attempt is rate limited.
    req.now_usec += 120 * 1000000
    assert t.refresh_for_name(ctypes.byref(req), b"nosuchuser") == -2, msgs
    n = len(srv.calls())
    assert t.refresh_for_name(ctypes.byref(req), b"nosuchuser") == -2, msgs
    assert len(srv.calls()) == n


def test_nss_miss_goes_online_through_the_core(auth_server, dataset, write_config, cache_dir, builddir,
                                               tmp_path):
    """getent through libnss_teleport.so.2 on an empty cache: the module dlopens the real core
    (online.h), which syncs; the answer is then served.  Root only (SPEC §6)."""
    if os.geteuid() != 0:
        pytest.skip("the online path is for root only")
    if not helpers.find_lib("libnss_wrapper.so"):
        pytest.skip("nss_wrapper not installed")
    so = os.path.join(builddir, ".libs", "libteleport-unix.so.0")
    if "libasan" in subprocess.run(["readelf", "-d", so], capture_output=True, text=True).stdout:
        pytest.skip("sanitizer build: getent would need the ASan runtime preloaded")
    srv = auth_server(dataset=dataset)
    cfg = write_config()
    env = {"TELEPORT_UNIX_CONFIG": cfg, "TELEPORT_UNIX_CACHE_DIR": cache_dir, "TELEPORT_UNIX_CORE_LIB": so}
    wd = str(tmp_path / "getent")
    link = os.path.join(_default_cache_dir(builddir), "accounts.db")
    saved = os.readlink(link) if os.path.islink(link) else None
    try:
        g = helpers.run_getent(builddir, "passwd", "bob", workdir=wd, env=env)
        assert g.rc == 0, g
        assert g.stdout == f"bob:*:{home_id('bob')}:{home_id('bob')}:bob:/home/bob:/bin/bash\n"
        assert srv.calls("/teleport.users.v1.UsersService/ListUsers")
        assert sorted(files_in(cache_dir)) == ["accounts.db", "state.db"]
        # A miss right after: answered from the fresh snapshot, no RPC.
        n = len(srv.calls())
        g = helpers.run_getent(builddir, "passwd", "nosuchlogin", workdir=wd, env=env)
        assert g.rc == 2 and g.stdout == "", g
        assert len(srv.calls()) == n
    finally:
        if os.path.islink(link):
            os.unlink(link)
            if saved is not None:
                os.symlink(saved, link)
