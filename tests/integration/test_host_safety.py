# SPDX-License-Identifier: Apache-2.0
"""test_host_safety.py - memory safety, file trust and hostile data, end to end
(issue #6 parts 2, 4 and 5), against the stand-in Auth server.

  valgrind   memcheck over the CLI (ping, sync, check, passwd), the PAM module
             in pamtester (pam_wrapper) and the NSS module in getent
             (nss_wrapper, including a miss that goes online through the
             dlopened core): 0 errors, 0 definitely lost bytes
             (--error-exitcode).  Skipped on sanitizer builds (tools/harden.sh
             runs those under ASan instead) and when valgrind is missing.
  writes     every file the PAM and NSS modules create, rename, remove or open
             for writing (strace -f over tests/safety/test-host-safety --calls
             with a real Auth) is inside cache.dir.
  trust      a snapshot writable by group/others, owned by a non-root user or
             in a directory others can write is not served by NSS; config and
             key files with a wrong owner or mode are refused by the CLI and
             PAM (fail closed); the 0644 public snapshot holds nothing but what
             getent shows (no key, no trait, no role, no Teleport-only data).
  hostile    Teleport user names and logins with ':', newlines, escapes, tabs,
             400 bytes: sync still succeeds, every passwd/group line (CLI and
             getent) has its 7/4 fields and no control character, and no log
             line (CLI stderr, PAM syslog) carries a raw control character.
"""

import os
import re
import shutil
import subprocess

import pytest

import helpers

SANITIZED = bool(os.environ.get("TU_PRELOAD"))
VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", "--track-fds=no", "--num-callers=30"]


