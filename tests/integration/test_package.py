# SPDX-License-Identifier: Apache-2.0
"""test_package.py - the Debian packages (debian/) as an administrator installs them
(issue #10 parts A and D).

The packages are built once per run with tools/package.sh (dpkg-buildpackage -us -uc -b
from a copy of the tree, ~1 minute) and installed with dpkg -i into a throwaway root: an
overlay of `/` (upper layer on a tmpfs) inside a private mount namespace (unshare
--mount), entered with nsenter + chroot.  Nothing on the host changes (checked).  Inside
it, with no wrapper, no LD_PRELOAD, glibc's own NSS and Debian's own PAM stacks:

  install      modules in the multiarch paths, nsswitch.conf gets `teleport` once after
               `files` on passwd/group (a second configure adds nothing, purge takes it
               out and keeps the administrator's other edits), pam-auth-update puts
               pam_teleport.so into common-account before pam_unix
  unconfigured before /etc/teleport-unix.yaml exists: getent of an unknown name answers
               at once, root and local accounts pass `login`'s account stack
  configured   with a config pointing at the stand-in Auth server and a `teleport-unix
               sync`: getent answers Teleport logins ('*' password field, no shadow
               entry), pamtester `login` (common-account: pam_unix + pam_teleport) passes
               an allowed Teleport user and refuses a locked one, a local account passes
  RHEL stacks  system-auth / password-auth account sections (tests/fixtures/pam-rhel,
               see its README) pass a Teleport account, and with pam_teleport in front
               refuse a locked one
  tools        passwd/chage on a Teleport login fail as root without writing shadow;
               su from an unprivileged user fails (no password exists); `su -` as root
               works when RBAC allows and is refused for a locked user
  sshd         Debian's real sshd inside the root, the stock /etc/pam.d/sshd (pam_teleport only
               through pam-auth-update's common-account/common-session), the package's sshd
               drop-in from its examples plus TrustedUserCAKeys: allowed certificate, locked
               user (certificate and planted key), deny on root, unknown key id, local key
  remove       dpkg -r / --purge restore nsswitch.conf (keeping later edits) and the stacks

TU_PACKAGE_DEBS=DIR uses the packages already in DIR (e.g. from ./run package) instead of
building them.  Skipped with the reason when not root, without dpkg-buildpackage/debhelper, or when an
overlay mount namespace cannot be made; skipped in the sanitizer pass (the package is
built without sanitizers, so the second run would test the same thing).
"""

import hashlib
import os
import re
import shutil
import subprocess
import time

import pytest

import helpers

TOP = helpers.TOP_SRCDIR
FIXTURES_RHEL = os.path.join(TOP, "tests", "fixtures", "pam-rhel")
SUCCESS = "account management done"
PKGS = ("teleport-unix", "libnss-teleport", "libpam-teleport")
HOST_FILES = ("/etc/nsswitch.conf", "/etc/pam.d/common-account", "/etc/pam.d/common-session", "/etc/pam.d/sshd",
              "/etc/ssh/sshd_config", "/etc/teleport-unix.yaml",
              "/etc/passwd", "/etc/shadow", "/etc/group")

# The `test` dataset on the test host (env: dev, host_user_creation): frank is allowed,
# dave is locked by a lock resource, bob is login-locked (tests/fixtures/README.md).
ALLOWED = "frank"
LOCKED = "dave"


