# SPDX-License-Identifier: Apache-2.0
"""test_resolve.py - Auth named by a host name (issue 14 F1).

libcurl resolved names in a thread and joined it when its timeout fired, so a
DNS server that never answers held `check`, PAM and an NSS miss for glibc's
whole resolver timeout (8 s and more against a 1 s + 2 s budget), and started a
thread inside sshd.  libcore now resolves Auth names itself (libcore/resolve.c:
numeric, /etc/hosts, its own DNS client bounded by the connect timeout).

Each test runs the real front-ends (the CLI, pamtester under pam_wrapper,
getent under nss_wrapper as root) in a private mount namespace (`unshare
--mount`) where /etc/resolv.conf and /etc/hosts are bind-mounted test files;
the DNS servers are tests/integration/fake_dns.py on loopback addresses, port
53.  Needs root and unshare (CI runs as root): skipped otherwise.
"""

import os
import shutil
import subprocess

import pytest

import fake_dns
import helpers

SLOW = helpers.SLOW
CONNECT, REQUEST = 1 * SLOW, 2 * SLOW
BUDGET = CONNECT + REQUEST
SLACK = (1.5 if not os.environ.get("TU_PRELOAD") else 3.0) * SLOW
DROP_NS, ANSWER_NS = "127.0.0.198", "127.0.0.199"
NAME = "auth.dns-test.example"  # in no hosts file, resolved by the test DNS server only
PAM_AUTHINFO_UNAVAIL = "Authentication service cannot retrieve authentication info"
PAM_SUCCESS = "account management done"

# Runs "$@" with private /etc/resolv.conf and /etc/hosts.  The preload
# (nss_wrapper, pam_wrapper) is given to the final program only, not to
# unshare/mount.
NS_SCRIPT = ('mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && '
             'exec env LD_PRELOAD="$TU_NS_PRELOAD" "$@"')


@pytest.fixture(scope="module")
def namespaces(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (bind mounts in a private mount namespace, DNS on port 53)")
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) not installed")
    d = tmp_path_factory.mktemp("ns-probe")
    f = d / "f"
    f.write_text("x\n")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        f'mount --bind {f} /etc/hosts && true'], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount in a mount namespace here: {r.stderr.strip()}")


@pytest.fixture
def dns_servers(namespaces):
    started = []

    def start(address, **kw):
        try:
            s = fake_dns.FakeDNS(address, **kw).start()
        except OSError as e:
            pytest.skip(f"cannot listen on {address}:53: {e}")
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def netfiles(tmp_path):
    """write(resolv_text, hosts_text) -> (resolv_path, hosts_path)."""
    def write(resolv, hosts="127.0.0.1 localhost\n::1 localhost\n"):
        r, h = tmp_path / "resolv.conf", tmp_path / "hosts"
        r.write_text(resolv)
        h.write_text(hosts)
        return str(r), str(h)
    return write


def in_ns(files, argv, env=None, timeout=60):
    env = dict(env if env is not None else os.environ)
    env["TU_NS_PRELOAD"] = env.pop("LD_PRELOAD", "")
    return helpers.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", NS_SCRIPT, "ns",
                        files[0], files[1], *argv], env=env, timeout=timeout * SLOW)


def cli_argv(builddir, cfg, *args):
    return [os.path.join(builddir, "teleport-unix"), "--insecure-perms", "-c", cfg, *args]


def pam(builddir, tmp_path, files, cfg, login):
    mod = helpers.module_path(builddir, "pam_teleport.so")
    sdir = str(tmp_path / "pam.d")
    helpers.write_pam_service(sdir, "tu-dns", [f"account required {mod} config={cfg} insecure_perms"])
    pre = os.environ.get("TU_PRELOAD", "")
    env = helpers.pam_wrapper_env(sdir)
    env["LD_PRELOAD"] = (pre + " " + (helpers.find_lib("libpam_wrapper.so") or "libpam_wrapper.so")).strip()
    return in_ns(files, ["pamtester", "-v", "tu-dns", login, "acct_mgmt"], env=env)


def getent(builddir, tmp_path, files, cfg, cache_dir, name):
    wd = tmp_path / "getent"
    wd.mkdir(exist_ok=True)
    pw, gr = str(wd / "nss.passwd"), str(wd / "nss.group")
    for p in (pw, gr):
        open(p, "w", encoding="utf-8").close()
    env = helpers.nss_wrapper_env(builddir, pw, gr, extra={
        "TELEPORT_UNIX_CONFIG": cfg, "TELEPORT_UNIX_CACHE_DIR": cache_dir,
        "TELEPORT_UNIX_CORE_LIB": os.path.join(builddir, ".libs", "libteleport-unix.so.0")})
    return in_ns(files, ["getent", "passwd", name], env=env)


def config(write_config, address, **kw):
    return write_config(addresses=address,
                        auth={"timeouts": {"connect": f"{CONNECT}s", "request": f"{REQUEST}s"}}, **kw)


