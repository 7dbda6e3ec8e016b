# SPDX-License-Identifier: Apache-2.0
"""test_sshd.py - OpenSSH logins with Teleport user certificates, end to end (issue 10 B/C,
issue 14 F3): Debian's real sshd, the distribution's own PAM stack and glibc NSS, no wrappers.

A build configured like a Debian host (--prefix=/usr --sysconfdir=/etc --libdir=/usr/lib/<triplet>
...) is installed into a staging directory (cached per build tree in <builddir>/sshd-e2e), and a
private mount namespace (unshare --mount, / made rprivate) shows it at the real paths:

  /usr          overlay: the staged /usr over the host's (teleport-unix, libnss_teleport.so.2,
                pam_teleport.so, the private core), so setuid helpers (unix_chkpwd) see them too
  /etc          overlay: teleport-unix.yaml, nsswitch.conf with `teleport` after `files`,
                Debian's pristine sshd_config (/usr/share/openssh/sshd_config) with the shipped
                drop-in sshd_config.d/teleport-unix.conf and one TrustedUserCAKeys line,
                passwd/shadow/group with one local account
  /etc/pam.d    a copy of the host's, bind-mounted, whose sshd has "@include teleport" (the
                shipped include) right before "@include common-account"
  /run /home /var/log   tmpfs (sshd's privsep dir, homes, lastlog/wtmp)

sshd runs there on a loopback port (-D -E logfile); `ssh` connects from outside with keys and
certificates made by ssh-keygen: a test "Teleport user CA" (the CA the stand-in Auth serves and
sshd trusts), certificates with key id = Teleport user, principals = logins and Teleport's
`mfa-verified` extension.  Nothing on the host changes.  Dataset: tests/fixtures/sshd.
"""

import os
import re
import shutil
import socket
import subprocess
import time

import pytest

import helpers

SSHD = "/usr/sbin/sshd"
PRISTINE_SSHD_CONFIG = "/usr/share/openssh/sshd_config"
LOCAL_USER = "localu"
LOCAL_UID = 4711

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespace, sshd)"),
    pytest.mark.skipif(not os.path.exists(SSHD) or not shutil.which("ssh") or not shutil.which("ssh-keygen"),
                       reason="Debian's openssh-server and openssh-client are not installed "
                              "(tools/debian-packages.txt)"),
    pytest.mark.skipif(not shutil.which("unshare"), reason="unshare (util-linux) is missing"),
    # tools/harden.sh runs the suite again under ASan: this test uses its own plain build,
    # which the first pass already ran, and sshd cannot load ASan-built modules.
    pytest.mark.skipif(bool(os.environ.get("TU_PRELOAD")), reason="sanitizer pass: covered by the plain pass"),
    # pytest-xdist: tests that run make in (or beside) the build dir share one worker.
    pytest.mark.xdist_group("buildtree"),
]




def _run(argv, timeout=600, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{argv}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="session")
def debian_stage(private_build):
    """`make install DESTDIR=stage` of the build configured like a Debian host (conftest.py)."""
    stage = os.path.join(private_build, "stage")
    shutil.rmtree(stage, ignore_errors=True)
    _run(["make", "-s", "install", f"DESTDIR={stage}"], cwd=private_build)
    return stage


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path, *extra):
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", os.path.basename(path), "-f", path, *extra])
    return path