def _digest(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


@pytest.fixture(scope="session")
def debs(tmp_path_factory):
    if os.environ.get("TU_SANITIZED") or os.environ.get("TU_PRELOAD"):
        pytest.skip("sanitizer pass: the package is built without sanitizers and was tested in the plain pass")
    if os.geteuid() != 0:
        pytest.skip("installing a package into a throwaway root needs root (unshare --mount, dpkg)")
    for tool in ("dpkg-buildpackage", "dh", "unshare", "nsenter"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not found (tools/debian-packages.txt: debhelper, dpkg-dev)")
    out = os.environ.get("TU_PACKAGE_DEBS")
    if out:  # packages built before (./run package): for iterating on these tests only
        return {p: os.path.join(out, f) for f in os.listdir(out) for p in PKGS
                if f.startswith(p + "_") and f.endswith(".deb")} | {"dir": out}
    out = str(tmp_path_factory.mktemp("debs"))
    # No -dbgsym packages: not installed here, and skipping them saves time.
    env = {**os.environ, "DEB_BUILD_OPTIONS": "noddebs"}
    r = subprocess.run([os.path.join(TOP, "tools", "package.sh"), TOP, out],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return {p: os.path.join(out, f) for f in os.listdir(out) for p in PKGS
            if f.startswith(p + "_") and f.endswith(".deb")} | {"dir": out}


class Root:
    """A throwaway root: overlay of / on a tmpfs, in a mount namespace held by a child."""

    SETUP = r"""
set -e
D=$1 DEBS=$2
mount -t tmpfs -o mode=0755 tmpfs "$D"
mkdir "$D/upper" "$D/work" "$D/m"
mount -t overlay overlay -o "lowerdir=/,upperdir=$D/upper,workdir=$D/work" "$D/m"
for d in dev proc sys; do mount --rbind "/$d" "$D/m/$d"; done
mount -t tmpfs -o mode=1777 tmpfs "$D/m/tmp"
mount -t tmpfs -o mode=0755 tmpfs "$D/m/run"
mkdir -p "$D/m/tmp/debs"
mount --bind "$DEBS" "$D/m/tmp/debs"
echo ready
read -r _ || true
"""

    def __init__(self, base, debs_dir):
        self.dir = os.path.join(base, "root")
        os.makedirs(self.dir)
        self.merged = os.path.join(self.dir, "m")
        self.p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", self.SETUP,
                                   "setup", self.dir, debs_dir],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True)
        line = self.p.stdout.readline().strip()
        if line != "ready":
            self.p.kill()
            err = self.p.stderr.read()
            raise RuntimeError(f"cannot make the throwaway root: {err.strip()}")

    def run(self, cmd, input=None, timeout=60, user=None):  # noqa: A002
        """Runs a shell command in the chroot with a clean environment."""
        argv = ["nsenter", f"--target={self.p.pid}", "--mount", "chroot", self.merged]
        if user:
            argv += ["runuser", "-u", user, "--"]
        argv += ["/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "HOME=/root", "LANG=C", "/bin/sh", "-c", cmd]
        return helpers.run(argv, timeout=timeout, input=input)

    def ok(self, cmd, **kw):
        r = self.run(cmd, **kw)
        assert r.rc == 0, r
        return r

    def read(self, path):
        return self.ok(f"cat {path}").stdout

    def write(self, path, text, mode=0o644):
        self.ok(f"mkdir -p \"$(dirname {path})\" && umask 077 && cat > {path} && chmod {mode:o} {path}",
                input=text)

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, 9)
                self.p.wait(5)


@pytest.fixture(scope="module")
def host_files():
    before = {f: _digest(f) for f in HOST_FILES}
    yield
    after = {f: _digest(f) for f in HOST_FILES}
    assert after == before, "the host's files changed"


@pytest.fixture(scope="module")
def root(debs, tmp_path_factory, host_files):
    try:
        r = Root(str(tmp_path_factory.mktemp("troot")), debs["dir"])
    except RuntimeError as e:
        pytest.skip(str(e))
    # The administrator's own edits that must survive install and purge.
    nss = r.read("/etc/nsswitch.conf")
    nss += "# admin: keep this comment\nnetgroup:       files\n"
    r.write("/etc/nsswitch.conf", nss)
    r.original_nsswitch = nss
    yield r
    r.close()


def nss_line(text, db):
    return [ln for ln in text.splitlines() if re.match(rf"^\s*{db}:", ln)]


def pamtester(root, service, user, *ops):
    return root.run(f"pamtester -v {service} {user} {' '.join(ops or ('acct_mgmt',))}", timeout=30)


def allowed(res):
    return res.rc == 0 and SUCCESS in res.stdout + res.stderr


# ------------------------------------------------------------------ build and install

def test_lintian_reports_no_errors(debs):
    if not shutil.which("lintian"):
        pytest.skip("lintian is not installed")
    changes = [f for f in os.listdir(debs["dir"]) if f.endswith(".changes")]
    r = subprocess.run(["lintian", "--suppress-tags", "running-with-root-privileges",
                        os.path.join(debs["dir"], changes[0])], capture_output=True, text=True, timeout=300)
    tags = [ln for ln in (r.stdout + r.stderr).splitlines() if re.match(r"^[EW]: ", ln)]
    assert tags == [], "\n".join(tags)


@pytest.fixture(scope="module")
def installed(root, debs):
    """dpkg -i of the three packages (once; the removal test at the end takes them out)."""
    r = root.run("dpkg -i " + " ".join(f"/tmp/debs/{os.path.basename(debs[p])}" for p in PKGS), timeout=120)
    assert r.rc == 0, r
    return root


def test_install_edits_nsswitch_once_and_pam_stack(installed, debs):
    root = installed
    root.ok("test -e /lib/x86_64-linux-gnu/libnss_teleport.so.2 -o -e /lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)/libnss_teleport.so.2")
    multiarch = root.ok("ls -d /lib/*/security/pam_teleport.so").stdout.split("/")[2]
    root.ok(f"test -f /lib/{multiarch}/libnss_teleport.so.2 && test -f /usr/share/pam-configs/teleport "
            f"&& test -x /usr/bin/teleport-unix && test -f /usr/lib/{multiarch}/teleport-unix/libteleport-unix.so.0 "
            f"&& test -f /usr/lib/{multiarch}/teleport-unix/teleport-unix-h2.so "
            f"&& test -f /usr/lib/{multiarch}/teleport-unix/teleport-unix-crypto.so "
            "&& test -f /lib/systemd/system/teleport-unix-sync.timer "
            "&& test -f /usr/share/doc/teleport-unix/examples/teleport-unix.yaml "
            "&& test -f /usr/share/man/man8/pam_teleport.8.gz && test -f /usr/share/man/man8/teleport-unix.8.gz")

    nss = root.read("/etc/nsswitch.conf")
    for db in ("passwd", "group"):
        (line,) = nss_line(nss, db)
        words = line.split()
        assert words.count("teleport") == 1, line
        assert words[words.index("teleport") - 1] in ("files", "compat"), line
    for db in ("shadow", "gshadow", "hosts", "netgroup"):
        assert all("teleport" not in ln for ln in nss_line(nss, db)), nss
    # Everything but the two edited lines is as it was.
    strip = [ln for ln in nss.splitlines() if not re.match(r"^\s*(passwd|group):", ln)]
    orig = [ln for ln in root.original_nsswitch.splitlines() if not re.match(r"^\s*(passwd|group):", ln)]
    assert strip == orig

    # A second configure (reinstall) adds nothing.
    r = root.run(f"dpkg -i /tmp/debs/{os.path.basename(debs['libnss-teleport'])}", timeout=120)
    assert r.rc == 0, r
    assert root.read("/etc/nsswitch.conf") == nss

    # pam-auth-update: pam_teleport first in common-account, before pam_unix (whose
    # new_authtok_reqd=done would otherwise end the stack before it), never jumping; pam_unix's
    # success=1 still skips exactly pam_deny.
    acct = [ln for ln in root.read("/etc/pam.d/common-account").splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]
    mods = [ln.split()[-1] if ln.split()[-1].endswith(".so") else
            next(w for w in ln.split() if w.endswith(".so")) for ln in acct]
    assert mods.count("pam_teleport.so") == 1, acct
    assert mods.index("pam_teleport.so") < mods.index("pam_unix.so") < mods.index("pam_deny.so"), acct
    assert mods.index("pam_deny.so") == mods.index("pam_unix.so") + 1, acct
    assert re.search(r"\[success=1 ", acct[mods.index("pam_unix.so")]), acct
    # The same control words as etc/pam.d/teleport (the include for hand-written stacks).
    include = {}
    with open(os.path.join(TOP, "etc", "pam.d", "teleport"), encoding="utf-8") as f:
        for ln in f:
            m = re.match(r"^(account|session)\s+(\[[^]]*\]|\S+)\s+pam_teleport\.so", ln)
            if m:
                include[m.group(1)] = m.group(2)
    assert "account" in include
    assert include["account"] in acct[mods.index("pam_teleport.so")], (include, acct)
    # Its session line, when there is one, goes first in common-session's Additional
    # block: before pam_unix, pam_mkhomedir, pam_systemd (nothing reads user files first).
    sess = [ln for ln in root.read("/etc/pam.d/common-session").splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]
    smods = [next((w for w in ln.split() if w.endswith(".so")), "") for ln in sess]
    if "session" in include:
        assert smods.count("pam_teleport.so") == 1, sess
        assert include["session"] in sess[smods.index("pam_teleport.so")], (include, sess)
        assert smods.index("pam_teleport.so") < smods.index("pam_unix.so"), sess
    else:
        assert "pam_teleport.so" not in smods, sess
    noninteractive = root.read("/etc/pam.d/common-session-noninteractive")
    assert "pam_teleport.so" not in noninteractive, noninteractive
    # The sync timer is enabled (its service is skipped until the config exists).
    root.ok("test -L /etc/systemd/system/timers.target.wants/teleport-unix-sync.timer")
    unit = root.read("/lib/systemd/system/teleport-unix-sync.service")
    assert "ConditionPathExists=/etc/teleport-unix.yaml" in unit


def test_unconfigured_modules_are_harmless(installed):
    """Installed, no /etc/teleport-unix.yaml, no snapshot: nothing is refused or slowed."""
    root = installed
    root.ok("test ! -e /etc/teleport-unix.yaml && test ! -e /var/cache/teleport-unix/accounts.db")
    t0 = time.monotonic()
    r = root.run("getent passwd no-such-user-xyz")
    assert r.rc == 2, r
    assert time.monotonic() - t0 < 2, r
    # ... without loading the core (libcurl, OpenSSL, ...): nothing to fetch without a config.
    r = root.run("LD_DEBUG=files getent passwd no-such-user-abc 2>&1")
    assert "libnss_teleport.so.2" in r.stdout and "libteleport-unix" not in r.stdout, r.stdout[-3000:]
    assert root.ok("getent passwd root").stdout.startswith("root:x:0:0:")
    root.ok("id -u tulocal >/dev/null 2>&1 || useradd -M -s /bin/sh tulocal")
    for user in ("root", "tulocal"):
        res = pamtester(root, "login", user)
        assert allowed(res), res


# ------------------------------------------------------------------ configured

@pytest.fixture(scope="module")
def configured(installed, certs, tmp_path_factory):
    root = installed
    srv = helpers.start_auth_server(certs.dir, str(tmp_path_factory.mktemp("pkg-auth")), name="pkg-auth",
                                    control=False)
    try:
        for src, dst in ((certs.cert("client"), "host.crt"), (certs.key("client"), "host.key"), (certs.ca, "ca.crt")):
            with open(src, encoding="ascii") as f:
                root.write(f"/var/lib/teleport-unix/{dst}", f.read(), mode=0o600)
        doc = helpers.build_config(certs, srv.address, "/var/cache/teleport-unix")
        doc["auth"]["credentials"] = {"key_pair": {"cert": "/var/lib/teleport-unix/host.crt",
                                                   "key": "/var/lib/teleport-unix/host.key",
                                                   "ca": "/var/lib/teleport-unix/ca.crt"}}
        root.write("/etc/teleport-unix.yaml", helpers.yaml_text(doc), mode=0o644)
        r = root.run("teleport-unix sync", timeout=60)
        assert r.rc == 0, r
        yield srv
    finally:
        srv.stop()


def test_getent_through_glibc(root, configured):
    line = root.ok(f"getent passwd {ALLOWED}").stdout.strip()
    f = line.split(":")
    assert f[0] == ALLOWED and f[1] == "*" and int(f[2]) >= 200000, line
    assert root.run(f"getent shadow {ALLOWED}").rc == 2  # no shadow entry is claimed
    assert root.ok(f"id -un {ALLOWED}").stdout.strip() == ALLOWED


def test_password_field_star_passes_pam_unix_x_does_not(root, configured):
    """Why NSS serves '*' (docs/accounts.md): the same kind of entry with 'x' and no shadow
    entry fails pam_unix's account check in common-account; with '*' it passes."""
    root.ok("grep -q '^tunoshadow:' /etc/passwd || echo 'tunoshadow:x:4712:4712::/nonexistent:/bin/sh' >>/etc/passwd")
    res = pamtester(root, "login", "tunoshadow")
    # pam_unix: PAM_AUTHINFO_UNAVAIL (default=ignore), so the stack falls to pam_deny
    assert not allowed(res) and "Authentication failure" in res.stdout + res.stderr, res
    root.ok("sed -i 's/^tunoshadow:x:/tunoshadow:*:/' /etc/passwd")
    res = pamtester(root, "login", "tunoshadow")
    assert allowed(res), res
    root.ok("sed -i '/^tunoshadow:/d' /etc/passwd")


def test_doctor_accepts_the_package_setup(root, configured):
    """`teleport-unix doctor` (issue 10 F) finds nothing to fix in the NSS and PAM wiring that the
    packages set up (nsswitch.conf, the modules, pam_teleport's place in login/su/sshd)."""
    r = root.run("teleport-unix doctor", timeout=60)
    assert r.rc in (0, 1, 2), r
    bad = [ln for ln in r.stdout.splitlines()
           if re.match(r"^(WARNING|ERROR)\s+(nss|pam)\.", ln)]
    assert bad == [], r.stdout
    assert re.search(r"^ok\s+pam\.login\.account", r.stdout, re.M) or "pam.login" not in r.stdout, r.stdout


def test_login_stack_decides_teleport_users(root, configured):
    assert allowed(pamtester(root, "login", ALLOWED))
    res = pamtester(root, "login", LOCKED)
    assert res.rc != 0 and not allowed(res), res
    assert "Teleport: access denied" in res.stdout + res.stderr, res
    for user in ("root", "tulocal"):
        res = pamtester(root, "login", user)
        assert allowed(res), res


# ------------------------------------------------------------------ RHEL-family stacks

RHEL_TELEPORT = "account [success=ok ignore=ignore user_unknown=ignore default=bad] pam_teleport.so"


@pytest.mark.parametrize("profile", ["local", "sssd"])
@pytest.mark.parametrize("stack,service", [("password-auth", "sshd"), ("system-auth", "login")])
def test_rhel_account_stacks(root, configured, profile, stack, service):
    """authselect's account sections (fixtures) pass a Teleport account by themselves, and
    with pam_teleport in front (as /etc/pam.d/teleport is included on Debian) decide it."""
    with open(os.path.join(FIXTURES_RHEL, profile, stack), encoding="utf-8") as f:
        root.write(f"/etc/pam.d/rhel-{profile}-{stack}", f.read())
    plain, teleport = f"tu-rhel-{profile}-{service}", f"tu-rhel-{profile}-{service}-tp"
    root.write(f"/etc/pam.d/{plain}", f"account include rhel-{profile}-{stack}\n")
    root.write(f"/etc/pam.d/{teleport}", f"{RHEL_TELEPORT}\naccount include rhel-{profile}-{stack}\n")
    for user in (ALLOWED, LOCKED, "tulocal", "root"):
        res = pamtester(root, plain, user)
        assert allowed(res), res  # pam_unix does not refuse a Teleport account
    for user in (ALLOWED, "tulocal", "root"):
        res = pamtester(root, teleport, user)
        assert allowed(res), res
    res = pamtester(root, teleport, LOCKED)
    assert not allowed(res) and "Teleport: access denied" in res.stdout + res.stderr, res


# ------------------------------------------------------------------ passwd, chage, su

def test_passwd_and_chage_grant_nothing(root, configured):
    shadow, passwd = root.read("/etc/shadow"), root.read("/etc/passwd")
    r = root.run(f"passwd {ALLOWED}", input="Secret-123-x\nSecret-123-x\n")
    assert r.rc != 0, r
    r = root.run(f"chage -l {ALLOWED}")
    assert r.rc != 0 and "does not exist in /etc/passwd" in r.stderr, r
    r = root.run(f"chage -E 0 -M 99999 {ALLOWED}")
    assert r.rc != 0, r
    r = root.run(f"usermod -p '$6$x$y' {ALLOWED}")
    assert r.rc != 0, r
    # Nothing was written: no password and no aging appear anywhere.
    assert root.read("/etc/shadow") == shadow
    assert root.read("/etc/passwd") == passwd
    assert root.ok(f"getent passwd {ALLOWED}").stdout.split(":")[1] == "*"
    assert root.run(f"getent shadow {ALLOWED}").rc == 2


def test_su(root, configured):
    # From an unprivileged local user: a password is asked and none can match ('*').
    for attempt in ("", "*"):
        r = root.run(f"su {ALLOWED} -c 'id -un'", input=attempt + "\n", user="tulocal")
        assert r.rc != 0 and ALLOWED not in r.stdout, r
        assert "Authentication failure" in r.stderr, r
    # root: pam_rootok skips authentication, the account stack (pam_teleport) still decides.
    r = root.run(f"su - {ALLOWED} -c 'id -un'")
    assert r.rc == 0 and r.stdout.strip().splitlines()[-1] == ALLOWED, r
    r = root.run(f"su - {LOCKED} -c 'id -un'")
    assert r.rc != 0 and LOCKED not in r.stdout, r
    assert "Teleport: access denied" in r.stdout + r.stderr, r


# ------------------------------------------------------------------ OpenSSH

SSHD = "/usr/sbin/sshd"
LOCAL_SSH_USER, LOCAL_SSH_UID = "localu", 4711


def _keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", os.path.basename(path), "-f", path],
                   check=True, capture_output=True, timeout=60)
    return path


