# SPDX-License-Identifier: Apache-2.0
"""test_cache_safety.py - host-process safety, round 2 (issue 14: F2, F4, F5,
F6, F7), end to end against the stand-in Auth server.

  F2  a Teleport user who expires after the sync is denied ("has expired"),
      online and offline, through the shipped stacking (never "unknown",
      which the stack lets through to a key left in authorized_keys); a sync
      drops the account from NSS, even one that cannot reach Auth.
  F4  `su` run by an unprivileged user (setuid root: AT_SECURE) with
      pam_teleport.so in its stack, in a mount namespace with a private
      /etc/pam.d/su and /etc/passwd: decides (online and from the cache) and
      never writes the cache (same inodes and mtimes, no temp file).
  F5  an NSS name refresh merged into the state keeps the last full sync's
      time: once full syncs fail, offline decisions stop at offline_max_age.
  F6  a credential that cannot be loaded leaves no empty host id behind:
      offline decisions answer "unavailable" (a lock on this host would have
      been ignored), unless host.id is configured (then the lock holds).
  F7  a sticky world-writable cache.dir and a lock file of another user are
      refused with a clear error.
"""

import os
import shutil
import subprocess
import time

import pytest

import helpers

PERM_DENIED = "Permission denied"
USER_UNKNOWN = "User not known to the underlying authentication module"
AUTHINFO_UNAVAIL = "Authentication service cannot retrieve authentication info"
SUCCESS = "account management done"


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (CI runs as root)")


def pamtester(builddir, tmp_path, cfg, login, stacked=True):
    if not shutil.which("pamtester") or not helpers.find_lib("libpam_wrapper.so"):
        pytest.skip("pamtester / pam_wrapper not installed")
    mod = helpers.module_path(builddir, "pam_teleport.so")
    arg = f"config={cfg} insecure_perms"
    if stacked:  # the shipped stacking (etc/pam.d)
        lines = [f"account [success=ok user_unknown=ignore default=bad] {mod} {arg}",
                 "account required pam_permit.so"]
    else:
        lines = [f"account required {mod} {arg}"]
    sdir = str(tmp_path / "pam.d")
    helpers.write_pam_service(sdir, "tu-cache-safety", lines)
    return helpers.run_pamtester(sdir, "tu-cache-safety", login, env={"PAM_WRAPPER_DEBUGLEVEL": "4"},
                                 timeout=60)


def outcome(res):
    text = res.stdout + res.stderr
    if res.rc == 0 and SUCCESS in text:
        return "allow"
    for word, msg in (("deny", PERM_DENIED), ("unknown", USER_UNKNOWN), ("unavail", AUTHINFO_UNAVAIL)):
        if msg in text:
            return word
    return f"other rc={res.rc}: {text!r}"


def user_txtpb(name, roles, logins, expires=None):
    exp = f"  Expires {{ seconds: {int(expires)} }}\n" if expires is not None else ""
    roles_s = ", ".join(f'"{r}"' for r in roles)
    logins_s = ", ".join(f'"{x}"' for x in logins)
    return (f'Kind: "user"\nVersion: "v2"\nMetadata {{\n  Name: "{name}"\n  Namespace: "default"\n{exp}}}\n'
            f'Spec {{\n  Roles: [{roles_s}]\n  Traits {{\n    Values {{\n      key: "logins"\n'
            f'      value {{\n        Values: [{logins_s}]\n      }}\n    }}\n  }}\n}}\n')


def files_state(d):
    """name -> (inode, mtime_ns) of every entry in d."""
    out = {}
    for n in sorted(os.listdir(d)):
        st = os.lstat(os.path.join(d, n))
        out[n] = (st.st_ino, st.st_mtime_ns)
    return out


@pytest.fixture
def default_link(builddir):
    """The online refresh links the default NSS directory to cache.dir: put it back afterwards."""
    d = helpers.make_vars(builddir, "localstatedir")["localstatedir"] + "/cache/teleport-unix"
    link = os.path.join(d, "accounts.db")
    if os.path.exists(link) and not os.path.islink(link):
        pytest.skip(f"{link} is a real cache here")
    saved = os.readlink(link) if os.path.islink(link) else None
    yield
    if os.path.islink(link):
        os.unlink(link)
    if saved is not None:
        os.symlink(saved, link)