class Host:
    """sshd in its namespace, and an ssh client to it."""

    def __init__(self, work, port, log, proc):
        self.work, self.port, self.log, self.proc = work, port, log, proc
        self.n = 0

    def log_text(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def key(self, name):
        path = os.path.join(self.work, "keys", name)
        if not os.path.exists(path):
            _keygen(path)
        return path

    def cert(self, name, ca, key_id, principals, extensions=()):
        """Signs key `name` with CA key `ca`; returns the certificate's path."""
        key = self.key(name)
        opts = []
        for e in extensions:
            opts += ["-O", f"extension:{e}"]
        # ssh-keygen writes <key>-cert.pub: one copy per call, so tests stay independent.
        self.n += 1
        pub = os.path.join(self.work, "keys", f"{name}.{self.n}.pub")
        shutil.copy(key + ".pub", pub)
        _run(["ssh-keygen", "-q", "-s", ca, "-I", key_id, "-n", ",".join(principals), "-V", "-5m:+1h", *opts, pub])
        return pub[:-4] + "-cert.pub"

    def ssh(self, login, key, cert=None, command="id"):
        """Logs in as login with key (and certificate); returns (rc, stdout, stderr, new sshd log)."""
        start = len(self.log_text())
        argv = ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", self.key(key),
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"]
        if cert:
            argv += ["-o", f"CertificateFile={cert}"]
        argv += [f"{login}@127.0.0.1", command]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        # sshd writes its last lines for a connection just after the client is gone
        time.sleep(0.3)
        return r.returncode, r.stdout, r.stderr, self.log_text()[start:]


SETUP = r"""
set -eu
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$STAGE/usr:/usr" /usr
mount -t overlay overlay -o "lowerdir=$ETC:/etc" /etc
mount --bind "$PAMD" /etc/pam.d
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd /run/teleport-unix
mount -t tmpfs -o mode=0755 tmpfs /var/log
mount -t tmpfs -o mode=0755 tmpfs /home
/usr/bin/teleport-unix sync >"$WORK/sync.log" 2>&1
for u in $HOMES; do
    pw=$(getent passwd "$u") || { echo "getent passwd $u failed" >&2; exit 3; }
    uid=$(echo "$pw" | cut -d: -f3); gid=$(echo "$pw" | cut -d: -f4)
    install -d -m 0755 -o "$uid" -g "$gid" "/home/$u"
    install -d -m 0700 -o "$uid" -g "$gid" "/home/$u/.ssh"
    if [ -f "$WORK/authorized_keys.$u" ]; then
        install -m 0600 -o "$uid" -g "$gid" "$WORK/authorized_keys.$u" "/home/$u/.ssh/authorized_keys"
    fi
done
getent passwd ana >"$WORK/getent.txt"
exec /usr/sbin/sshd -D -E "$LOG" -f /etc/ssh/sshd_config -o "Port=$PORT" -o ListenAddress=127.0.0.1 \
    -o "HostKey=$WORK/hostkey" -o PidFile=none -o LogLevel=VERBOSE
"""


def _host_state():
    """What the test must not change on the host."""
    state = {}
    for p in ("/etc/nsswitch.conf", "/etc/pam.d/sshd", "/etc/passwd", "/etc/group", "/etc/ssh/sshd_config",
              "/etc/teleport-unix.yaml", "/etc/ssh/sshd_config.d/teleport-unix.conf", "/usr/bin/teleport-unix",
              "/run/sshd", "/home"):
        try:
            st = os.stat(p)
            state[p] = (st.st_mode, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            state[p] = None
    state["/home/*"] = sorted(os.listdir("/home")) if os.path.isdir("/home") else None
    return state


def _nsswitch_with_teleport(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"^(passwd|group):(\s*)(.*)$", line)
        if m and "teleport" not in m.group(3).split():
            srcs = m.group(3).split()
            i = srcs.index("files") + 1 if "files" in srcs else 0
            srcs.insert(i, "teleport")
            line = f"{m.group(1)}:{m.group(2)}{' '.join(srcs)}"
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def host(debian_stage, certs, tmp_path_factory):
    before = _host_state()
    work = str(tmp_path_factory.mktemp("sshd"))
    os.chmod(work, 0o755)
    os.makedirs(os.path.join(work, "keys"))
    # On the namespace's /run tmpfs: the public snapshot must be reachable by every user
    # (pytest's tmp directories are root's 0700).
    cache = "/run/teleport-unix"

    # The Teleport user CA (served by the stand-in Auth, trusted by sshd) and a self-made one.
    tca = _keygen(os.path.join(work, "keys", "teleport_user_ca"))
    _keygen(os.path.join(work, "keys", "own_ca"))
    _keygen(os.path.join(work, "hostkey"))

    srv = helpers.start_auth_server(certs.dir, os.path.join(work, "servers"), name="auth-sshd",
                                    dataset=os.path.join(helpers.FIXTURES, "sshd"),
                                    ssh_user_ca=tca + ".pub")

    etc = os.path.join(work, "etc")
    os.makedirs(os.path.join(etc, "ssh", "sshd_config.d"))
    conf = helpers.build_config(certs, srv.address, cache)
    conf["pam"]["trust_ssh_cert"] = True
    yaml = helpers.write_yaml(os.path.join(etc, "teleport-unix.yaml"), conf)
    os.chmod(yaml, 0o600)
    with open("/etc/nsswitch.conf", encoding="utf-8") as f:
        nss = _nsswitch_with_teleport(f.read())
    assert re.search(r"^passwd:.*\bfiles teleport\b", nss, re.M), nss
    with open(os.path.join(etc, "nsswitch.conf"), "w", encoding="utf-8") as f:
        f.write(nss)
    shutil.copy(PRISTINE_SSHD_CONFIG, os.path.join(etc, "ssh", "sshd_config"))
    examples = os.path.join(debian_stage, "usr", "share", "doc", "teleport-unix", "examples")
    shutil.copy(os.path.join(examples, "sshd_config.d", "teleport-unix.conf"),
                os.path.join(etc, "ssh", "sshd_config.d", "teleport-unix.conf"))
    with open(os.path.join(etc, "ssh", "sshd_config.d", "teleport-ca.conf"), "w", encoding="utf-8") as f:
        f.write(f"TrustedUserCAKeys {tca}.pub\n")
    # One local account with its own key (passwd/shadow/group copies).
    for name, line in (("passwd", f"{LOCAL_USER}:x:{LOCAL_UID}:{LOCAL_UID}::/home/{LOCAL_USER}:/bin/sh"),
                       ("group", f"{LOCAL_USER}:x:{LOCAL_UID}:"),
                       ("shadow", f"{LOCAL_USER}:*:19000:0:99999:7:::")):
        with open(f"/etc/{name}", encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(etc, name), "w", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n" + line + "\n")
        os.chmod(os.path.join(etc, name), 0o640 if name == "shadow" else 0o644)

    # The distribution's PAM configuration, with the documented include in sshd.
    pamd = os.path.join(work, "pam.d")
    shutil.copytree("/etc/pam.d", pamd, symlinks=True)
    shutil.copy(os.path.join(examples, "pam.d", "teleport"), os.path.join(pamd, "teleport"))
    with open(os.path.join(pamd, "sshd"), encoding="utf-8") as f:
        text = f.read()
    assert re.search(r"^@include common-account$", text, re.M), text
    text = re.sub(r"^@include common-account$", "@include teleport\n@include common-account", text, count=1,
                  flags=re.M)
    with open(os.path.join(pamd, "sshd"), "w", encoding="utf-8") as f:
        f.write(text)

    # authorized_keys: the local account's own key; a plain key planted by the locked lou;
    # mia's own CA (a user-written cert-authority line, issue 14 F3).
    h = Host(work, _free_port(), os.path.join(work, "sshd.log"), None)
    for user, line in ((LOCAL_USER, open(h.key("local") + ".pub").read()),
                       ("lou", open(h.key("lou-planted") + ".pub").read()),
                       ("mia", "cert-authority " + open(os.path.join(work, "keys", "own_ca.pub")).read())):
        with open(os.path.join(work, f"authorized_keys.{user}"), "w", encoding="utf-8") as f:
            f.write(line)

    env = dict(os.environ, STAGE=debian_stage, ETC=etc, PAMD=pamd, WORK=work, LOG=h.log, PORT=str(h.port),
               HOMES=f"{LOCAL_USER} ana lou mia fred otto dee")
    script = os.path.join(work, "setup.sh")
    with open(script, "w", encoding="utf-8") as f:
        f.write(SETUP)
    open(h.log, "w").close()
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", script], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    h.proc = proc
    deadline = time.monotonic() + 60
    while "Server listening on 127.0.0.1" not in h.log_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.stdout.read() if proc.stdout else ""
            sync = open(os.path.join(work, "sync.log")).read() if os.path.exists(os.path.join(work, "sync.log")) else ""
            pytest.fail(f"sshd did not start (rc {proc.poll()}):\n{out}\nsync: {sync}\nlog: {h.log_text()}\n"
                        f"auth: {srv.stderr()[-2000:]}")
        time.sleep(0.1)
    h.tca = tca
    h.own_ca = os.path.join(work, "keys", "own_ca")
    h.srv = srv
    h.before = before
    yield h
    try:
        os.killpg(proc.pid, 15)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
    srv.stop()


def _ids(out):
    """`id` output -> (uid, set of group names)."""
    m = re.match(r"uid=(\d+)\(([^)]*)\)", out)
    assert m, out
    return int(m.group(1)), set(re.findall(r"\d+\(([^)]*)\)", out.split("groups=", 1)[-1]))


def test_allowed_user_runs_id_with_host_groups(host):
    cert = host.cert("ana", host.tca, "ana", ["ana"])
    rc, out, err, log = host.ssh("ana", "ana", cert)
    assert rc == 0, (out, err, log)
    uid, groups = _ids(out)
    assert "uid=" in out and "(ana)" in out and uid >= 200000, out
    assert "developers" in groups, out
    assert re.search(r"Accepted publickey for ana from 127\.0\.0\.1 .*ID ana ", log), log


def test_locked_user_refused(host):
    cert = host.cert("lou", host.tca, "lou", ["lou"])
    rc, out, err, log = host.ssh("lou", "lou", cert)
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)
    assert "AuthorizedPrincipalsCommand" in log and "Accepted publickey" not in log, log


def test_locked_user_planted_key_refused_in_session(host):
    """A plain key in the locked user's authorized_keys: sshd accepts the key, PAM's session
    phase judges the login's owner (lou, locked) and refuses: no command runs."""
    rc, out, err, log = host.ssh("lou", "lou-planted")
    # sshd runs nothing without an open PAM session: exit 254 (session.c), PAM's message shown
    assert rc == 254 and "uid=" not in out and "Teleport: access denied" in out, (rc, out, err, log)
    assert "Accepted publickey for lou" in log, log
    assert "PAM: pam_open_session(): Permission denied" in log, log


def test_refused_session_gets_no_forwarding(host):
    """The account phase answers PAM_IGNORE for sshd logins and the session phase refuses; sshd
    keeps the connection after a failed pam_open_session but restricts it.  No command runs
    (above), and no forwarding either: `ssh -N -W` to sshd's own port must not reach it (its
    banner would come back on stdout)."""
    start = len(host.log_text())
    argv = ["ssh", "-F", "/dev/null", "-p", str(host.port), "-i", host.key("lou-planted"),
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "-o", "ExitOnForwardFailure=yes",
            "-N", "-W", f"127.0.0.1:{host.port}", "lou@127.0.0.1"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    time.sleep(0.3)
    log = host.log_text()[start:]
    assert "Accepted publickey for lou" in log, log
    assert "PAM: pam_open_session(): Permission denied" in log, log
    assert r.returncode != 0 and "SSH-2.0" not in r.stdout, (r.returncode, r.stdout, r.stderr, log)


def test_mfa_role_plain_cert_refused_mfa_cert_allowed(host):
    plain = host.cert("mia", host.tca, "mia", ["mia"])
    rc, out, err, log = host.ssh("mia", "mia", plain)
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)
    mfa = host.cert("mia", host.tca, "mia", ["mia"], extensions=["mfa-verified=5f3c2b9e-mfa-device"])
    rc, out, err, log = host.ssh("mia", "mia", mfa)
    assert rc == 0 and "(mia)" in out, (rc, out, err, log)


def test_device_role_needs_device_extensions(host):
    """Role ssh-device requires a trusted device: a certificate with Teleport's three
    teleport-device-* extensions proves it, a plain one does not."""
    plain = host.cert("dee", host.tca, "dee", ["dee"])
    rc, out, err, log = host.ssh("dee", "dee", plain)
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)
    dev = host.cert("dee", host.tca, "dee", ["dee"], extensions=[
        "teleport-device-id=7f1c3d2e-device", "teleport-device-asset-tag=C02XYZ",
        "teleport-device-credential-id=cred-1"])
    rc, out, err, log = host.ssh("dee", "dee", dev)
    assert rc == 0 and "(dee)" in out, (rc, out, err, log)


def test_self_made_ca_proves_nothing(host):
    """mia writes `cert-authority <own CA>` in her authorized_keys and signs herself an
    mfa-verified certificate: sshd accepts it (authorized_keys), but it is not Teleport's CA,
    so it carries no Teleport identity and no MFA: the session is refused (issue 14 F3)."""
    own = host.cert("mia-own", host.own_ca, "mia", ["mia"], extensions=["mfa-verified=5f3c2b9e-mfa-device"])
    rc, out, err, log = host.ssh("mia", "mia-own", own)
    assert rc == 254 and "uid=" not in out and "Teleport: access denied" in out, (rc, out, err, log)
    assert "Accepted publickey for mia" in log, log
    assert "PAM: pam_open_session(): Permission denied" in log, log


def test_deny_rule_on_root(host):
    """fred's logins trait lists root and his certificate names root, but role ssh-no-root
    denies it: refused, although root is a local account (not a Teleport login)."""
    cert = host.cert("fred", host.tca, "fred", ["fred", "root"])
    rc, out, err, log = host.ssh("root", "fred", cert)
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)
    assert "Accepted publickey" not in log, log
    rc, out, err, log = host.ssh("fred", "fred", cert)
    assert rc == 0 and "(fred)" in out, (rc, out, err, log)