class Sshd:
    """Debian's sshd running inside the throwaway root (package installed, stock /etc/pam.d/sshd,
    pam-auth-update's common-account/common-session), and an ssh client outside it."""

    def __init__(self, root, keys, port):
        self.root, self.keys, self.port, self.n = root, keys, port, 0
        self.log = "/var/log/sshd-tu.log"

    def log_text(self):
        return self.root.run(f"cat {self.log}").stdout

    def key(self, name):
        path = os.path.join(self.keys, name)
        return path if os.path.exists(path) else _keygen(path)

    def cert(self, name, key_id, principals):
        self.n += 1
        pub = os.path.join(self.keys, f"{name}.{self.n}.pub")
        shutil.copy(self.key(name) + ".pub", pub)
        subprocess.run(["ssh-keygen", "-q", "-s", os.path.join(self.keys, "teleport_user_ca"), "-I", key_id,
                        "-n", ",".join(principals), "-V", "-5m:+1h", pub], check=True, capture_output=True)
        return pub[:-4] + "-cert.pub"

    def ssh(self, login, key, cert=None):
        start = len(self.log_text())
        argv = ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", self.key(key), "-o", "IdentitiesOnly=yes",
                "-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"]
        if cert:
            argv += ["-o", f"CertificateFile={cert}"]
        r = subprocess.run(argv + [f"{login}@127.0.0.1", "id"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        time.sleep(0.3)  # sshd logs the end of a connection just after the client left
        return r.returncode, r.stdout, r.stderr, self.log_text()[start:]


@pytest.fixture(scope="module")
def sshd(installed, certs, tmp_path_factory):
    """Switches the installed host to the `sshd` dataset with pam.trust_ssh_cert, installs the
    package's sshd drop-in (from its examples) plus one TrustedUserCAKeys line, and starts sshd."""
    root = installed
    if not os.path.exists(SSHD) or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        pytest.skip("Debian's openssh-server and openssh-client are not installed (tools/debian-packages.txt)")
    work = str(tmp_path_factory.mktemp("pkg-sshd"))
    keys = os.path.join(work, "keys")
    os.makedirs(keys)
    tca = _keygen(os.path.join(keys, "teleport_user_ca"))
    srv = helpers.start_auth_server(certs.dir, os.path.join(work, "srv"), name="pkg-auth-sshd", control=False,
                                    dataset=os.path.join(helpers.FIXTURES, "sshd"),
                                    extra=["--ssh-user-ca", tca + ".pub"])
    proc = None
    try:
        doc = helpers.build_config(certs, srv.address, "/var/cache/teleport-unix")
        doc["auth"]["credentials"] = {"key_pair": {"cert": "/var/lib/teleport-unix/host.crt",
                                                   "key": "/var/lib/teleport-unix/host.key",
                                                   "ca": "/var/lib/teleport-unix/ca.crt"}}
        doc["pam"]["trust_ssh_cert"] = True
        for src, dst in ((certs.cert("client"), "host.crt"), (certs.key("client"), "host.key"), (certs.ca, "ca.crt")):
            with open(src, encoding="ascii") as f:
                root.write(f"/var/lib/teleport-unix/{dst}", f.read(), mode=0o600)
        root.write("/etc/teleport-unix.yaml", helpers.yaml_text(doc), mode=0o644)
        r = root.run("teleport-unix cache clear && teleport-unix sync", timeout=60)
        assert r.rc == 0, r
        with open(tca + ".pub", encoding="ascii") as f:
            root.write("/etc/ssh/teleport_user_ca.pub", f.read(), mode=0o644)
        root.ok("cp /usr/share/openssh/sshd_config /etc/ssh/sshd_config && mkdir -p /etc/ssh/sshd_config.d "
                "&& cp /usr/share/doc/teleport-unix/examples/sshd_config.d/teleport-unix.conf /etc/ssh/sshd_config.d/ "
                "&& echo 'TrustedUserCAKeys /etc/ssh/teleport_user_ca.pub' >/etc/ssh/sshd_config.d/teleport-ca.conf "
                "&& rm -f /etc/ssh/tu_hostkey* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/tu_hostkey "
                "&& mkdir -p -m 0755 /run/sshd /var/log")
        # The stock /etc/pam.d/sshd, untouched: pam_teleport comes from common-account/-session.
        assert "teleport" not in root.read("/etc/pam.d/sshd")
        # Homes: a local account with its own key; Teleport accounts get theirs (pam_mkhomedir
        # is the administrator's choice); lou (locked) has planted a plain key.
        root.ok(f"id -u {LOCAL_SSH_USER} >/dev/null 2>&1 || useradd -m -u {LOCAL_SSH_UID} -s /bin/sh {LOCAL_SSH_USER}")
        h = Sshd(root, keys, _free_port())
        for user, key in ((LOCAL_SSH_USER, "local"), ("lou", "lou-planted"), ("ana", None), ("fred", None)):
            root.ok(f"pw=$(getent passwd {user}) && uid=$(echo \"$pw\" | cut -d: -f3) && "
                    f"gid=$(echo \"$pw\" | cut -d: -f4) && install -d -m 0700 -o $uid -g $gid /home/{user} "
                    f"/home/{user}/.ssh")
            if key:
                with open(h.key(key) + ".pub", encoding="ascii") as f:
                    root.write(f"/home/{user}/.ssh/authorized_keys", f.read(), mode=0o600)
                root.ok(f"chown {user} /home/{user}/.ssh/authorized_keys")
        root.ok(f": > {h.log}")
        argv = ["nsenter", f"--target={root.p.pid}", "--mount", "chroot", root.merged, "/usr/bin/env", "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin", SSHD, "-D", "-E", h.log, "-o", f"Port={h.port}",
                "-o", "ListenAddress=127.0.0.1", "-o", "HostKey=/etc/ssh/tu_hostkey", "-o", "PidFile=none",
                "-o", "LogLevel=VERBOSE"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        deadline = time.monotonic() + 30
        while "Server listening on 127.0.0.1" not in h.log_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start (rc {proc.poll()}): {h.log_text()}")
            time.sleep(0.1)
        yield h
    finally:
        if proc is not None:
            try:
                os.killpg(proc.pid, 15)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        srv.stop()


def _free_port():
    import socket  # noqa: PLC0415
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sshd_with_the_installed_package(sshd):
    """Issue 10 D: part C's main cases against the installed package and pam-auth-update's stacks."""
    # An allowed Teleport user with a Teleport certificate: logged in, with the host groups.
    rc, out, err, log = sshd.ssh("ana", "ana", sshd.cert("ana", "ana", ["ana"]))
    assert rc == 0 and "(ana)" in out and "developers" in out, (rc, out, err, log)
    # A locked user's certificate: refused by ssh-principals at authentication.
    rc, out, err, log = sshd.ssh("lou", "lou", sshd.cert("lou", "lou", ["lou"]))
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)
    # The locked user's planted plain key: sshd accepts the key, the session line that
    # pam-auth-update put into common-session refuses: no command runs.
    rc, out, err, log = sshd.ssh("lou", "lou-planted")
    assert rc == 254 and "uid=" not in out and "Teleport: access denied" in out, (rc, out, err, log)
    assert "PAM: pam_open_session(): Permission denied" in log, log
    # A deny rule on a local login (root) and a key id that names no Teleport user.
    rc, out, err, log = sshd.ssh("root", "fred", sshd.cert("fred", "fred", ["fred", "root"]))
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)
    rc, out, err, log = sshd.ssh("ana", "ghost", sshd.cert("ghost", "ghost", ["ana"]))
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)
    # A local account with its own key keeps working.
    rc, out, err, log = sshd.ssh(LOCAL_SSH_USER, "local")
    assert rc == 0 and out.startswith(f"uid={LOCAL_SSH_UID}({LOCAL_SSH_USER})"), (rc, out, err, log)


# ------------------------------------------------------------------ removal

def test_remove_and_purge_restore_nsswitch_and_pam(installed):
    root = installed
    # The administrator edits nsswitch.conf after installation: kept.
    nss = root.read("/etc/nsswitch.conf") + "# admin: added after install\n"
    root.write("/etc/nsswitch.conf", nss)
    r = root.run("dpkg -r libpam-teleport libnss-teleport teleport-unix", timeout=120)
    assert r.rc == 0, r
    want = root.original_nsswitch + "# admin: added after install\n"
    assert root.read("/etc/nsswitch.conf") == want
    for f in ("common-account", "common-session", "common-session-noninteractive"):
        assert "pam_teleport" not in root.read(f"/etc/pam.d/{f}"), f
    # Logins still work once the module is gone.
    assert allowed(pamtester(root, "login", "root"))
    r = root.run("dpkg --purge libpam-teleport libnss-teleport teleport-unix", timeout=120)
    assert r.rc == 0, r
    assert root.read("/etc/nsswitch.conf") == want
    root.ok("test ! -e /lib/systemd/system/teleport-unix-sync.timer "
            "&& test ! -e /etc/systemd/system/timers.target.wants/teleport-unix-sync.timer")
