# SPDX-License-Identifier: Apache-2.0
"""test_doctor.py - `teleport-unix doctor --root DIR` over fake host roots (issue 10 F).

Each test builds a root shaped like a Debian 12 host wired to teleport-unix: nsswitch.conf,
/etc/pam.d (Debian-shaped stacks written here, the repository's etc/pam.d/teleport as the
installed include), the modules from the build tree at <libdir> and <libdir>/security where
glibc and libpam load them, the credential, a config, a cache written by `sync` against the
stand-in Auth server, sshd_config with the shipped drop-in and a TrustedUserCAKeys file; then breaks one thing and checks that doctor names
it, where it is, the fix, the exit code (0 ok, 1 warnings, 2 errors) and --json.

The trust checks need files owned by root: the tests are skipped when not run as root.
"""

import os
import shutil
import stat

import pytest

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="doctor's owner/mode checks need root-owned files (run as root)"),
    # pytest-xdist: tests that run make in the build dir share one worker (test_install.py).
    pytest.mark.xdist_group("buildtree"),
]

# Debian 12 shapes (written for these tests, not copied): common-account as pam-auth-update
# writes it, sshd/login/su including it the way the distribution does.
COMMON_ACCOUNT = ("account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so\n"
                  "account\trequisite\t\t\tpam_deny.so\n"
                  "account\trequired\t\t\tpam_permit.so\n")
PAM_FILES = {
    "common-auth": "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n"
                   "auth required pam_permit.so\n",
    "common-account": COMMON_ACCOUNT,
    "common-session": "session required pam_permit.so\nsession required pam_unix.so\n",
    "common-password": "password [success=1 default=ignore] pam_unix.so obscure yescrypt\n"
                       "password requisite pam_deny.so\npassword required pam_permit.so\n",
    "sshd": "@include common-auth\n"
            "account    required     pam_nologin.so\n"
            "@include teleport\n"
            "@include common-account\n"
            "session    required     pam_loginuid.so\n"
            "@include common-session\n"
            "session    required     pam_env.so user_readenv=1 envfile=/etc/default/locale\n"
            "@include common-password\n",
    "login": "auth requisite pam_nologin.so\n@include common-auth\n@include teleport\n"
             "@include common-account\n@include common-session\n@include common-password\n",
    "su": "auth sufficient pam_rootok.so\n@include common-auth\n@include teleport\n"
          "@include common-account\n@include common-session\n",
}
# A public key made for this test with ssh-keygen -t ed25519 (its private half was discarded).
CA_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII+8xA7QhY3p2ORRGDfTndXo5iZR2VEHYMXaZkFsNIcK test-teleport-user-ca\n"
with open(os.path.join(TOP, "tests/fake_auth/server.py"), encoding="utf-8") as _f:
    SERVES_USER_CA = "--ssh-user-ca" in _f.read()
SSHD_CONFIG = ("Include /etc/ssh/sshd_config.d/*.conf\n"
               "KbdInteractiveAuthentication no\n"
               "UsePAM yes\n"
               "X11Forwarding yes\n"
               "Subsystem sftp /usr/lib/openssh/sftp-server\n")


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def install(src, dst, mode=0o644):
    shutil.copy(src, dst)
    os.chmod(dst, mode)


def libc_dir():
    """Where this process's libc came from (the directory glibc and libpam use)."""
    with open("/proc/self/maps", encoding="utf-8") as f:
        for line in f:
            p = line.split()[-1]
            if os.path.basename(p).startswith("libc.so"):
                return os.path.dirname(p)
    return "/lib"


