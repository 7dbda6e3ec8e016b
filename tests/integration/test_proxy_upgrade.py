# SPDX-License-Identifier: Apache-2.0
"""test_proxy_upgrade.py - the ALPN connection upgrade through an L7 load
balancer (issue 12 item 2; PROXY.md §3) end to end with the real CLI:
TLS to the stand-in Proxy (tests/fake_auth/l7_proxy.py) with its web
certificate checked against auth.proxy_ca (or the system roots), the
WebSocket upgrade on /webapi/connectionupgrade with sub-protocol alpn-ping,
every frame we send masked with a zero key, the Proxy's pings answered, and
inside, the same mTLS + HTTP/2 + gRPC to the stand-in Auth as the direct
path (the Auth server sees our client certificate: TLS end to end).

Faults: 404, a wrong Sec-WebSocket-Accept, the legacy upgrade, a web
certificate from another CA or not in the system roots, a Proxy that never
answers the upgrade, nothing listening.  Each is exit 2 with one clear
`teleport-unix:` line within the connect budget.

Also Teleport's test dial (a TLS handshake offering teleport-reversetunnel)
and the memory of its answer in cache.dir, through tests/unit/ws-probe."""

import json
import os
import ssl
import socket
import threading
import time

import pytest

import helpers

PING = "/proto.AuthService/Ping"
BUDGET = 4.0 * helpers.SLOW


@pytest.fixture(scope="session")
def web_certs(tmp_path_factory):
    import l7_proxy as l7  # tests/fake_auth  # noqa: PLC0415
    return l7.generate_web_certs(str(tmp_path_factory.mktemp("web")))


@pytest.fixture
def l7_proxy(web_certs, tmp_path):
    """Factory: l7_proxy(auth_address, mode="ok") -> Proc with .log() (one dict per
    connection)."""
    started = []

    def start(auth_address, mode="ok", name=None):
        name = name or f"l7-{mode}-{len(started)}"
        log = str(tmp_path / f"{name}.jsonl")
        argv = [helpers.PY, os.path.join(helpers.FAKE_AUTH, "l7_proxy.py"),
                "--cert", web_certs["cert"], "--key", web_certs["key"],
                "--auth", auth_address, "--mode", mode, "--log", log]
        p = helpers.Proc(argv, str(tmp_path / "servers"), name).start()

        def read_log():
            if not os.path.exists(log):
                return []
            with open(log, encoding="utf-8") as f:
                return [json.loads(x) for x in f if x.strip()]
        p.log = read_log
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


one_error_line = helpers.one_error_line


def upgrade_config(write_config, proxy, web_certs, ca="ca", **auth):
    a = {"proxy_conn_upgrade": "always"}
    if ca:
        a["proxy_ca"] = web_certs[ca]
    a.update(auth)
    return write_config(addresses=proxy.address, auth=a)