def getent_online(builddir, tmp_path, cfg, cache_dir, *args):
    so = os.path.join(builddir, ".libs", "libteleport-unix.so.0")
    wd = str(tmp_path / "getent")
    env = {"TELEPORT_UNIX_CONFIG": cfg, "TELEPORT_UNIX_CACHE_DIR": cache_dir, "TELEPORT_UNIX_CORE_LIB": so}
    return helpers.run_getent(builddir, *args, workdir=wd, env=env, timeout=60)


# ---------------------------------------------------------------- F2

def test_expired_user_is_denied_online_and_offline(builddir, auth_server, write_config, run_cli, cache_dir,
                                                   tmp_path):
    """xena's account is synced while she is valid; she then expires.  Before issue 14 the
    owner lookup skipped expired users, the login became "not a Teleport login"
    (PAM_USER_UNKNOWN) and the shipped stack let it through."""
    if not helpers.find_lib("libnss_wrapper.so"):
        pytest.skip("nss_wrapper not installed")
    expires = time.time() + 4
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={
        "users/xena.txtpb": user_txtpb("xena", ["dev"], ["xena"], expires=expires)})
    auth_server(dataset=ds)
    cfg = write_config()
    assert run_cli("sync").rc == 0
    env = {"TELEPORT_UNIX_CACHE_DIR": cache_dir, "TELEPORT_UNIX_NSS_ONLINE": "0"}
    g = helpers.run_getent(builddir, "passwd", "xena", workdir=str(tmp_path / "g"), env=env)
    assert g.rc == 0 and g.stdout.startswith("xena:*:"), g
    assert outcome(pamtester(builddir, tmp_path, cfg, "xena")) == "allow"

    time.sleep(max(0.0, expires - time.time()) + 1.0)
    # Online: Auth still answers (the stand-in keeps serving the expired user).
    res = pamtester(builddir, tmp_path, cfg, "xena")
    assert outcome(res) == "deny", res
    assert "has expired" in res.stderr, res
    c = run_cli("check", "xena", "xena")
    assert c.rc == 1 and "has expired" in c.stdout, c

    # Offline (Auth gone): from the cache, the same.
    down = write_config(addresses="127.0.0.1:1", name="down.yaml")
    res = pamtester(builddir, tmp_path, down, "xena")
    assert outcome(res) == "deny", res
    assert "has expired" in res.stderr and "offline" in res.stderr, res
    res = pamtester(builddir, tmp_path, down, "xena", stacked=False)
    assert outcome(res) == "deny", res
    c = run_cli("check", "--offline", "xena", "xena", config=down)
    assert c.rc == 1 and "has expired" in c.stdout, c

    # NSS: even a sync that cannot reach Auth drops the accounts of users who expired since the
    # last one (recomputed from the cached state, which keeps its time), so an outage does not
    # keep an expired user's account served.  Others are untouched.
    g = helpers.run_getent(builddir, "passwd", "xena", workdir=str(tmp_path / "g"), env=env)
    assert g.rc == 0, g
    s = run_cli("sync", config=down)
    assert s.rc == 2 and "expired since the last sync" in s.stderr, s
    g = helpers.run_getent(builddir, "passwd", "xena", workdir=str(tmp_path / "g"), env=env)
    assert g.rc == 2 and g.stdout == "", g
    g = helpers.run_getent(builddir, "passwd", "frank", workdir=str(tmp_path / "g"), env=env)
    assert g.rc == 0, g
    res = pamtester(builddir, tmp_path, down, "xena")
    assert outcome(res) == "deny" and "has expired" in res.stderr, res
    assert outcome(pamtester(builddir, tmp_path, down, "frank")) == "allow"
    # Nothing more to drop: the next failing sync writes nothing.
    before = files_state(cache_dir)
    assert run_cli("sync", config=down).rc == 2
    assert files_state(cache_dir) == before


def test_deleted_user_still_served_is_denied(builddir, auth_server, write_config, run_cli, cache_dir, tmp_path):
    """Teleport deletes a user (or its expiry removes it: Auth stores Expires as a TTL).  Until
    a sync replaces the snapshot, NSS still serves the account; a decision that finds no owner
    must deny rather than answer "unknown"."""
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={
        "users/yuri.txtpb": user_txtpb("yuri", ["dev"], ["yuri"])})
    srv = auth_server(dataset=ds)
    cfg = write_config(cache={"refresh_after": "1s"})
    assert run_cli("sync").rc == 0
    os.unlink(os.path.join(ds, "users", "yuri.txtpb"))
    gone = helpers.make_dataset(str(tmp_path / "ds-gone"), base=ds)
    srv.set_control(dataset=gone)
    time.sleep(1.5)  # the state is older than refresh_after: the decision fetches everything
    res = pamtester(builddir, tmp_path, cfg, "yuri")
    assert outcome(res) == "deny", res
    assert "no current Teleport user grants it" in res.stderr, res