class Host:
    """A fake root.  .path, .config (host path inside the root), .layout (doctor's answers)."""

    def __init__(self, path, layout, cli, builddir, certs):
        self.path = path
        self.layout = layout
        self.cli = cli
        self.builddir = builddir
        self.certs = certs

    def p(self, rel):
        return os.path.join(self.path, rel.lstrip("/"))

    def write(self, rel, text, mode=0o644):
        write(self.p(rel), text, mode)

    def config(self, addresses, **over):
        """Writes the config doctor reads (paths as on the host) and returns the doc."""
        doc = helpers.build_config(self.certs, addresses, self.layout["nss_snapshot_dir"])
        doc["auth"]["credentials"] = {"key_pair": {"cert": "/var/lib/teleport-unix/host.crt",
                                                   "key": "/var/lib/teleport-unix/host.key",
                                                   "ca": "/var/lib/teleport-unix/ca.crt"}}
        doc["pam"]["trust_ssh_cert"] = True
        doc = helpers.deep_merge(doc, over)
        os.makedirs(os.path.dirname(self.p(self.layout["config"])), exist_ok=True)
        helpers.write_yaml(self.p(self.layout["config"]), doc)
        return doc

    def doctor(self, *args, json=False, insecure=False, timeout=30):
        argv = [self.cli]
        if os.environ.get("TU_VALGRIND") == "1":  # as conftest's run_cli: errors or leaks exit 99
            argv = [os.path.join(self.builddir, "libtool"), "--mode=execute", "valgrind", "-q",
                    "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
                    self.cli]
            timeout *= 10
        if insecure:
            argv.append("--insecure-perms")
        if json:
            argv.append("--json")
        argv += ["doctor", "--root", self.path, *args]
        env = dict(os.environ)
        env.pop("TELEPORT_UNIX_CONFIG", None)
        return helpers.run(argv, timeout=timeout, env=env)


def layout(cli, tmp_path):
    """The compiled-in paths, as doctor reports them for an empty root."""
    empty = tmp_path / "empty"
    empty.mkdir()
    r = helpers.run([cli, "--json", "doctor", "--root", str(empty), "--offline"])
    assert r.rc == 2, r
    return r.json()


@pytest.fixture
def host(tmp_path, cli, builddir, certs, auth_server):
    lay = layout(cli, tmp_path)
    root = str(tmp_path / "root")
    h = Host(root, lay, cli, builddir, certs)
    libdir = libc_dir()

    h.write("/etc/nsswitch.conf", "# fake host\npasswd:         files teleport systemd\n"
            "group:          files teleport systemd\nshadow:         files\nhosts: files dns\n")
    for name, text in PAM_FILES.items():
        h.write("/etc/pam.d/" + name, text)
    # Copies get the modes an install gives them, whatever the checkout's umask was.
    install(os.path.join(TOP, "etc/pam.d/teleport"), h.p("/etc/pam.d/teleport"))
    os.makedirs(h.p(libdir + "/security"), exist_ok=True)
    install(helpers.module_path(builddir, "libnss_teleport.so.2"), h.p(libdir + "/libnss_teleport.so.2"))
    install(helpers.module_path(builddir, "pam_teleport.so"), h.p(libdir + "/security/pam_teleport.so"))

    # The credential, as an admin installs it.
    for src, dst, mode in ((certs.cert("client"), "host.crt", 0o644), (certs.key("client"), "host.key", 0o600),
                           (certs.ca, "ca.crt", 0o644)):
        os.makedirs(h.p("/var/lib/teleport-unix"), exist_ok=True)
        shutil.copy(src, h.p("/var/lib/teleport-unix/" + dst))
        os.chmod(h.p("/var/lib/teleport-unix/" + dst), mode)

    # sshd: the stock file, the shipped drop-in (built with the install paths), the CA line.
    h.write("/etc/ssh/sshd_config", SSHD_CONFIG)
    dropin = os.path.join(builddir, "etc/sshd_config.d/teleport-unix.conf")
    if not os.path.exists(dropin):
        helpers.run(["make", "-C", builddir, "etc/sshd_config.d/teleport-unix.conf"], timeout=60)
    os.makedirs(h.p("/etc/ssh/sshd_config.d"), exist_ok=True)
    install(dropin, h.p("/etc/ssh/sshd_config.d/teleport-unix.conf"))
    h.write("/etc/ssh/sshd_config.d/teleport-ca.conf", "TrustedUserCAKeys /etc/ssh/teleport_user_ca.pub\n")
    h.write("/etc/ssh/teleport_user_ca.pub", CA_PUB)
    os.makedirs(h.p("/etc/systemd/system/timers.target.wants"))
    os.symlink("/lib/systemd/system/teleport-unix-sync.timer",
               h.p("/etc/systemd/system/timers.target.wants/teleport-unix-sync.timer"))
    bindir = helpers.make_vars(builddir, "bindir")["bindir"]
    h.write(bindir + "/teleport-unix", "#!/bin/sh\nexit 1\n", 0o755)

    # The cache, written by a real sync against the stand-in Auth (paths of this machine); the
    # server serves CA_PUB as the cluster's SSH user CA when it can.
    extra = []
    if SERVES_USER_CA:
        capath = str(tmp_path / "user_ca.pub")
        write(capath, CA_PUB)
        extra = ["--ssh-user-ca", capath]
    srv = auth_server(extra=extra)
    h.server = srv
    h.config(srv.address)
    hostcfg = str(tmp_path / "sync.yaml")
    doc = helpers.build_config(certs, srv.address, h.p(lay["nss_snapshot_dir"]))
    helpers.write_yaml(hostcfg, doc)
    r = helpers.run([cli, "--insecure-perms", "-c", hostcfg, "sync"], timeout=60)
    assert r.rc == 0, r
    return h


