# SPDX-License-Identifier: Apache-2.0
"""test_install.py - `make install DESTDIR=...` and `make uninstall` as a packager or an
administrator runs them: the modules where PAM and glibc look, the private core library found
through the binaries' RUNPATH (never the system library path), no libtool leftovers, the systemd
units and the examples, nothing written outside DESTDIR, nothing left after uninstall."""

import os
import re
import stat
import subprocess

import pytest

import helpers

pytestmark = [
    # pytest-xdist: tests that run make in (or beside) the build dir share one worker
    # (test_doctor.py, test_sshd.py); the install is made from conftest's private_build.
    pytest.mark.xdist_group("buildtree"),
    # The layout does not depend on the sanitizers, and a second private build would cost minutes.
    helpers.plain_pass_only("the install layout is checked in the plain pass"),
]


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


@pytest.fixture
def installed(private_build, tmp_path):
    dest = tmp_path / "dest"
    r = subprocess.run(["make", "-s", "-C", private_build, "install", f"DESTDIR={dest}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return str(dest)


def test_install_layout(private_build, installed):
    v = helpers.make_vars(private_build, "bindir", "pkglibdir", "pammoduledir", "nsslibdir", "docdir",
                  "systemdsystemunitdir", "mandir", "sysconfdir", "includedir", "libdir")
    rel = {k: val.lstrip("/") for k, val in v.items()}
    want = {
        f"{rel['bindir']}/teleport-unix",
        f"{rel['pammoduledir']}/pam_teleport.so",
        f"{rel['nsslibdir']}/libnss_teleport.so.2",
        f"{rel['nsslibdir']}/libnss_teleport.so.2.0.0",
        f"{rel['pkglibdir']}/libteleport-unix.so.0",
        f"{rel['pkglibdir']}/libteleport-unix.so.0.0.0",
        f"{rel['pkglibdir']}/teleport-unix-h2.so",  # the online transport, loaded on demand (issue 10)
        f"{rel['pkglibdir']}/teleport-unix-crypto.so",  # OpenSSL's side, loaded on demand (issue 10)
        f"{rel['systemdsystemunitdir']}/teleport-unix-sync.service",
        f"{rel['systemdsystemunitdir']}/teleport-unix-sync.timer",
        f"{rel['systemdsystemunitdir']}/teleport-unix-watch.service",
        f"{rel['docdir']}/examples/teleport-unix.yaml",
        f"{rel['docdir']}/examples/nsswitch.conf.snippet",
        f"{rel['docdir']}/examples/pam.d/teleport",
        f"{rel['docdir']}/examples/sshd_config.d/teleport-unix.conf",
        f"{rel['mandir']}/man8/teleport-unix.8",
        f"{rel['mandir']}/man8/pam_teleport.8",
        # the public C API for other programs (docs/embedding.md)
        f"{rel['includedir']}/teleport-unix/teleport-unix.h",
        f"{rel['includedir']}/teleport-unix/err.h",
        f"{rel['libdir']}/pkgconfig/teleport-unix.pc",
    }
    got = files_under(installed)
    assert want <= got, sorted(want - got)
    # No libtool archives, no unversioned NSS/PAM development links, nothing in etc.
    extra = {f for f in got - want if not f.endswith("/libteleport-unix.so")}
    assert extra == set(), sorted(extra)
    assert not any(f.endswith(".la") for f in got)
    assert not any(f.split("/")[0] == "etc" or "/etc/" in f for f in got), sorted(got)

    # Code loaded into sshd and every getpwnam caller: nobody but root may write it.
    for f in want:
        st = os.lstat(os.path.join(installed, f))
        if stat.S_ISREG(st.st_mode):
            assert st.st_mode & 0o022 == 0, (f, oct(st.st_mode))

    # The binaries find the private core through RUNPATH (it is not on the library path).
    for f in (f"{rel['bindir']}/teleport-unix", f"{rel['pammoduledir']}/pam_teleport.so"):
        r = subprocess.run(["readelf", "-d", os.path.join(installed, f)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "libteleport-unix.so.0" in r.stdout, f
        m = re.search(r"\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[([^\]]*)\]", r.stdout)
        assert m and v["pkglibdir"] in m.group(1).split(":"), (f, r.stdout)
    # The NSS module needs libc only (STYLE §2.3; the dynamic loader is part of it): no core.
    r = subprocess.run(["readelf", "-d", os.path.join(installed, rel["nsslibdir"], "libnss_teleport.so.2")],
                       capture_output=True, text=True)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)
    allowed = {"libc.so.6", "ld-linux-x86-64.so.2"}
    if os.environ.get("TU_SANITIZED"):
        allowed |= {n for n in needed if n.startswith(("libasan.so", "libubsan.so"))}
    assert "libc.so.6" in needed and set(needed) <= allowed, needed
    assert "RUNPATH" not in r.stdout and "RPATH" not in r.stdout, r.stdout

    # The manual names this build's configuration path, and the units point to it.
    for page in ("teleport-unix.8", "pam_teleport.8"):
        man = open(os.path.join(installed, rel["mandir"], "man8", page)).read()
        assert f"{v['sysconfdir']}/teleport-unix.yaml" in man, page
        assert not re.search(r"@[a-z_]+@", man), page  # every @var@ substituted

    # pkg-config points a program at the public header and the private library directory.
    pc = open(os.path.join(installed, rel["libdir"], "pkgconfig", "teleport-unix.pc")).read()
    assert f"pkglibdir={v['pkglibdir']}\n" in pc, pc
    assert "Libs: -L${pkglibdir} -Wl,-rpath,${pkglibdir} -lteleport-unix" in pc, pc
    assert not re.search(r"@[A-Za-z_]+@", pc), pc

    # The sshd drop-in names the installed CLI by its absolute path.
    dropin = open(os.path.join(installed, rel["docdir"], "examples", "sshd_config.d", "teleport-unix.conf")).read()
    assert re.search(rf"^AuthorizedPrincipalsCommand {re.escape(v['bindir'])}/teleport-unix ssh-principals %u %t %k$",
                     dropin, re.M), dropin
    assert re.search(r"^AuthorizedPrincipalsCommandUser root$", dropin, re.M)
    assert re.search(r"^ExposeAuthInfo yes$", dropin, re.M)
    assert not re.search(r"@[a-z_]+@", dropin)

    # The unit runs sync and the timer starts that unit.
    unit = open(os.path.join(installed, rel["systemdsystemunitdir"], "teleport-unix-sync.service")).read()
    assert re.search(r"^ExecStart=\S*teleport-unix sync$", unit, re.M), unit
    timer = open(os.path.join(installed, rel["systemdsystemunitdir"], "teleport-unix-sync.timer")).read()
    assert "[Timer]" in timer and "[Install]" in timer
    # The watch service (issue 13): sd_notify readiness, restarted on failure.
    watch = open(os.path.join(installed, rel["systemdsystemunitdir"], "teleport-unix-watch.service")).read()
    assert re.search(r"^ExecStart=\S*teleport-unix watch$", watch, re.M), watch
    assert re.search(r"^Type=notify$", watch, re.M) and re.search(r"^Restart=on-failure$", watch, re.M)
    assert re.search(r"^ProtectSystem=strict$", watch, re.M)


def test_uninstall_leaves_nothing(private_build, installed):
    r = subprocess.run(["make", "-s", "-C", private_build, "uninstall", f"DESTDIR={installed}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert files_under(installed) == set()