def wait_for(pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return pred()


# ---------------------------------------------------------------- success

def test_ping_through_upgrade(auth_server, l7_proxy, web_certs, write_config, run_cli, certs):
    srv = auth_server()
    proxy = l7_proxy(srv.address)
    upgrade_config(write_config, proxy, web_certs)
    r = run_cli("ping")
    assert r.rc == 0, r
    assert "Cluster:" in r.stdout and "example.com" in r.stdout, r
    calls = srv.calls(PING)
    assert len(calls) == 1
    # mTLS end to end: Auth itself saw our client certificate through the Proxy.
    assert calls[0]["peer_cn"] == f"{certs.host_uuid}.example.com"
    log = wait_for(proxy.log)
    assert len(log) == 1, log
    c = log[0]
    assert "error" not in c, c
    assert c["request"] == "GET /webapi/connectionupgrade HTTP/1.1", c
    h = c["headers"]
    assert h["upgrade"] == "websocket" and h["connection"] == "Upgrade", h
    assert h["sec-websocket-protocol"] == "alpn-ping" and h["sec-websocket-version"] == "13", h
    assert h["host"] == proxy.address, h
    # Teleport's client masks every frame with an all-zero key.
    assert c["masks"] == ["00000000"], c
    # The Proxy's first ping came before any data: answered with its payload.
    assert c["pongs"] >= 1 and c["pong_payloads"][0] == "teleport", c
    assert c["up"] > 0 and c["down"] > 0, c


def test_many_calls_one_connection(auth_server, l7_proxy, web_certs, write_config, run_cli):
    """sync makes many RPCs (users, roles, locks, ...) with pings in between: one upgraded
    connection carries all of them."""
    srv = auth_server()
    proxy = l7_proxy(srv.address)
    upgrade_config(write_config, proxy, web_certs)
    r = run_cli("sync")
    assert r.rc == 0, r
    assert len(srv.calls()) > 3
    log = wait_for(proxy.log)
    assert len(log) == 1, log
    assert "error" not in log[0], log


def test_tricky_framing(auth_server, l7_proxy, web_certs, write_config, run_cli):
    """Legal framing a client must handle: skipped text frames, fragments down to one byte,
    masked frames from the server, the 64-bit length form, pings between fragments."""
    srv = auth_server()
    proxy = l7_proxy(srv.address, mode="tricky")
    upgrade_config(write_config, proxy, web_certs)
    r = run_cli("sync")
    assert r.rc == 0, r
    log = wait_for(proxy.log)
    assert len(log) == 1 and "error" not in log[0], log
    assert "mid-message" in log[0]["pong_payloads"], log


def test_reserved_bits_refused(auth_server, l7_proxy, web_certs, write_config, run_cli):
    srv = auth_server()
    proxy = l7_proxy(srv.address, mode="badframe")
    upgrade_config(write_config, proxy, web_certs)
    t0 = time.monotonic()
    r = run_cli("ping")
    one_error_line(r, "WebSocket frame with reserved bits set")
    assert time.monotonic() - t0 < BUDGET


def test_reset_after_upgrade(auth_server, l7_proxy, web_certs, write_config, run_cli):
    """The Proxy resets the connection right after the 101: one clean error line (exit 2,
    not a signal).  Writing to a peer that is gone never raises SIGPIPE: test-ws.c
    test_tls_no_sigpipe proves that deterministically."""
    srv = auth_server()
    proxy = l7_proxy(srv.address, mode="reset")
    upgrade_config(write_config, proxy, web_certs)
    r = run_cli("ping")
    assert r.rc == 2, r  # not -13 (SIGPIPE)
    one_error_line(r)


def test_system_roots_refuse_private_ca(auth_server, l7_proxy, web_certs, write_config, run_cli):
    srv = auth_server()
    proxy = l7_proxy(srv.address)
    upgrade_config(write_config, proxy, web_certs, ca=None)
    t0 = time.monotonic()
    r = run_cli("ping")
    one_error_line(r, "the Proxy 127.0.0.1:", "certificate is not trusted")
    assert time.monotonic() - t0 < BUDGET
    assert srv.calls() == []


def test_other_ca_refused(auth_server, l7_proxy, web_certs, write_config, run_cli):
    srv = auth_server()
    proxy = l7_proxy(srv.address)
    upgrade_config(write_config, proxy, web_certs, ca="other_ca")
    r = run_cli("ping")
    one_error_line(r, "certificate is not trusted")
    assert srv.calls() == []


def test_proxy_ca_missing_file(auth_server, l7_proxy, web_certs, write_config, run_cli, tmp_path):
    srv = auth_server()
    proxy = l7_proxy(srv.address)
    write_config(addresses=proxy.address,
                 auth={"proxy_conn_upgrade": "always", "proxy_ca": str(tmp_path / "nope.pem")})
    r = run_cli("ping")
    one_error_line(r, "auth.proxy_ca", "nope.pem")


# ---------------------------------------------------------------- faults

@pytest.mark.parametrize("mode,needles", [
    ("notfound", ["has no /webapi/connectionupgrade (HTTP 404)"]),
    ("badaccept", ["wrong Sec-WebSocket-Accept"]),
    ("legacy", ["legacy connection upgrade"]),
])
def test_upgrade_refused(auth_server, l7_proxy, web_certs, write_config, run_cli, mode, needles):
    srv = auth_server()
    proxy = l7_proxy(srv.address, mode=mode)
    upgrade_config(write_config, proxy, web_certs)
    t0 = time.monotonic()
    r = run_cli("ping")
    one_error_line(r, *needles)
    assert time.monotonic() - t0 < BUDGET
    assert srv.calls() == []


def test_blackhole_upgrade(auth_server, l7_proxy, web_certs, write_config, run_cli):
    """TLS up, then no answer to the upgrade: the connect timeout (1 s) ends it."""
    srv = auth_server()
    proxy = l7_proxy(srv.address, mode="blackhole")
    upgrade_config(write_config, proxy, web_certs)
    t0 = time.monotonic()
    r = run_cli("ping", timeout=20)
    elapsed = time.monotonic() - t0
    one_error_line(r, "did not answer the connection upgrade in time")
    assert elapsed < 1.0 * helpers.SLOW + 1.5, elapsed


def test_blackhole_tcp(blackhole_server, web_certs, write_config, run_cli):
    """A listener that never answers TLS: the handshake is bounded too."""
    write_config(addresses=blackhole_server.address,
                 auth={"proxy_conn_upgrade": "always", "proxy_ca": web_certs["ca"]})
    t0 = time.monotonic()
    r = run_cli("ping")
    one_error_line(r, "TLS handshake with the Proxy", "in time")
    assert time.monotonic() - t0 < 1.0 * helpers.SLOW + 1.5


def test_nothing_listening(web_certs, write_config, run_cli):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    write_config(addresses=f"127.0.0.1:{port}",
                 auth={"proxy_conn_upgrade": "always", "proxy_ca": web_certs["ca"]})
    r = run_cli("ping")
    # the core's own TCP dial (h2-load.c) says it before the transport is even loaded
    one_error_line(r, f"127.0.0.1:{port}", "connection refused")


def test_config_values(write_config, run_cli):
    write_config(auth={"proxy_conn_upgrade": "sometimes"})
    r = run_cli("ping")
    assert r.rc != 0, r
    assert "auth.proxy_conn_upgrade" in r.stderr and "expected auto, always or never" in r.stderr, r
    write_config(auth={"proxy_ca": "relative.pem"})
    r = run_cli("ping")
    assert r.rc != 0 and "auth.proxy_ca" in r.stderr and "absolute" in r.stderr, r


def test_never_dials_directly(auth_server, write_config, run_cli):
    """never (and auto with auth.addresses): the direct path, no upgrade."""
    auth_server()
    write_config(auth={"proxy_conn_upgrade": "never"})
    assert run_cli("ping").rc == 0
    write_config(auth={"proxy_conn_upgrade": "auto"})
    assert run_cli("ping").rc == 0


# ---------------------------------------------------------------- detection

def tls_server(web_certs, alpn=None):
    """A TLS listener that selects alpn (a Proxy with TLS routing) or none; serves forever."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(web_certs["cert"], web_certs["key"])
    if alpn:
        ctx.set_alpn_protocols([alpn])
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                c.settimeout(3)
                t = ctx.wrap_socket(c, server_side=True)
                t.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()
    threading.Thread(target=serve, daemon=True).start()
    return ls


def probe(builddir, *args):
    return helpers.run([os.path.join(builddir, "tests", "unit", "ws-probe"), *map(str, args)],
                       timeout=20)


def test_detection(builddir, web_certs, auth_server, l7_proxy):
    """Teleport's test dial: a Proxy with TLS routing selects teleport-reversetunnel (no
    upgrade); an L7 load balancer selects nothing (upgrade); untrusted or unreachable
    answers 'not required' (the path then fails with its own error)."""
    if not os.access(os.path.join(builddir, "tests", "unit", "ws-probe"), os.X_OK):
        pytest.skip("ws-probe not built (make check builds it)")
    routing = tls_server(web_certs, alpn="teleport-reversetunnel")
    plain = tls_server(web_certs)
    srv = auth_server()
    proxy = l7_proxy(srv.address)
    try:
        port = routing.getsockname()[1]
        assert probe(builddir, "detect", "127.0.0.1", port, web_certs["ca"]).stdout == "not-required\n"
        port = plain.getsockname()[1]
        assert probe(builddir, "detect", "127.0.0.1", port, web_certs["ca"]).stdout == "required\n"
        assert probe(builddir, "detect", "127.0.0.1", proxy.port, web_certs["ca"]).stdout == "required\n"
        # untrusted: not required (Teleport's rule for any other failure)
        assert probe(builddir, "detect", "127.0.0.1", proxy.port, web_certs["other_ca"]).stdout \
            == "not-required\n"
    finally:
        routing.close()
        plain.close()


def test_detection_remembered(builddir, web_certs, auth_server, l7_proxy, write_config, cache_dir):
    if not os.access(os.path.join(builddir, "tests", "unit", "ws-probe"), os.X_OK):
        pytest.skip("ws-probe not built (make check builds it)")
    srv = auth_server()
    proxy = l7_proxy(srv.address)
    cfg = write_config(auth={"proxy_ca": web_certs["ca"]})
    r = probe(builddir, "decide", cfg, "127.0.0.1", proxy.port)
    assert r.stdout == "upgrade tested\n", r
    n = len(wait_for(proxy.log))
    assert n == 1
    mem = os.path.join(cache_dir, "proxy-upgrade")
    with open(mem, encoding="ascii") as f:
        text = f.read()
    assert text.startswith(f"teleport-unix proxy-upgrade 1\n127.0.0.1:{proxy.port} 1 "), text
    # the second decision costs no test dial
    r = probe(builddir, "decide", cfg, "127.0.0.1", proxy.port)
    assert r.stdout == "upgrade remembered\n", r
    time.sleep(0.2)
    assert len(proxy.log()) == n
    # another address is tested anew; always/never need no test at all
    cfg2 = write_config(name="never.yaml", auth={"proxy_ca": web_certs["ca"], "proxy_conn_upgrade": "never"})
    assert probe(builddir, "decide", cfg2, "127.0.0.1", proxy.port).stdout == "direct tested\n"
    assert len(proxy.log()) == n
    # a stale or foreign memory is not trusted
    with open(mem, "w", encoding="ascii") as f:
        f.write(f"teleport-unix proxy-upgrade 1\n127.0.0.1:{proxy.port} 0 1\n")
    assert probe(builddir, "decide", cfg, "127.0.0.1", proxy.port).stdout == "upgrade tested\n"


# ---------------------------------------------------------------- host-process rules

@helpers.plain_pass_only("the ASan runtime opens descriptors of its own (LeakSanitizer reads /proc/PID/task)")
def test_descriptors_cloexec_through_upgrade(builddir, auth_server, l7_proxy, web_certs, write_config):
    """While a call waits inside the upgraded connection, every descriptor of the CLI (the
    Proxy socket, the private listener or curl's connection to it, the accepted end) is
    close-on-exec (test_cloexec.py's rule, on this path)."""
    import test_cloexec  # noqa: PLC0415
    srv = auth_server(faults=[f"*=delay={1.5 * helpers.SLOW}"])
    proxy = l7_proxy(srv.address)
    cfg = write_config(addresses=proxy.address,
                       auth={"proxy_conn_upgrade": "always", "proxy_ca": web_certs["ca"],
                             "timeouts": {"connect": f"{2 * helpers.SLOW}s",
                                          "request": f"{4 * helpers.SLOW}s"}})
    argv = [os.path.join(builddir, "teleport-unix"), "--insecure-perms", "-c", cfg, "ping"]
    rc, out, seen, saw_socket = test_cloexec.watch(argv, dict(os.environ), "teleport-unix")
    assert rc == 0, out
    assert saw_socket, f"the call was never seen in flight: {seen}"
    assert test_cloexec.leaky(seen) == {}, seen
    # the Proxy TCP socket, curl's AF_UNIX socket and our accepted end were all seen
    assert sum(1 for (_, t) in seen if t.startswith("socket:")) >= 3, seen


@helpers.plain_pass_only("strace of an ASan process sees the runtime")
def test_no_thread_no_openssl_cnf(builddir, auth_server, l7_proxy, web_certs, write_config):
    """The upgrade path starts no thread (the pump runs in the call's poll loop) and, like the
    direct path, never opens openssl.cnf; the CA bundle is opened close-on-exec."""
    import shutil  # noqa: PLC0415
    if not shutil.which("strace"):
        pytest.skip("strace not installed")
    srv = auth_server()
    proxy = l7_proxy(srv.address)
    cfg = upgrade_config(write_config, proxy, web_certs)
    trace = os.path.join(os.path.dirname(cfg), "upgrade.trace")
    r = helpers.run([os.path.join(builddir, "libtool"), "--mode=execute", "strace", "-f", "-o", trace,
                     "-e", "trace=open,openat,socket,clone,clone3",
                     os.path.join(builddir, "teleport-unix"), "--insecure-perms", "-c", cfg, "ping"],
                    timeout=60 * helpers.SLOW)
    assert r.rc == 0, r
    with open(trace, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert not [x for x in lines if "openssl.cnf" in x], "openssl.cnf was opened"
    assert not [x for x in lines if "CLONE_THREAD" in x], [x for x in lines if "clone" in x]
    ca = [x for x in lines if web_certs["ca"] in x]
    assert ca and all("O_CLOEXEC" in x for x in ca), ca
    sockets = [x for x in lines if " socket(" in x and "= -1" not in x]
    assert any("AF_UNIX" in x for x in sockets), sockets
    assert all("SOCK_CLOEXEC" in x for x in sockets), sockets


# ---------------------------------------------------------------- PAM and NSS

def test_pam_through_upgrade(builddir, auth_server, l7_proxy, web_certs, write_config, tmp_path):
    """pam_teleport decides online through the upgrade (frank is allowed on this host, SPEC §5),
    and an upgrade the Proxy refuses makes the login unavailable, never allowed."""
    import shutil  # noqa: PLC0415
    if not shutil.which("pamtester") or not helpers.find_lib("libpam_wrapper.so"):
        pytest.skip("pamtester / libpam_wrapper not installed")
    mod = helpers.module_path(builddir, "pam_teleport.so")
    srv = auth_server()
    sdir = str(tmp_path / "pam.d")
    for mode in ("ok", "notfound"):
        proxy = l7_proxy(srv.address, mode=mode)
        cfg = write_config(name=f"pam-{mode}.yaml", addresses=proxy.address,
                           auth={"proxy_conn_upgrade": "always", "proxy_ca": web_certs["ca"]},
                           pam={"offline": "deny"})
        helpers.write_pam_service(sdir, "tu-up", [f"account required {mod} config={cfg} insecure_perms"])
        r = helpers.run_pamtester(sdir, "tu-up", "frank", env={"PAM_WRAPPER_DEBUGLEVEL": "4"})
        text = r.stdout + r.stderr
        if mode == "ok":
            assert r.rc == 0 and "account management done" in text, r
            assert any("User" in c["path"] for c in srv.calls()), [c["path"] for c in srv.calls()]
        else:
            assert r.rc != 0 and "account management done" not in text, r
            assert "Authentication service cannot retrieve authentication info" in text, r
            assert "connectionupgrade (HTTP 404)" in text, r


def test_nss_refresh_through_upgrade(builddir, auth_server, l7_proxy, web_certs, write_config,
                                     cache_dir, tmp_path):
    """A root miss on an empty cache goes online through the dlopened core, and that core
    reaches Auth through the upgrade: frank is served and the snapshot written."""
    if not helpers.find_lib("libnss_wrapper.so"):
        pytest.skip("libnss_wrapper not installed")
    srv = auth_server()
    proxy = l7_proxy(srv.address)
    cfg = upgrade_config(write_config, proxy, web_certs)
    env = {"TELEPORT_UNIX_CONFIG": cfg, "TELEPORT_UNIX_CACHE_DIR": cache_dir,
           "TELEPORT_UNIX_CORE_LIB": os.path.join(builddir, ".libs", "libteleport-unix.so.0")}
    if os.geteuid() != 0:
        if not helpers.find_lib("libuid_wrapper.so"):
            pytest.skip("not root and no uid_wrapper")
        env = helpers.uid_wrapper_env(env)
    r = helpers.run_getent(builddir, "passwd", "frank", workdir=str(tmp_path / "getent"), env=env)
    assert r.rc == 0 and r.stdout.startswith("frank:"), r
    assert len(wait_for(proxy.log)) >= 1
    assert srv.calls(), "Auth was not asked"