def checks(r):
    return {c["id"]: c for c in r.json()["checks"]}


def by_status(r, status):
    return [c for c in r.json()["checks"] if c["status"] == status]


def test_good_host(host):
    r = host.doctor(json=True)
    assert by_status(r, "error") == [] and by_status(r, "warning") == [], r.stdout
    assert r.rc == 0, r
    doc = r.json()
    assert doc["status"] == "ok"
    c = checks(r)
    for cid in ("config.file", "credentials.perms", "credentials.valid", "cache.dir", "cache.accounts",
                "cache.state", "auth.ping", "nss.passwd", "nss.group", "nss.initgroups", "nss.module",
                "pam.module", "pam.sshd.account", "pam.sshd.control", "pam.sshd.session",
                "pam.login.account", "pam.su.account", "sshd.usepam", "sshd.trusted-user-ca-keys",
                "sshd.expose-auth-info", "sshd.principals-command", "sshd.principals-command-user",
                "sync.timer"):
        assert c[cid]["status"] == "ok", (cid, c.get(cid))
        assert c[cid]["fix"] is None
    assert "before pam_unix.so" in c["pam.sshd.account"]["message"]
    assert "cluster example.com" in c["auth.ping"]["message"]
    assert c["auth.ping"]["where"] == host.layout["config"] + " (auth.addresses)"
    assert doc["counts"]["error"] == 0 and doc["counts"]["warning"] == 0

    t = host.doctor()
    assert t.rc == 0, t
    assert "0 warnings, 0 errors" in t.stdout
    assert "ok       nss.passwd: passwd: files teleport systemd" in t.stdout


def test_missing_nsswitch_entry(host):
    host.write("/etc/nsswitch.conf", "passwd: files systemd\ngroup: files teleport systemd\n")
    r = host.doctor(json=True)
    assert r.rc == 2, r
    c = checks(r)["nss.passwd"]
    assert c["status"] == "error"
    assert "'teleport' is missing from the passwd line" in c["message"]
    assert c["where"] == "/etc/nsswitch.conf:1"
    assert c["fix"] == "change line 1 of /etc/nsswitch.conf to 'passwd: files teleport systemd'"
    assert checks(r)["nss.group"]["status"] == "ok"

    t = host.doctor()
    assert t.rc == 2
    assert "ERROR    nss.passwd: 'teleport' is missing" in t.stdout
    assert "         fix:   change line 1 of /etc/nsswitch.conf to 'passwd: files teleport systemd'" in t.stdout


def test_teleport_before_files_and_module_missing(host):
    host.write("/etc/nsswitch.conf", "passwd: teleport files\ngroup: files [NOTFOUND=return] teleport\n")
    os.unlink(host.p(libc_dir() + "/libnss_teleport.so.2"))
    r = host.doctor(json=True)
    assert r.rc == 2
    c = checks(r)
    assert "comes before 'files'" in c["nss.passwd"]["message"]
    assert "stops the lookup before 'teleport'" in c["nss.group"]["message"]
    assert c["nss.module"]["status"] == "error"
    assert "where glibc loads NSS modules from" in c["nss.module"]["message"]
    assert "--with-nss-libdir=" in c["nss.module"]["fix"]