def test_silent_dns_bounded(builddir, dns_servers, netfiles, auth_server, write_config, cache_dir, tmp_path):
    """A DNS server that drops every query: check, PAM and an NSS miss come back
    within connect + request with a clear error (before: glibc's 5 s x 2
    attempts, inside curl's resolver thread)."""
    drop = dns_servers(DROP_NS, drop=True)
    srv = auth_server()
    files = netfiles(f"nameserver {DROP_NS}\noptions timeout:5 attempts:2\n")
    cfg = config(write_config, f"{NAME}:{srv.port}")
    limit = BUDGET + SLACK

    r = in_ns(files, cli_argv(builddir, cfg, "check", "frank", "frank"))
    assert r.rc == 2, r
    assert f"cannot resolve {NAME}: no answer from the DNS server ({DROP_NS})" in r.stderr, r
    assert r.elapsed < limit, r
    assert (NAME, 1) in drop.queries and (NAME, 28) in drop.queries, drop.queries

    r = pam(builddir, tmp_path, files, cfg, "frank")
    assert PAM_AUTHINFO_UNAVAIL in r.stdout + r.stderr, r
    assert r.elapsed < limit, r

    r = getent(builddir, tmp_path, files, cfg, cache_dir, "frank")
    assert r.rc == 2 and r.stdout == "", r
    assert r.elapsed < limit, r
    assert srv.calls() == [], "nothing may reach Auth without an address"


def test_failover_past_a_silent_name(builddir, dns_servers, netfiles, auth_server, write_config, tmp_path):
    """auth.addresses [a name DNS never answers, a reachable address]: the first
    costs its connect timeout, the second answers, all within one deadline."""
    dns_servers(DROP_NS, drop=True)
    srv = auth_server()
    files = netfiles(f"nameserver {DROP_NS}\n")
    cfg = config(write_config, [f"{NAME}:{srv.port}", f"127.0.0.1:{srv.port}"])
    r = in_ns(files, cli_argv(builddir, cfg, "check", "frank", "frank"))
    assert r.rc == 0 and "allowed" in r.stdout, r
    assert CONNECT * 0.9 < r.elapsed < BUDGET + SLACK, r


def test_name_from_dns(builddir, dns_servers, netfiles, auth_server, write_config, cache_dir, tmp_path):
    """The name resolves through the test DNS server and every front-end reaches
    the stand-in Auth through it."""
    dns = dns_servers(ANSWER_NS, records={NAME: ["127.0.0.1"]})
    srv = auth_server()
    files = netfiles(f"nameserver {ANSWER_NS}\n")
    cfg = config(write_config, f"{NAME}:{srv.port}")

    r = in_ns(files, cli_argv(builddir, cfg, "ping"))
    assert r.rc == 0 and "example.com" in r.stdout, r
    assert (NAME, 1) in dns.queries, dns.queries
    r = in_ns(files, cli_argv(builddir, cfg, "check", "frank", "frank"))
    assert r.rc == 0 and "allowed" in r.stdout, r
    r = pam(builddir, tmp_path, files, cfg, "frank")
    assert r.rc == 0 and PAM_SUCCESS in r.stdout + r.stderr, r
    r = getent(builddir, tmp_path, files, cfg, cache_dir, "frank")
    assert r.rc == 0 and r.stdout.startswith("frank:*:"), r

    # An unknown name: NXDOMAIN, said so, at once.
    cfg = config(write_config, f"nosuch.dns-test.example:{srv.port}")
    r = in_ns(files, cli_argv(builddir, cfg, "ping"))
    assert r.rc == 2 and "cannot resolve nosuch.dns-test.example: no such host" in r.stderr, r
    assert r.elapsed < 1.0 * SLOW + SLACK, r


def test_name_from_hosts_file(builddir, dns_servers, netfiles, auth_server, write_config):
    """/etc/hosts is read before DNS: the silent DNS server is never asked."""
    drop = dns_servers(DROP_NS, drop=True)
    srv = auth_server()
    files = netfiles(f"nameserver {DROP_NS}\n", hosts=f"127.0.0.1 localhost\n127.0.0.1 Auth-Hosts.example alias\n")
    cfg = config(write_config, f"auth-hosts.example:{srv.port}")
    r = in_ns(files, cli_argv(builddir, cfg, "ping"))
    assert r.rc == 0, r
    assert drop.queries == []
    assert r.elapsed < SLACK, r


@helpers.plain_pass_only("LeakSanitizer starts a thread of its own")
def test_no_thread_started(builddir, dns_servers, netfiles, auth_server, write_config):
    """libcore starts no thread (docs): not for a name either.  strace -f sees
    every clone(); a thread is one with CLONE_THREAD."""
    if not shutil.which("strace"):
        pytest.skip("strace not installed")
    dns_servers(ANSWER_NS, records={NAME: ["127.0.0.1"]})
    srv = auth_server()
    files = netfiles(f"nameserver {ANSWER_NS}\n")
    cfg = config(write_config, f"{NAME}:{srv.port}")
    trace = os.path.join(os.path.dirname(cfg), "clone.trace")
    r = in_ns(files, [os.path.join(builddir, "libtool"), "--mode=execute", "strace", "-f", "-o", trace,
                      "-e", "trace=clone,clone3", *cli_argv(builddir, cfg, "check", "frank", "frank")])
    assert r.rc == 0 and "allowed" in r.stdout, r
    with open(trace, encoding="utf-8") as f:
        threads = [line for line in f if "CLONE_THREAD" in line]
    assert threads == [], threads