def test_root_allowed_by_role(host):
    """The positive control: otto's role allows root, so his certificate logs in as root."""
    cert = host.cert("otto", host.tca, "otto", ["otto", "root"])
    rc, out, err, log = host.ssh("root", "otto", cert)
    assert rc == 0 and out.startswith("uid=0(root)"), (rc, out, err, log)


def test_key_id_naming_no_teleport_user_refused(host):
    cert = host.cert("ghost", host.tca, "ghost", ["ana", "root"])
    for login in ("ana", "root"):
        rc, out, err, log = host.ssh(login, "ghost", cert)
        assert rc == 255 and "Permission denied" in err, (login, rc, out, err, log)
        assert "Accepted publickey" not in log, log


def test_cert_for_another_login_refused(host):
    """ana's certificate lists lou as a principal too; lou is not one of ana's logins."""
    cert = host.cert("ana", host.tca, "ana", ["ana", "lou"])
    rc, out, err, log = host.ssh("lou", "ana", cert)
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)


def test_local_account_with_own_key(host):
    rc, out, err, log = host.ssh(LOCAL_USER, "local")
    assert rc == 0 and out.startswith(f"uid={LOCAL_UID}({LOCAL_USER})"), (rc, out, err, log)
    assert f"Accepted publickey for {LOCAL_USER}" in log, log