# ---------------------------------------------------------------- F4

SU_SCRIPT = r"""
set -e
mount --bind "$SU_PAM" /etc/pam.d/su
mount --bind "$PASSWD" /etc/passwd
for login in $LOGINS; do
    if setpriv --reuid=65534 --regid=65534 --clear-groups su "$login" -s /bin/sh -c 'exit 0' </dev/null; then
        echo "$login allowed"
    else
        echo "$login refused"
    fi
done
"""


def run_su(builddir, tmp_path, cfg, logins):
    mod = helpers.module_path(builddir, "pam_teleport.so")
    su_pam = tmp_path / "su.pam"
    su_pam.write_text("auth sufficient pam_permit.so\n"
                      f"account [success=ok user_unknown=ignore default=bad] {mod} config={cfg} insecure_perms\n"
                      "account required pam_permit.so\n"
                      "session required pam_permit.so\n", encoding="utf-8")
    passwd = tmp_path / "passwd"
    with open("/etc/passwd", encoding="utf-8") as f:
        text = f.read()
    for i, login in enumerate(logins):
        text += f"{login}:x:{42420 + i}:{42420 + i}::/tmp:/bin/sh\n"
    passwd.write_text(text, encoding="utf-8")
    os.chmod(passwd, 0o644)
    env = dict(os.environ, SU_PAM=str(su_pam), PASSWD=str(passwd), LOGINS=" ".join(logins))
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", SU_SCRIPT],
                       capture_output=True, text=True, env=env, timeout=120, cwd="/", check=False)
    assert p.returncode == 0, p
    return dict(line.split(" ", 1) for line in p.stdout.split("\n") if line), p