def test_pam_teleport_after_pam_unix(host):
    host.write("/etc/pam.d/sshd", PAM_FILES["sshd"].replace("@include teleport\n@include common-account\n",
                                                            "@include common-account\n@include teleport\n"))
    r = host.doctor(json=True)
    assert r.rc == 1, r
    c = checks(r)["pam.sshd.account"]
    assert c["status"] == "warning"
    assert "skipped in the account phase of sshd whenever pam_unix.so" in c["message"]
    assert "new_authtok_reqd" in c["message"]
    assert c["where"] == "/etc/pam.d/teleport:" + str(_teleport_account_line()) + \
        " (included from /etc/pam.d/sshd:4)"
    assert c["fix"].startswith("move '@include teleport' (/etc/pam.d/sshd:4) before "
                               "'@include common-account' (/etc/pam.d/sshd:3)")
    # login and su still have it in the right place.
    assert checks(r)["pam.login.account"]["status"] == "ok"
    # Behind a "sufficient" pam_unix it is skipped for every local login: an error.
    host.write("/etc/pam.d/common-account", "account sufficient pam_unix.so\naccount required pam_deny.so\n")
    r = host.doctor(json=True)
    assert r.rc == 2, r
    c = checks(r)["pam.sshd.account"]
    assert c["status"] == "error" and "returns success (control 'sufficient')" in c["message"], c