def test_offline_from_cache(host):
    """Auth goes away (runs last but one): ssh-principals and the session phase decide from the
    cache that the setup's sync wrote (pam.offline: cached), the same way."""
    host.srv.stop()
    rc, out, err, log = host.ssh("ana", "ana", host.cert("ana", host.tca, "ana", ["ana"]))
    assert rc == 0 and "(ana)" in out, (rc, out, err, log)
    rc, out, err, log = host.ssh("lou", "lou", host.cert("lou", host.tca, "lou", ["lou"]))
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)
    rc, out, err, log = host.ssh("root", "fred", host.cert("fred", host.tca, "fred", ["fred", "root"]))
    assert rc == 255 and "Permission denied" in err, (rc, out, err, log)
    mfa = host.cert("mia", host.tca, "mia", ["mia"], extensions=["mfa-verified=5f3c2b9e-mfa-device"])
    rc, out, err, log = host.ssh("mia", "mia", mfa)
    assert rc == 0 and "(mia)" in out, (rc, out, err, log)
    rc, out, err, log = host.ssh("lou", "lou-planted")
    assert rc == 254 and "PAM: pam_open_session(): Permission denied" in log, (rc, out, err, log)


def test_host_unchanged(host):
    """The namespace kept everything away from the host."""
    assert _host_state() == host.before