@helpers.plain_pass_only("setuid su ignores the sanitizer preload")
def test_su_decides_but_never_writes_the_cache(builddir, auth_server, write_config, run_cli, cache_dir, tmp_path):
    need_root()
    for tool in ("unshare", "setpriv", "su"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    if not os.path.isfile("/etc/pam.d/su"):
        pytest.skip("no /etc/pam.d/su to bind-mount over")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace: {probe.stderr.strip()}")
    suid = shutil.which("su")
    if not os.stat(suid).st_mode & 0o4000:
        pytest.skip(f"{suid} is not setuid")

    auth_server()
    cfg = write_config(cache={"refresh_after": "1s"})
    assert run_cli("sync").rc == 0
    time.sleep(1.5)  # older than refresh_after: a login fetches everything and used to save it
    before = files_state(cache_dir)

    got, p = run_su(builddir, tmp_path, cfg, ["frank", "dave"])
    assert got == {"frank": "allowed", "dave": "refused"}, p
    assert files_state(cache_dir) == before, p

    # Auth gone: the same answers from the cache, still without a write.
    down = write_config(addresses="127.0.0.1:1", name="down.yaml")
    got, p = run_su(builddir, tmp_path, down, ["frank", "dave"])
    assert got == {"frank": "allowed", "dave": "refused"}, p
    assert files_state(cache_dir) == before, p

    # The control: the same stack run by root (not setuid-invoked) does refresh the cache.
    res = pamtester(builddir, tmp_path, cfg, "frank")
    assert outcome(res) == "allow", res
    assert files_state(cache_dir) != before


# ---------------------------------------------------------------- F5

def test_name_refresh_keeps_the_oldest_time(builddir, auth_server, write_config, run_cli, cache_dir, tmp_path,
                                            default_link):
    need_root()
    if not helpers.find_lib("libnss_wrapper.so"):
        pytest.skip("nss_wrapper not installed")
    ds = str(tmp_path / "ds")
    helpers.make_dataset(ds)
    srv = auth_server(dataset=ds)
    max_age = 8
    cfg = write_config(cache={"offline_max_age": f"{max_age}s", "refresh_after": "1s", "negative_ttl": "0s"})
    assert run_cli("sync").rc == 0
    t0 = time.time()

    # Full syncs fail from now on; single-user reads still work.  A new user appears.
    more = helpers.make_dataset(str(tmp_path / "ds2"), base=ds, files={
        "users/newbie.txtpb": user_txtpb("newbie", ["dev"], ["newbie"])})
    srv.set_control(dataset=more, faults={"/teleport.users.v1.UsersService/ListUsers": "unavailable",
                                          "/proto.AuthService/GetUsers": "unavailable"})
    assert run_cli("sync").rc == 2
    time.sleep(max(0.0, t0 + 3 - time.time()))
    g = getent_online(builddir, tmp_path, cfg, cache_dir, "passwd", "newbie")
    assert g.rc == 0 and g.stdout.startswith("newbie:*:"), g

    # Past offline_max_age after the last FULL sync (but not after the name refresh): the
    # merged state is as old as its oldest part, so offline decisions stop.
    time.sleep(max(0.0, t0 + max_age + 1.5 - time.time()))
    assert time.time() - t0 < max_age + 3.5, "too slow to tell the two times apart"
    down = write_config(addresses="127.0.0.1:1", name="down.yaml",
                        cache={"offline_max_age": f"{max_age}s", "refresh_after": "1s", "negative_ttl": "0s"})
    c = run_cli("check", "--offline", "frank", "frank", config=down)
    assert c.rc == 2, c
    assert "older than cache.offline_max_age" in c.stdout + c.stderr, c


# ---------------------------------------------------------------- F6

HOST_LOCK = f"""Kind: "lock"
Version: "v2"
Metadata {{
  Name: "lock-this-host"
  Namespace: "default"
}}
Spec {{
  Target {{
    ServerID: "{helpers.HOST_UUID}"
  }}
  Message: "host quarantined"
}}
"""


def test_unreadable_credential_is_no_empty_host_id(builddir, auth_server, write_config, run_cli, cache_dir,
                                                   tmp_path, certs):
    ds = helpers.make_dataset(str(tmp_path / "ds"), files={"locks/host.txtpb": HOST_LOCK})
    auth_server(dataset=ds)
    cfg = write_config()
    assert run_cli("sync").rc == 0
    c = run_cli("check", "frank", "frank")
    assert c.rc == 1 and "lock-this-host" in c.stdout, c

    # The credential goes away (moved, wrong mode, expired...): Auth cannot be asked, and the
    # host id it held is unknown.  Deciding offline without it would ignore the host lock.
    missing = str(tmp_path / "missing")
    nocred = write_config(addresses="127.0.0.1:1", name="nocred.yaml",
                          auth={"credentials": {"key_pair": {"cert": missing + ".crt", "key": missing + ".key",
                                                             "ca": certs.ca}}})
    res = pamtester(builddir, tmp_path, nocred, "frank")
    assert outcome(res) == "unavail", res
    assert "host" in res.stderr and "id" in res.stderr, res
    c = run_cli("check", "--offline", "frank", "frank", config=nocred)
    assert c.rc == 2, c

    # With host.id configured the cache still decides, and the lock holds.
    withid = write_config(addresses="127.0.0.1:1", name="withid.yaml",
                          auth={"credentials": {"key_pair": {"cert": missing + ".crt", "key": missing + ".key",
                                                             "ca": certs.ca}}},
                          host={"id": helpers.HOST_UUID})
    res = pamtester(builddir, tmp_path, withid, "frank")
    assert outcome(res) == "deny", res
    assert "lock-this-host" in res.stderr, res


# ---------------------------------------------------------------- F7

def test_sticky_world_writable_cache_dir_refused(auth_server, write_config, run_cli, cache_dir):
    auth_server()
    write_config()
    os.chmod(cache_dir, 0o1777)
    try:
        r = run_cli("sync")
        assert r.rc == 2, r
        assert "refusing cache.dir" in r.stderr and "sticky" in r.stderr, r
        assert os.listdir(cache_dir) == [], r
    finally:
        os.chmod(cache_dir, 0o755)
    assert run_cli("sync").rc == 0


def test_lock_file_of_another_user_refused(auth_server, write_config, run_cli, cache_dir):
    need_root()
    auth_server()
    write_config()
    lock = os.path.join(cache_dir, ".online.lock")
    with open(lock, "w", encoding="utf-8"):
        pass
    os.chmod(lock, 0o600)
    os.chown(lock, 65534, 65534)
    r = run_cli("sync")
    assert r.rc == 2, r
    assert "refusing lock file" in r.stderr and "owned by uid 65534" in r.stderr, r
    assert sorted(os.listdir(cache_dir)) == [".online.lock"], r
    os.unlink(lock)
    assert run_cli("sync").rc == 0