def _teleport_account_line():
    with open(os.path.join(TOP, "etc/pam.d/teleport"), encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.startswith("account") and "pam_teleport.so" in line:
                return i
    raise AssertionError("etc/pam.d/teleport has no account line")


def test_pam_fail_open_control_and_missing_include(host):
    host.write("/etc/pam.d/teleport", "account optional pam_teleport.so\n")
    host.write("/etc/pam.d/login", "@include common-auth\n@include common-account\n")
    r = host.doctor(json=True)
    assert r.rc == 2
    c = checks(r)
    assert c["pam.sshd.control"]["status"] == "error"
    assert "fails open" in c["pam.sshd.control"]["message"]
    assert c["pam.sshd.control"]["fix"] == ("write the control of /etc/pam.d/teleport:1 as "
                                            "'[success=ok user_unknown=ignore default=bad]'")
    assert c["pam.login.account"]["status"] == "warning"  # no password: only root opens it
    assert ("add the line '@include teleport' to /etc/pam.d/login right before "
            "'@include common-account' (/etc/pam.d/login:2)") in c["pam.login.account"]["fix"]


def test_world_writable_config_and_readable_key(host):
    cfg = host.p(host.layout["config"])
    os.chmod(cfg, 0o666)
    os.chmod(host.p("/var/lib/teleport-unix/host.key"), 0o644)
    r = host.doctor(json=True)
    assert r.rc == 2, r
    c = checks(r)
    assert c["config.file"]["status"] == "error"
    assert "writable by" in c["config.file"]["message"]
    assert c["config.file"]["fix"] == "chmod go-w " + host.layout["config"]  # paths as seen inside the root
    k = [x for x in r.json()["checks"] if x["id"] == "credentials.perms"]
    assert len(k) == 1 and k[0]["status"] == "error", k
    assert "readable by others" in k[0]["message"]
    assert k[0]["where"] == "/var/lib/teleport-unix/host.key"
    assert k[0]["fix"] == "chmod 0640 /var/lib/teleport-unix/host.key"
    # --insecure-perms (tests only) turns these checks off, and says so.
    r = host.doctor(json=True, insecure=True)
    assert checks(r)["config.file"]["status"] == "ok"
    assert checks(r)["credentials.perms"]["status"] == "skipped"


def test_config_syntax_error_names_key_and_line(host):
    with open(host.p(host.layout["config"]), "a", encoding="utf-8") as f:
        f.write("bogus: 1\n")
    r = host.doctor(json=True)
    assert r.rc == 2
    c = checks(r)["config.file"]
    assert c["status"] == "error"
    assert "bogus" in c["message"]
    assert c["where"].startswith(host.layout["config"] + ":")
    assert "correct 'bogus' at" in c["fix"]
    # No config: the host checks still run.
    assert checks(r)["nss.passwd"]["status"] == "ok"


def test_missing_trusted_user_ca_keys(host):
    os.unlink(host.p("/etc/ssh/sshd_config.d/teleport-ca.conf"))
    r = host.doctor(json=True)
    assert r.rc == 2
    c = checks(r)["sshd.trusted-user-ca-keys"]
    assert c["status"] == "error"
    assert "TrustedUserCAKeys is not set although pam.trust_ssh_cert is on" in c["message"]
    assert "TrustedUserCAKeys /etc/ssh/teleport_user_ca.pub" in c["fix"]
    # An empty CA file is an error too.
    host.write("/etc/ssh/sshd_config.d/teleport-ca.conf", "TrustedUserCAKeys /etc/ssh/teleport_user_ca.pub\n")
    host.write("/etc/ssh/teleport_user_ca.pub", "# nothing\n")
    c = checks(host.doctor(json=True))["sshd.trusted-user-ca-keys"]
    assert c["status"] == "error" and "holds no public key" in c["message"], c


@pytest.mark.skipif(not SERVES_USER_CA, reason="the stand-in Auth cannot serve an SSH user CA")
def test_trusted_user_ca_keys_not_teleports(host):
    """TrustedUserCAKeys compared with the user CA the last sync fetched from Auth."""
    c = checks(host.doctor(json=True))["sshd.trusted-user-ca-keys"]
    if "Teleport's user CA among them" not in c["message"]:
        pytest.skip("this build's sync does not keep the user CA in the state snapshot")
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAtkOtE0qJmT0zBNk5zmr8Xrh2vb8bzYkNnpDNsPo6g5 other\n"
    host.write("/etc/ssh/teleport_user_ca.pub", other)
    r = host.doctor(json=True)
    c = checks(r)["sshd.trusted-user-ca-keys"]
    assert c["status"] == "error", c
    assert "none of the 1 of cluster example.com's user CA" in c["message"]
    assert r.rc == 2
    host.write("/etc/ssh/teleport_user_ca.pub", CA_PUB + other)
    c = checks(host.doctor(json=True))["sshd.trusted-user-ca-keys"]
    assert c["status"] == "warning" and "also trusts 1 key" in c["message"], c


def test_sshd_identity_mechanism(host):
    # Without the drop-in: ExposeAuthInfo off, no AuthorizedPrincipalsCommand.
    os.unlink(host.p("/etc/ssh/sshd_config.d/teleport-unix.conf"))
    r = host.doctor(json=True)
    c = checks(r)
    assert c["sshd.expose-auth-info"]["status"] == "error"
    assert "never sees the certificate" in c["sshd.expose-auth-info"]["message"]
    assert c["sshd.principals-command"]["status"] == "warning"
    assert "/etc/ssh/sshd_config.d/teleport-unix.conf" in c["sshd.principals-command"]["fix"]
    # A principals command user that cannot read the state snapshot.
    host.write("/etc/ssh/sshd_config.d/teleport-unix.conf",
               "ExposeAuthInfo yes\nAuthorizedPrincipalsCommand /usr/local/bin/x ssh-principals\n")
    c = checks(host.doctor(json=True))
    assert c["sshd.expose-auth-info"]["status"] == "ok"
    assert c["sshd.expose-auth-info"]["where"] == "/etc/ssh/sshd_config.d/teleport-unix.conf:1"
    assert c["sshd.principals-command"]["status"] == "warning"
    # pam.trust_ssh_cert off: these are skipped.
    host.config(host.server.address, pam={"trust_ssh_cert": False})
    c = checks(host.doctor(json=True))
    assert c["sshd.expose-auth-info"]["status"] == "skipped"
    assert "sshd.principals-command" not in c


def test_usepam_no(host):
    host.write("/etc/ssh/sshd_config.d/00-local.conf", "UsePAM no\n")
    c = checks(host.doctor(json=True))["sshd.usepam"]
    assert c["status"] == "error"
    assert c["where"] == "/etc/ssh/sshd_config.d/00-local.conf:1"


def test_auth_unreachable_blackhole(host, blackhole_server):
    """A server that never answers: doctor waits at most the configured budget, and with a fresh
    cache and pam.offline: cached the outage is a warning (exit 1)."""
    host.config(blackhole_server.address, auth={"timeouts": {"connect": "1s", "request": "1s"}})
    r = host.doctor(json=True)
    assert r.elapsed < 2 + 3 * helpers.SLOW, r
    c = checks(r)["auth.ping"]
    assert c["status"] == "warning", c
    assert "decided from the cache" in c["message"]
    assert blackhole_server.address in c["fix"]
    assert by_status(r, "error") == [], r.stdout
    assert r.rc == 1


def test_auth_closed_port_offline_deny(host):
    """Nothing listens and pam.offline: deny: Teleport logins are refused, an error (exit 2)."""
    host.config("127.0.0.1:1", pam={"offline": "deny"})
    r = host.doctor(json=True)
    assert r.rc == 2
    c = checks(r)["auth.ping"]
    assert c["status"] == "error"
    assert "Teleport logins are refused" in c["message"]
    # A server of another cluster than auth.cluster_name.
    host.config(host.server.address, auth={"cluster_name": "other.example.com"})
    c = checks(host.doctor(json=True))["auth.ping"]
    assert c["status"] == "error" and "auth.cluster_name is 'other.example.com'" in c["message"], c
    host.config("127.0.0.1:1", pam={"offline": "deny"})
    # --offline skips it.
    r = host.doctor("--offline", json=True)
    assert checks(r)["auth.ping"]["status"] == "skipped"
    assert r.rc == 0, r.stdout


def test_cache_problems(host):
    d = host.p(host.layout["nss_snapshot_dir"])
    os.chmod(os.path.join(d, "accounts.db"), 0o600)
    os.chmod(os.path.join(d, "state.db"), 0o644)
    r = host.doctor(json=True)
    assert r.rc == 2
    c = checks(r)
    assert "not readable by everyone" in c["cache.accounts"]["message"]
    assert c["cache.accounts"]["fix"].startswith("chmod 0644 ")
    assert "accessible by group or others" in c["cache.state"]["message"]
    assert c["cache.state"]["fix"].startswith("chmod 0600 ")
    shutil.rmtree(d)
    c = checks(host.doctor(json=True))
    assert c["cache.dir"]["status"] == "error"
    assert "teleport-unix sync" in c["cache.dir"]["fix"]
    os.unlink(host.p("/etc/systemd/system/timers.target.wants/teleport-unix-sync.timer"))
    c = checks(host.doctor(json=True))["sync.timer"]
    assert c["status"] == "warning" and c["fix"] == "systemctl enable --now teleport-unix-sync.timer", c


def test_json_shape_and_usage(host, cli):
    r = host.doctor(json=True)
    doc = r.json()
    assert set(doc) >= {"status", "root", "config", "checks", "counts"}
    for c in doc["checks"]:
        assert set(c) == {"id", "status", "message", "where", "fix"}
        assert c["status"] in ("ok", "warning", "error", "skipped")
        assert c["message"]
        if c["status"] in ("warning", "error"):
            assert c["fix"], c
    bad = helpers.run([cli, "doctor", "--root", "relative/dir"])
    assert bad.rc == 2 and "--root needs an absolute directory" in bad.stderr
    bad = helpers.run([cli, "doctor", "--bogus"])
    assert bad.rc == 2 and "unknown option" in bad.stderr
    st = os.stat(host.p("/etc/nsswitch.conf"))
    assert stat.S_IMODE(st.st_mode) == 0o644  # doctor changes nothing


def test_pam_session_line(host):
    # An include without the session line (an older copy), pam.trust_ssh_cert on: an error.
    host.write("/etc/pam.d/teleport", "account [success=ok user_unknown=ignore default=bad] pam_teleport.so\n")
    c = checks(host.doctor(json=True))["pam.sshd.session"]
    assert c["status"] == "error", c
    assert "checked only there" in c["message"]
    # The session line after pam_env user_readenv=1: a warning naming both.
    host.write("/etc/pam.d/sshd", PAM_FILES["sshd"] + "session [success=ok ignore=ignore default=die] pam_teleport.so\n")
    c = checks(host.doctor(json=True))["pam.sshd.session"]
    assert c["status"] == "warning", c
    assert c["message"].startswith("pam_env.so runs before pam_teleport.so")
    assert c["where"] == "/etc/pam.d/sshd:7"


def test_pam_module_by_absolute_path(host):
    host.write("/etc/pam.d/teleport",
               "account [success=ok user_unknown=ignore default=bad] /lib/nowhere/security/pam_teleport.so\n")
    r = host.doctor(json=True)
    bad = [c for c in r.json()["checks"] if c["id"] == "pam.module" and c["status"] == "error"]
    assert bad, r.stdout
    assert "names /lib/nowhere/security/pam_teleport.so, which does not exist" in bad[0]["message"]
    assert bad[0]["where"] == "/etc/pam.d/teleport:1"
    assert r.rc == 2


def test_sshd_t(host, tmp_path):
    """--sshd runs that program's -T for the effective settings; their file:line still come
    from reading the files; a failing or hanging sshd -T is a warning and the files are read."""
    bindir = helpers.make_vars(host.builddir, "bindir")["bindir"]
    fake = str(tmp_path / "sshd")
    write(fake, "#!/bin/sh\n[ \"$1\" = -T ] || exit 2\ncat <<EOF\nport 22\nusepam no\nexposeauthinfo yes\n"
          "trustedusercakeys /etc/ssh/teleport_user_ca.pub\n"
          f"authorizedprincipalscommand {bindir}/teleport-unix ssh-principals %u %t %k\n"
          "authorizedprincipalscommanduser root\nEOF\n", 0o755)
    r = host.doctor("--sshd", fake, json=True)
    c = checks(r)
    assert c["sshd.config"]["status"] == "ok" and fake + " -T" in c["sshd.config"]["message"], c["sshd.config"]
    assert c["sshd.usepam"]["status"] == "error"
    assert c["sshd.usepam"]["where"].startswith("/etc/ssh/sshd_config"), c["sshd.usepam"]
    assert c["sshd.expose-auth-info"]["status"] == "ok"
    assert c["sshd.principals-command-user"]["status"] == "ok"

    write(fake, "#!/bin/sh\necho 'line 3: Bad configuration option: Bogus' >&2\nexit 255\n", 0o755)
    c = checks(host.doctor("--sshd", fake, json=True))
    assert c["sshd.config"]["status"] == "warning"
    assert "-T failed: line 3: Bad configuration option: Bogus" in c["sshd.config"]["message"]
    assert c["sshd.usepam"]["status"] == "ok"  # from the files

    write(fake, "#!/bin/sh\nexec sleep 30\n", 0o755)
    r = host.doctor("--sshd", fake, json=True)
    c = checks(r)["sshd.config"]
    assert c["status"] == "warning" and "did not finish within 5000 ms" in c["message"], c
    assert r.elapsed < 5 + 4 * helpers.SLOW, r


def test_writable_system_files(host):
    """A PAM include, nsswitch.conf or an sshd drop-in that others may write decides who logs in."""
    os.chmod(host.p("/etc/pam.d/common-account"), 0o666)
    os.chmod(host.p("/etc/ssh/sshd_config.d/teleport-unix.conf"), 0o664)
    os.chown(host.p("/etc/nsswitch.conf"), 1000, 0)
    r = host.doctor(json=True)
    assert r.rc == 2
    bad = {c["where"]: c for c in r.json()["checks"] if c["id"] == "files.perms"}
    assert set(bad) == {"/etc/pam.d/common-account", "/etc/ssh/sshd_config.d/teleport-unix.conf",
                        "/etc/nsswitch.conf"}, bad
    assert bad["/etc/pam.d/common-account"]["fix"] == "chmod go-w /etc/pam.d/common-account"
    assert bad["/etc/nsswitch.conf"]["fix"] == "chown root:root /etc/nsswitch.conf"
    assert "whoever can change it decides who logs in here" in bad["/etc/nsswitch.conf"]["message"]


def test_rhel_stacks(host):
    """RHEL's sshd includes password-auth (authselect profile sssd: pam_localuser and pam_usertype
    "sufficient" after pam_unix; tests/fixtures/pam-rhel): pam_teleport.so must come before it."""
    install(os.path.join(TOP, "tests/fixtures/pam-rhel/sssd/password-auth"), host.p("/etc/pam.d/password-auth"))
    host.write("/etc/pam.d/sshd", "auth substack password-auth\naccount required pam_nologin.so\n"
               "account include teleport\naccount include password-auth\n"
               "session include teleport\nsession include password-auth\n")
    c = checks(host.doctor(json=True))
    assert c["pam.sshd.account"]["status"] == "ok", c["pam.sshd.account"]
    assert c["pam.sshd.session"]["status"] == "ok", c["pam.sshd.session"]

    host.write("/etc/pam.d/sshd", "auth substack password-auth\naccount required pam_nologin.so\n"
               "account include password-auth\naccount include teleport\n"
               "session include teleport\nsession include password-auth\n")
    r = host.doctor(json=True)
    assert r.rc == 2
    c = checks(r)["pam.sshd.account"]
    assert c["status"] == "error", c
    assert "whenever pam_localuser.so (/etc/pam.d/password-auth:" in c["message"]
    assert c["fix"].startswith("move 'account include teleport' (/etc/pam.d/sshd:4) before "
                               "'account include password-auth' (/etc/pam.d/sshd:3)"), c["fix"]
