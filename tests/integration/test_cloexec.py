# SPDX-License-Identifier: Apache-2.0
"""test_cloexec.py - every descriptor the library opens in a host process is
close-on-exec (issue 14 F8).

A fork+exec in another thread of sshd or cron while we are inside a call would
otherwise hand the child our connection to Auth (curl's socket), curl's wake-up
socket pair or OpenSSL's config file.  Each front-end (the CLI, pamtester under
pam_wrapper, getent under nss_wrapper as root going online) runs against a
stand-in Auth that answers every RPC after a delay; while the call waits, the
test reads /proc/PID/fdinfo of the process and requires O_CLOEXEC on every
descriptor above 2 (the wrappers' own files excepted: they are not ours).  The
same process is also checked never to open openssl.cnf (strace).
"""

import os
import shutil
import subprocess
import time

import pytest

import helpers

SLOW = helpers.SLOW
O_CLOEXEC = 0o2000000
DELAY = 1.5 * SLOW


def fd_table(pid):
    """{fd: (target, flags)} of a live process (entries that vanish are skipped)."""
    out = {}
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except OSError:
        return out
    for n in names:
        try:
            target = os.readlink(f"{base}/{n}")
            with open(f"/proc/{pid}/fdinfo/{n}", encoding="ascii") as f:
                flags = next(int(line.split()[1], 8) for line in f if line.startswith("flags:"))
        except (OSError, StopIteration):
            continue
        out[int(n)] = (target, flags)
    return out


def exe(pid):
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def watch(argv, env, program, not_ours=()):
    """Runs argv; while it runs program (the CLI is a libtool wrapper script
    first), collects every descriptor > 2 seen in it.
    Returns (returncode, stdout+stderr, {(fd, target): flags}, saw_socket)."""
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    seen = {}
    saw_socket = False
    deadline = time.monotonic() + 30 * SLOW
    while p.poll() is None and time.monotonic() < deadline:
        if not exe(p.pid).endswith(program):
            time.sleep(0.005)
            continue
        for fd, (target, flags) in fd_table(p.pid).items():
            if fd <= 2 or any(target.startswith(x) for x in not_ours):
                continue
            seen[(fd, target)] = flags
            saw_socket = saw_socket or target.startswith("socket:")
        time.sleep(0.01)
    out, _ = p.communicate(timeout=30 * SLOW)
    return p.returncode, out, seen, saw_socket


def leaky(seen):
    return {k: oct(v) for k, v in seen.items() if not v & O_CLOEXEC}


@pytest.fixture
def slow_auth(auth_server, write_config):
    srv = auth_server(faults=[f"*=delay={DELAY}"])
    cfg = write_config(addresses=srv.address,
                       auth={"timeouts": {"connect": f"{2 * SLOW}s", "request": f"{4 * SLOW}s"}})
    return srv, cfg


@helpers.plain_pass_only("the ASan runtime opens descriptors of its own (LeakSanitizer reads /proc/PID/task)")
def test_cli_descriptors_cloexec(builddir, slow_auth):
    _, cfg = slow_auth
    argv = [os.path.join(builddir, "teleport-unix"), "--insecure-perms", "-c", cfg, "ping"]
    rc, out, seen, saw_socket = watch(argv, dict(os.environ), "teleport-unix")
    assert rc == 0, out
    assert saw_socket, f"the call was never seen in flight: {seen}"
    assert leaky(seen) == {}, seen


@helpers.plain_pass_only("the ASan runtime opens descriptors of its own")
def test_pam_descriptors_cloexec(builddir, slow_auth, tmp_path):
    if not shutil.which("pamtester") or not helpers.find_lib("libpam_wrapper.so"):
        pytest.skip("pamtester / libpam_wrapper not installed")
    _, cfg = slow_auth
    mod = helpers.module_path(builddir, "pam_teleport.so")
    sdir = str(tmp_path / "pam.d")
    helpers.write_pam_service(sdir, "tu-fds", [f"account required {mod} config={cfg} insecure_perms"])
    env = helpers.pam_wrapper_env(sdir)
    rc, out, seen, saw_socket = watch(["pamtester", "-v", "tu-fds", "frank", "acct_mgmt"], env, "pamtester",
                                      not_ours=(sdir, "/tmp/pam."))
    assert saw_socket, f"the call was never seen in flight: {seen} {out}"
    assert leaky(seen) == {}, seen


@helpers.plain_pass_only("the ASan runtime opens descriptors of its own (LeakSanitizer reads /proc/PID/task)")
def test_nss_descriptors_cloexec(builddir, slow_auth, cache_dir, tmp_path):
    if not helpers.find_lib("libnss_wrapper.so"):
        pytest.skip("libnss_wrapper not installed")
    _, cfg = slow_auth
    wd = tmp_path / "getent"
    wd.mkdir()
    pw, gr = str(wd / "nss.passwd"), str(wd / "nss.group")
    for p in (pw, gr):
        open(p, "w", encoding="utf-8").close()
    env = helpers.nss_wrapper_env(builddir, pw, gr, extra={
        "TELEPORT_UNIX_CONFIG": cfg, "TELEPORT_UNIX_CACHE_DIR": cache_dir,
        "TELEPORT_UNIX_CORE_LIB": os.path.join(builddir, ".libs", "libteleport-unix.so.0")})
    if os.geteuid() != 0:
        env = helpers.uid_wrapper_env(env)
    rc, out, seen, saw_socket = watch(["getent", "passwd", "frank"], env, "getent", not_ours=(str(wd),))
    assert saw_socket, f"the call was never seen in flight: {seen} {out}"
    assert leaky(seen) == {}, seen


@helpers.plain_pass_only("strace of an ASan process sees the runtime")
def test_openssl_config_never_opened(builddir, auth_server, write_config):
    """OpenSSL opens openssl.cnf without O_CLOEXEC: libcore asks it not to load
    the file at all (OPENSSL_INIT_NO_LOAD_CONFIG, before the first OpenSSL call)."""
    if not shutil.which("strace"):
        pytest.skip("strace not installed")
    auth_server()
    cfg = write_config()
    trace = os.path.join(os.path.dirname(cfg), "open.trace")
    r = helpers.run([os.path.join(builddir, "libtool"), "--mode=execute", "strace", "-f", "-o", trace,
                     "-e", "trace=open,openat,socket,socketpair,pipe,pipe2",
                     os.path.join(builddir, "teleport-unix"), "--insecure-perms", "-c", cfg, "ping"],
                    timeout=60 * SLOW)
    assert r.rc == 0, r
    with open(trace, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert not [x for x in lines if "openssl.cnf" in x], "openssl.cnf was opened"
    # Every socket the process made is close-on-exec from birth, except curl's
    # wake-up pair (socketpair() in curl_multi_init, marked right after).
    sockets = [x for x in lines if " socket(" in x and "= -1" not in x]
    assert sockets and all("SOCK_CLOEXEC" in x for x in sockets), sockets