def _sanitized_build(builddir):
    so = os.path.join(builddir, ".libs", "libteleport-unix.so.0")
    try:
        out = subprocess.run(["readelf", "-d", so], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return False
    return "libasan" in out or "libubsan" in out


@pytest.fixture(scope="module")
def valgrind(builddir):
    if not shutil.which("valgrind"):
        pytest.skip("valgrind is not installed")
    if SANITIZED or _sanitized_build(builddir):
        pytest.skip("sanitizer build: memcheck cannot run over ASan code (tools/harden.sh covers it)")
    return True


def asan_env():
    return {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"} if SANITIZED else {}


def empty_files(workdir):
    os.makedirs(workdir, exist_ok=True)
    pw, gr = os.path.join(workdir, "nss.passwd"), os.path.join(workdir, "nss.group")
    for p in (pw, gr):
        open(p, "w", encoding="utf-8").close()
    return pw, gr


def getent(builddir, tmp_path, *args, env=None, wrap=()):
    pw, gr = empty_files(str(tmp_path / "getent"))
    e = helpers.nss_wrapper_env(builddir, pw, gr, extra={**asan_env(), **(env or {})})
    return helpers.run([*wrap, "getent", *args], timeout=120, env=e)


def pamtester(builddir, tmp_path, cfg, login, extra_args="insecure_perms", wrap=()):
    if not shutil.which("pamtester") or not helpers.find_lib("libpam_wrapper.so"):
        pytest.skip("pamtester / pam_wrapper not installed")
    sdir = str(tmp_path / "pam.d")
    mod = helpers.module_path(builddir, "pam_teleport.so")
    helpers.write_pam_service(sdir, "tu-safety", [f"account required {mod} config={cfg} {extra_args}".strip()])
    env = {"PAM_WRAPPER_DEBUGLEVEL": "4", **asan_env()}
    return helpers.run([*wrap, "pamtester", "-v", "tu-safety", login, "acct_mgmt"], timeout=120,
                       env=helpers.pam_wrapper_env(sdir, extra=env))


# ---------------------------------------------------------------- valgrind

def vg_cli(builddir, cli, cfg, *args):
    argv = [os.path.join(builddir, "libtool"), "--mode=execute", *VALGRIND, cli, "--insecure-perms", "-c", cfg,
            *args]
    return helpers.run(argv, timeout=180)


def test_valgrind_cli(valgrind, builddir, cli, auth_server, write_config):
    auth_server()
    cfg = write_config(auth={"timeouts": {"connect": "10s", "request": "30s"}})
    for args, want in ((("ping",), 0), (("sync",), 0), (("check", "frank", "frank"), 0),
                       (("check", "dave", "dave"), 1), (("passwd",), 0), (("group", "dev"), None),
                       (("check", "--offline", "dave", "dave"), 1)):
        r = vg_cli(builddir, cli, cfg, *args)
        assert r.rc != 99, (args, r)
        if want is not None:
            assert r.rc == want, (args, r)


def test_valgrind_cli_failures(valgrind, builddir, cli, write_config, blackhole_server):
    # error paths free what they allocated too
    cfg = write_config(addresses=blackhole_server.address,
                       auth={"timeouts": {"connect": "1s", "request": "2s"}})
    for args in (("sync",), ("check", "frank", "frank")):
        r = vg_cli(builddir, cli, cfg, *args)
        assert r.rc == 2, (args, r)


def test_valgrind_pam(valgrind, builddir, run_cli, auth_server, write_config, tmp_path):
    auth_server()
    cfg = write_config(auth={"timeouts": {"connect": "10s", "request": "30s"}})
    for login, word in (("frank", "account management done"), ("dave", "Permission denied")):
        r = pamtester(builddir, tmp_path, cfg, login, wrap=VALGRIND)
        assert r.rc != 99, r
        assert word in r.stdout + r.stderr, r
    # and offline, from the cache
    assert run_cli("sync").rc == 0
    cfg = write_config(addresses="127.0.0.1:1")
    r = pamtester(builddir, tmp_path, cfg, "dave", wrap=VALGRIND)
    assert r.rc != 99 and "Permission denied" in r.stdout + r.stderr, r


def test_valgrind_nss(valgrind, builddir, run_cli, auth_server, write_config, cache_dir, tmp_path):
    auth_server()
    cfg = write_config(auth={"timeouts": {"connect": "10s", "request": "30s"}})
    env = {"TELEPORT_UNIX_CACHE_DIR": cache_dir}
    # a miss on an empty cache goes online (root): dlopen of the core, sync, answer
    if os.geteuid() == 0:
        so = os.path.join(builddir, ".libs", "libteleport-unix.so.0")
        r = getent(builddir, tmp_path, "passwd", "frank", wrap=VALGRIND,
                   env={**env, "TELEPORT_UNIX_CONFIG": cfg, "TELEPORT_UNIX_CORE_LIB": so})
        assert r.rc == 0 and r.stdout.startswith("frank:*:"), r
    else:
        assert run_cli("sync").rc == 0
    for args in (("passwd",), ("group",), ("initgroups", "frank")):
        r = getent(builddir, tmp_path, *args, wrap=VALGRIND, env={**env, "TELEPORT_UNIX_NSS_ONLINE": "0"})
        assert r.rc in (0, 2), (args, r)


# ---------------------------------------------------------------- writes

WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")
PATHS = re.compile(r'(?:(\d+)<([^>]*)>|AT_FDCWD), "([^"]*)"')


def written_paths(strace_log):
    """Paths the traced processes created, opened for writing, renamed,
    removed, linked or chmod-ed (strace -y output)."""
    out = set()
    with open(strace_log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.search(r"\b(openat|open|creat|mkdirat|mkdir|renameat2?|rename|unlinkat|unlink|linkat|link|"
                          r"symlinkat|symlink|fchmodat|chmod|truncate)\(", line)
            if not m or " = -1 " in line:
                continue
            call = m.group(1)
            if call in ("open", "openat") and not WRITE_FLAGS.search(line):
                continue
            args = line[m.end():]
            for dfd_num, dfd_path, p in PATHS.findall(args):
                base = dfd_path if dfd_num else ""
                out.add(os.path.normpath(os.path.join(base, p)) if base and not p.startswith("/") else p)
            for p in re.findall(r'^"([^"]*)"|, "([^"]*)"', args):
                for q in p:
                    if q.startswith("/"):
                        out.add(os.path.normpath(q))
    return out


def test_modules_write_only_in_cache_dir(builddir, auth_server, write_config, cache_dir, tmp_path):
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    prog = os.path.join(builddir, "tests", "safety", "test-host-safety")
    if not os.access(prog, os.X_OK):
        pytest.skip(f"{prog} not built (make check builds it)")
    if SANITIZED:
        pytest.skip("sanitizer build")
    auth_server()
    cfg = write_config()
    work = tmp_path / "svc"
    work.mkdir()
    log = str(tmp_path / "strace.log")
    env = dict(os.environ, top_builddir=builddir, TU_SAFETY_DIR=str(work))
    # the program writes its own PAM service file before tracing matters: that is not the module
    r = helpers.run(["strace", "-f", "-y", "-qq", "-o", log, "-e",
                     "trace=open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,link,"
                     "linkat,symlink,symlinkat,chmod,fchmodat,truncate",
                     prog, "--calls", cfg, cache_dir, "frank", "dave", "localonly"],
                    timeout=120, env=env, cwd=str(tmp_path))
    assert r.rc == 0, r
    assert "pam frank: Success" in r.stdout, r
    written = written_paths(log)
    service = os.path.join(str(work), "pam.d")
    allowed = [os.path.realpath(cache_dir), service, "/dev/null", "/dev/tty"]
    outside = sorted(p for p in written
                     if not any(os.path.realpath(p) == a or os.path.realpath(p).startswith(a + "/") for a in allowed))
    assert outside == [], f"written outside cache.dir {cache_dir}: {outside}"
    assert any(p.startswith(os.path.realpath(cache_dir)) for p in map(os.path.realpath, written)), written


# ---------------------------------------------------------------- trust

def _forge(builddir, d, name="forged", uid=4242):
    """A valid public snapshot serving NAME (written by tests/nss/mksnap)."""
    mksnap = os.path.join(builddir, "tests", "nss", "mksnap")
    if not os.access(mksnap, os.X_OK):
        pytest.skip("tests/nss/mksnap not built")
    os.makedirs(d, exist_ok=True)
    pw, gr = os.path.join(d, "in.passwd"), os.path.join(d, "in.group")
    with open(pw, "w", encoding="utf-8") as f:
        f.write(f"{name}:x:{uid}:{uid}:forged:/home/{name}:/bin/sh\n")
    with open(gr, "w", encoding="utf-8") as f:
        f.write(f"{name}:x:{uid}:\n")
    out = os.path.join(d, "accounts.db")
    r = helpers.run([mksnap, "files", pw, gr, out], env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    assert r.rc == 0, r
    os.chmod(out, 0o644)
    return out


def _served(builddir, tmp_path, d, name="forged"):
    r = getent(builddir, tmp_path, "passwd", name,
               env={"TELEPORT_UNIX_CACHE_DIR": d, "TELEPORT_UNIX_NSS_ONLINE": "0",
                    "TELEPORT_UNIX_NSS_RECHECK_MSEC": "0"})
    return r.rc == 0 and r.stdout.startswith(name + ":")


def test_snapshot_served_when_trusted(builddir, tmp_path):
    """The control for the refusals below: the same file, root-owned 0644 in a 0755 dir, is served."""
    d = str(tmp_path / "trusted")
    _forge(builddir, d)
    os.chmod(d, 0o755)
    if os.geteuid() == 0:
        os.chown(os.path.join(d, "accounts.db"), 0, 0)
    assert _served(builddir, tmp_path, d)


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_snapshot_writable_by_others_refused(builddir, tmp_path, mode):
    d = str(tmp_path / "wr")
    p = _forge(builddir, d)
    os.chmod(p, mode)
    assert not _served(builddir, tmp_path, d)


def test_snapshot_owned_by_other_user_refused(builddir, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    d = str(tmp_path / "owned")
    p = _forge(builddir, d)
    os.chmod(d, 0o755)
    os.chown(p, 65534, 65534)
    assert not _served(builddir, tmp_path, d)


def test_snapshot_in_world_writable_dir_refused(builddir, tmp_path):
    d = str(tmp_path / "wwdir")
    _forge(builddir, d)
    os.chmod(d, 0o777)
    assert not _served(builddir, tmp_path, d)
    os.chmod(d, 0o1777)             # sticky, like /tmp: others cannot replace root's file
    assert _served(builddir, tmp_path, d)


def test_config_and_key_trust(builddir, cli, auth_server, write_config, certs, tmp_path):
    """Without --insecure-perms / insecure_perms: a config or key that others could have
    written or read is refused by the CLI (exit 2) and PAM (PERM_DENIED: fail closed)."""
    if os.geteuid() != 0:
        pytest.skip("files must be root-owned to be trusted: run as root")
    auth_server()
    cfg = write_config(name="ok.yaml")
    # a trusted setup first (root-owned, 0644 config, 0600 key): not refused for trust reasons
    ok = helpers.run([cli, "-c", cfg, "ping"], timeout=30)
    assert ok.rc == 0, ok
    cases = []
    p = write_config(name="gw.yaml")
    os.chmod(p, 0o664)
    cases.append(("config group-writable", p))
    p = write_config(name="ow.yaml")
    os.chmod(p, 0o646)
    cases.append(("config world-writable", p))
    p = write_config(name="nonroot.yaml")
    os.chown(p, 65534, 65534)
    cases.append(("config owned by nobody", p))
    k = str(tmp_path / "readable.key")
    shutil.copy(certs.key("client"), k)
    os.chmod(k, 0o644)
    p = write_config(name="key644.yaml", auth={"credentials": {"key_pair": {
        "cert": certs.cert("client"), "key": k, "ca": certs.ca}}})
    cases.append(("key readable by others", p))
    ident = str(tmp_path / "identity")
    shutil.copy(certs.identity("identity"), ident)
    os.chmod(ident, 0o644)
    p = write_config(name="ident644.yaml", identity="identity")
    text = open(p, encoding="utf-8").read().replace(certs.identity("identity"), ident)
    with open(p, "w", encoding="utf-8") as f:
        f.write(text)
    cases.append(("identity file readable by others", p))
    ident2 = str(tmp_path / "identity-nobody")
    shutil.copy(certs.identity("identity"), ident2)
    os.chmod(ident2, 0o600)
    os.chown(ident2, 65534, 65534)
    p = write_config(name="identnobody.yaml", identity="identity")
    text = open(p, encoding="utf-8").read().replace(certs.identity("identity"), ident2)
    with open(p, "w", encoding="utf-8") as f:
        f.write(text)
    cases.append(("identity file owned by nobody", p))
    for what, path in cases:
        r = helpers.run([cli, "-c", path, "ping"], timeout=30)
        assert r.rc == 2, (what, r)
        assert r.stderr.startswith("teleport-unix: ") and len(r.stderr.splitlines()) == 1, (what, r)
        assert re.search(r"owned by|writable|readable|mode", r.stderr), (what, r)
        res = pamtester(builddir, tmp_path, path, "frank", extra_args="")
        assert "account management done" not in res.stdout + res.stderr and res.rc != 0, (what, res)


def test_public_snapshot_reveals_only_getent(builddir, auth_server, write_config, run_cli, cache_dir, certs):
    auth_server()
    write_config()
    assert run_cli("sync").rc == 0
    pub = os.path.join(cache_dir, "accounts.db")
    priv = os.path.join(cache_dir, "state.db")
    assert os.stat(pub).st_mode & 0o777 == 0o644
    assert os.stat(priv).st_mode & 0o777 == 0o600
    shown = run_cli("passwd").stdout + run_cli("group").stdout
    data = open(pub, "rb").read()
    # strings are stored NUL-terminated: every such readable run (>= 6 bytes,
    # so index hashes do not count) must be something getent shows
    strings = {s.decode() for s in re.findall(rb"(?<=[\x00-\x1f])[\x20-\x7e]{6,}(?=\x00)", data)}
    # every readable string of the public file is part of what getent shows
    leaked = sorted(s for s in strings if s not in shown)
    assert leaked == [], f"public snapshot holds strings getent does not show: {leaked[:20]}"
    # no key material, no role, no Teleport-only trait value in either snapshot's public twin
    key_b64 = "".join(line for line in open(certs.key("client"), encoding="ascii").read().splitlines()
                      if "-----" not in line)
    for blob in (data, open(priv, "rb").read()):
        assert key_b64[:40].encode() not in blob
        assert b"PRIVATE KEY" not in blob
    # every string of the dataset (role and lock names, traits, labels, messages, user names
    # that own nothing...) that getent does not show is absent from the public file
    fixtures = os.path.join(helpers.FIXTURES, "test")
    hidden = set()
    for root, _, files in os.walk(fixtures):
        for fn in files:
            with open(os.path.join(root, fn), encoding="utf-8") as f:
                hidden |= {m for m in re.findall(r'"([^"\\]{4,})"', f.read()) if m not in shown}
    present = sorted(h for h in hidden if h.encode() in data)
    assert present == [], f"public snapshot reveals Teleport-only data: {present}"
    assert len(hidden) > 20, hidden


# ---------------------------------------------------------------- hostile names

HOSTILE_LOGINS = ["ev:il", "new\nline", "esc\x1b[31mred", "tab\tx", "a" * 400, "sp ace", "nul\x7f", "..", "-rf"]
HOSTILE_USER = "mal:lory\nroot::0:0:x:/:/bin/sh\x1b[2J"


def _txt(s):
    return '"' + "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else f"\\{ord(c):03o}" for c in s) + '"'


def _hostile_dataset(tmp_path):
    users = {
        "users/hostile-user.txtpb": f"""Kind: "user"
Version: "v2"
Metadata {{ Name: {_txt(HOSTILE_USER)} Namespace: "default" }}
Spec {{ Roles: ["dev"] Traits {{ Values {{ key: "logins" value {{ Values: ["hostile1"] }} }} }} }}
""",
        "users/hostile-logins.txtpb": f"""Kind: "user"
Version: "v2"
Metadata {{ Name: "hl" Namespace: "default" }}
Spec {{ Roles: ["dev"] Traits {{ Values {{ key: "logins" value {{ Values: [{", ".join(_txt(x) for x in HOSTILE_LOGINS)}] }} }} }} }}
""",
    }
    return helpers.make_dataset(str(tmp_path / "hostile"), files=users)


def _clean_lines(text, nfields):
    for line in text.splitlines():
        assert not re.search(r"[\x00-\x1f\x7f]", line), repr(line)
        assert line.count(":") == nfields - 1, repr(line)


def test_hostile_names(builddir, auth_server, write_config, run_cli, cache_dir, tmp_path):
    auth_server(dataset=_hostile_dataset(tmp_path))
    cfg = write_config()
    r = run_cli("sync")
    assert r.rc == 0, r
    for line in r.stderr.splitlines():
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line), repr(line)
        assert line.startswith("teleport-unix: "), repr(line)
    pw = run_cli("passwd")
    assert pw.rc == 0, pw
    _clean_lines(pw.stdout, 7)
    logins = [line.split(":")[0] for line in pw.stdout.splitlines()]
    assert "frank" in logins
    for bad in HOSTILE_LOGINS:
        assert bad not in logins
    # hostile1 is served, with a gecos (the hostile Teleport user name) that cannot break the line
    assert "hostile1" in logins, pw.stdout
    line = next(x for x in pw.stdout.splitlines() if x.startswith("hostile1:"))
    assert "root::0:0" not in line and "\x1b" not in line, repr(line)
    gr = run_cli("group")
    _clean_lines(gr.stdout, 4)
    g = getent(builddir, tmp_path, "passwd",
               env={"TELEPORT_UNIX_CACHE_DIR": cache_dir, "TELEPORT_UNIX_NSS_ONLINE": "0"})
    assert g.rc == 0, g
    _clean_lines(g.stdout, 7)
    assert sorted(g.stdout.splitlines()) == sorted(pw.stdout.splitlines())
    # check and PAM with a hostile login: a clean deny/unknown, and log lines stay one line each
    r = run_cli("check", "hl", "esc\x1b[31mred")
    assert r.rc in (1, 2), r
    assert "\x1b" not in r.stdout + r.stderr, r
    res = pamtester(builddir, tmp_path, cfg, "esc\x1b[31mred")
    assert "account management done" not in res.stdout, res
    # pamtester and pam_wrapper echo the user as given; our syslog lines must not
    logs = [x for x in res.stderr.splitlines() if "SYSLOG(" in x]
    assert any("is not a Teleport login" in x or "Teleport user" in x for x in logs), res.stderr
    assert not any("\x1b" in x for x in logs), logs
    res = pamtester(builddir, tmp_path, cfg, "new\nline")
    assert "account management done" not in res.stdout, res
    # pam_wrapper prints one syslog record per line: a raw newline in the login would split ours
    lines = res.stderr.splitlines()
    for i, x in enumerate(lines):
        if "SYSLOG(" in x and "login 'new" in x:
            assert "login 'new\\nline'" in x or "login 'new?line'" in x or "line'" in x, x
            assert not lines[i + 1].startswith("line'"), lines[i:i + 2]
