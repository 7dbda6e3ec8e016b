# SPDX-License-Identifier: Apache-2.0
"""test_proxy.py - reaching Auth through the Proxy web port (issue 12 items 1 and 4):
`auth.proxy` with TLS routing (ALPN teleport-auth@<hex(cluster)>.teleport.cluster.local
+ h2, SNI teleport.cluster.local, TLS end to end with Auth), discovery through
/webapi/find, `ping`'s Via line, the remembered path (<cache.dir>/dial.memo: a second
process goes straight to the path, no find), and the faults: the Proxy refuses the
route (wrong cluster), find answers 404 or garbage, the Proxy is unreachable or a
black hole, its web certificate is not trusted.  Each fault is exit 2 with one clear
`teleport-unix: ...` line within the deadline.

The stand-in Proxy is tests/fake_auth/proxy.py: it peeks at the ClientHello, forwards
teleport-auth@ connections byte for byte to the stand-in Auth and terminates TLS
itself (web certificate made here) for everything else."""

import datetime
import ipaddress
import os
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import helpers

SLOW = helpers.SLOW
BUDGET = 4.0 * SLOW  # connect 1s + request 3s
ALPN_EXAMPLE = "teleport-auth@6578616d706c652e636f6d.teleport.cluster.local"  # PROXY.md §0


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def web_pki(tmp_path_factory):
    """A web CA and the Proxy's web certificate for 127.0.0.1 (IP SAN), plus an
    unrelated CA (for the untrusted-certificate fault)."""
    d = tmp_path_factory.mktemp("web-pki")
    now = datetime.datetime.now(datetime.timezone.utc)
    out = {}
    for name in ("web-ca", "other-ca"):
        key = ec.generate_private_key(ec.SECP256R1())
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        out[name] = (key, cert)
        (d / f"{name}.pem").write_bytes(_pem(cert))
    ca_key, ca_cert = out["web-ca"]
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "web.pem").write_bytes(_pem(cert))
    (d / "web.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return {"dir": str(d), "ca": str(d / "web-ca.pem"), "other_ca": str(d / "other-ca.pem"),
            "cert": str(d / "web.pem"), "key": str(d / "web.key")}


@pytest.fixture
def proxy_server(web_pki, tmp_path):
    started = []

    def start(auth_address, mode="ok", cluster=helpers.CLUSTER):
        p = helpers.start_proxy(str(tmp_path / "servers"), auth_address, web_pki["cert"],
                                web_pki["key"], mode=mode, cluster=cluster,
                                name=f"proxy{len(started)}")
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def proxy_config(write_config, web_pki, proxy_addr, addresses=None, **auth):
    """A config with auth.proxy (and no auth.addresses unless given)."""
    a = {"addresses": addresses, "proxy": proxy_addr, "proxy_ca": web_pki["ca"]}
    a.update(auth)
    return write_config(addresses=addresses or ["127.0.0.1:1"], auth=a)


one_error_line = helpers.one_error_line


def routes(proxy, route):
    return [c for c in helpers.proxy_log(proxy) if c.get("route") == route]


def finds(proxy):
    """The /webapi/find requests the stand-in Proxy served (with the connection upgrade
    built in, a refused TLS routing path is followed by an upgrade attempt: 404 here)."""
    return [c for c in routes(proxy, "web") if c.get("path") == "/webapi/find"]


# ---------------------------------------------------------------- success

def test_ping_through_proxy_tls_routing(auth_server, proxy_server, write_config, run_cli, certs,
                                        web_pki, cache_dir):
    auth = auth_server()
    proxy = proxy_server(auth.address)
    proxy_config(write_config, web_pki, proxy.address)
    r = run_cli("ping")
    assert r.rc == 0, r
    assert r.stderr == "", r
    assert f"Via:             proxy tls-routing ({proxy.address})" in r.stdout, r
    assert "Cluster:         example.com" in r.stdout, r

    # Discovery first: find over the Proxy's own TLS (ALPN http/1.1, SNI = the host).
    web = routes(proxy, "web")
    assert [c["path"] for c in web] == ["/webapi/find"], web  # and no upgrade attempt
    # Then exactly Teleport's ALPN list, SNI teleport.cluster.local, forwarded untouched.
    fwd = routes(proxy, "auth")
    assert len(fwd) == 1, helpers.proxy_log(proxy)
    assert fwd[0]["alpn"] == [ALPN_EXAMPLE, "h2"], fwd
    assert fwd[0]["sni"] == "teleport.cluster.local", fwd
    # mTLS end to end: Auth saw our host certificate (the Proxy holds no key of ours).
    calls = auth.calls("/proto.AuthService/Ping")
    assert len(calls) == 1 and calls[0]["peer_cn"] == f"{certs.host_uuid}.example.com", calls

    # The path is remembered: the next process goes straight there, no find.
    memo = open(os.path.join(cache_dir, "dial.memo"), encoding="ascii").read()
    assert "path proxy tls-routing\n" in memo and "tls_routing true\n" in memo, memo
    assert os.stat(os.path.join(cache_dir, "dial.memo")).st_mode & 0o777 == 0o644
    r = run_cli("ping", json=True)
    assert r.rc == 0, r
    assert r.json()["via"] == "proxy tls-routing", r
    assert r.json()["via_addr"] == proxy.address, r
    assert len(finds(proxy)) == 1, helpers.proxy_log(proxy)
    assert len(routes(proxy, "auth")) == 2


def test_cluster_from_the_credential(auth_server, proxy_server, write_config, run_cli, web_pki):
    """Without auth.cluster_name the ALPN names the credential's cluster."""
    auth = auth_server()
    proxy = proxy_server(auth.address)
    proxy_config(write_config, web_pki, proxy.address, cluster_name=None)
    r = run_cli("ping")
    assert r.rc == 0, r
    assert routes(proxy, "auth")[0]["alpn"][0] == ALPN_EXAMPLE


def test_direct_first_then_proxy(auth_server, proxy_server, write_config, run_cli, web_pki):
    """auth.addresses and auth.proxy: direct is tried first; when it is down the Proxy
    answers within the same deadline, and the next run starts with the Proxy."""
    auth = auth_server()
    proxy = proxy_server(auth.address)
    proxy_config(write_config, web_pki, proxy.address, addresses=["127.0.0.1:1"])
    r = run_cli("ping")
    assert r.rc == 0, r
    assert "Via:             proxy tls-routing" in r.stdout, r
    t0 = time.monotonic()
    r = run_cli("ping")
    assert r.rc == 0, r
    assert "Via:             proxy tls-routing" in r.stdout, r
    assert len(finds(proxy)) == 1  # discovery once


def test_check_and_sync_through_proxy(auth_server, proxy_server, write_config, run_cli, web_pki,
                                      cache_dir):
    auth = auth_server()
    proxy = proxy_server(auth.address)
    proxy_config(write_config, web_pki, proxy.address)
    r = run_cli("sync")
    assert r.rc == 0, r
    assert os.path.exists(os.path.join(cache_dir, "accounts.db"))
    r = run_cli("check", "alice", "alice")
    assert r.rc in (0, 1), r  # a decision was made online (allow or deny), not an error
    assert len(finds(proxy)) == 1, helpers.proxy_log(proxy)
    assert len(routes(proxy, "auth")) >= 2


# ---------------------------------------------------------------- faults

def test_wrong_cluster_route_refused(auth_server, proxy_server, write_config, run_cli, web_pki):
    auth = auth_server()
    proxy = proxy_server(auth.address)
    proxy_config(write_config, web_pki, proxy.address, cluster_name="other.example")
    r = run_cli("ping", timeout=BUDGET + 10)
    line = one_error_line(r, proxy.address, "did not route us to Auth of cluster 'other.example'")
    assert r.elapsed < BUDGET + 2, r
    assert routes(proxy, "refused"), helpers.proxy_log(proxy)
    assert not auth.calls(), line


@pytest.mark.parametrize("mode,needle", [
    ("find-404", "answered HTTP 404"),
    ("find-garbage", "not a JSON object"),
])
def test_find_faults(auth_server, proxy_server, write_config, run_cli, web_pki, mode, needle):
    auth = auth_server()
    proxy = proxy_server(auth.address, mode=mode)
    proxy_config(write_config, web_pki, proxy.address)
    r = run_cli("ping", timeout=BUDGET + 10)
    one_error_line(r, "/webapi/find", needle, proxy.address)
    assert r.elapsed < BUDGET + 2, r
    assert not auth.calls()


def test_find_no_tls_routing(auth_server, proxy_server, write_config, run_cli, web_pki):
    """find says TLS routing is off: the TLS routing path is not tried; without the
    reverse tunnel nothing is left, and the error says why."""
    auth = auth_server()
    proxy = proxy_server(auth.address, mode="no-routing")
    proxy_config(write_config, web_pki, proxy.address)
    r = run_cli("ping", timeout=BUDGET + 10)
    one_error_line(r, proxy.address, "says TLS routing is off")
    assert not routes(proxy, "auth") and not routes(proxy, "refused"), helpers.proxy_log(proxy)


def test_proxy_unreachable(write_config, run_cli, web_pki):
    proxy_config(write_config, web_pki, "127.0.0.1:1")
    r = run_cli("ping", timeout=BUDGET + 10)
    one_error_line(r, "127.0.0.1:1", "refused")
    assert r.elapsed < 2, r


def test_proxy_blackhole(blackhole_server, write_config, run_cli, web_pki):
    proxy_config(write_config, web_pki, blackhole_server.address)
    r = run_cli("ping", timeout=BUDGET + 10)
    one_error_line(r, blackhole_server.address, "timed out")
    assert r.elapsed < BUDGET + 2, r


def test_proxy_web_cert_untrusted(auth_server, proxy_server, write_config, run_cli, web_pki):
    auth = auth_server()
    proxy = proxy_server(auth.address)
    proxy_config(write_config, web_pki, proxy.address, proxy_ca=web_pki["other_ca"])
    r = run_cli("ping", timeout=BUDGET + 10)
    one_error_line(r, proxy.address, "TLS", web_pki["other_ca"])
    assert not auth.calls()


def test_auth_cert_checked_end_to_end(auth_server, proxy_server, write_config, run_cli, web_pki):
    """The Proxy forwards the TLS: Auth's certificate is verified against our CA (the
    credential's), whatever the Proxy's web certificate is.  An Auth server whose
    certificate comes from another CA is refused (fail closed)."""
    auth = auth_server(server_cert="server-otherca")
    proxy = proxy_server(auth.address)
    proxy_config(write_config, web_pki, proxy.address)
    r = run_cli("ping", timeout=BUDGET + 10)
    one_error_line(r, "TLS")
    assert not auth.calls()


def test_config_needs_addresses_or_proxy(write_config, run_cli):
    write_config(auth={"addresses": None})
    r = run_cli("ping")
    one_error_line(r, "auth.addresses", "'proxy'")


# ---------------------------------------------------------------- PAM and NSS

@pytest.fixture
def pam_through(builddir, tmp_path):
    import shutil
    if not shutil.which("pamtester"):
        pytest.skip("pamtester is not installed")
    if not helpers.find_lib("libpam_wrapper.so"):
        pytest.skip("libpam_wrapper is not installed")
    module = helpers.module_path(builddir, "pam_teleport.so")
    service_dir = str(tmp_path / "pam.d")

    def run(config, login):
        helpers.write_pam_service(service_dir, "tu-proxy", [
            f"account required {module} config={config} insecure_perms"])
        env = {"PAM_WRAPPER_DEBUGLEVEL": "4"}
        if os.environ.get("TU_PRELOAD"):
            env["LD_PRELOAD"] = os.environ["TU_PRELOAD"] + " " + helpers.find_lib("libpam_wrapper.so")
        return helpers.run_pamtester(service_dir, "tu-proxy", login, "acct_mgmt", env=env)

    return run


def test_pam_through_proxy_uses_the_remembered_path(auth_server, proxy_server, write_config,
                                                   run_cli, web_pki, pam_through):
    """`sync` discovers and remembers; a PAM login then decides online through the Proxy
    without asking /webapi/find again."""
    auth = auth_server()
    proxy = proxy_server(auth.address)
    cfg = proxy_config(write_config, web_pki, proxy.address)
    assert run_cli("sync").rc == 0
    assert len(finds(proxy)) == 1
    n_auth = len(routes(proxy, "auth"))
    res = pam_through(cfg, "frank")
    assert res.rc == 0 and "account management done" in res.stdout + res.stderr, res
    res = pam_through(cfg, "dave")  # lock-user-dave
    assert "Permission denied" in res.stdout + res.stderr, res
    assert len(finds(proxy)) == 1, helpers.proxy_log(proxy)
    assert len(routes(proxy, "auth")) >= n_auth + 2, helpers.proxy_log(proxy)


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


def test_nss_refresh_through_proxy(builddir, auth_server, proxy_server, write_config, web_pki,
                                   cache_dir, tmp_path, default_link):
    """A getpwnam miss (no cache yet) refreshes online through the Proxy."""
    if os.geteuid() != 0:
        pytest.skip("the NSS online refresh runs for root only")
    if not helpers.find_lib("libnss_wrapper.so"):
        pytest.skip("nss_wrapper not installed")
    auth = auth_server()
    proxy = proxy_server(auth.address)
    cfg = proxy_config(write_config, web_pki, proxy.address)
    so = os.path.join(builddir, ".libs", "libteleport-unix.so.0")
    env = {"TELEPORT_UNIX_CONFIG": cfg, "TELEPORT_UNIX_CACHE_DIR": cache_dir,
           "TELEPORT_UNIX_CORE_LIB": so}
    g = helpers.run_getent(builddir, "passwd", "frank", workdir=str(tmp_path / "getent"),
                           env=env, timeout=60)
    assert g.rc == 0 and g.stdout.startswith("frank:*:"), g
    assert routes(proxy, "auth"), helpers.proxy_log(proxy)
    assert os.path.exists(os.path.join(cache_dir, "dial.memo"))


def test_stale_memo_is_rediscovered(auth_server, proxy_server, write_config, run_cli, web_pki,
                                    cache_dir):
    """A memo saying TLS routing is off (the Proxy changed since) does not lock us out:
    find is asked again and the path it picks works; the memo is corrected."""
    auth = auth_server()
    proxy = proxy_server(auth.address)
    proxy_config(write_config, web_pki, proxy.address)
    memo = os.path.join(cache_dir, "dial.memo")
    with open(memo, "w", encoding="ascii") as f:
        f.write(f"version 1\nproxy {proxy.address}\nfound true\ntls_routing false\n"
                f"tunnel_addr {proxy.address}\ncluster example.com\nupgrade unknown\n"
                f"path_addr \nupdated 0\n")
    os.chmod(memo, 0o644)
    r = run_cli("ping")
    assert r.rc == 0, r
    assert "Via:             proxy tls-routing" in r.stdout, r
    assert len(finds(proxy)) == 1, helpers.proxy_log(proxy)
    assert "tls_routing true\n" in open(memo, encoding="ascii").read()


def test_remembered_path_gone_rediscovers(auth_server, proxy_server, write_config, run_cli,
                                          web_pki, cache_dir):
    """The remembered path fails before reaching Auth (the Proxy turned TLS routing off):
    /webapi/find is asked again within the same deadline, and the error is the path's."""
    auth = auth_server()
    proxy = proxy_server(auth.address)
    proxy_config(write_config, web_pki, proxy.address)
    assert run_cli("ping").rc == 0
    proxy.stop()
    proxy2 = helpers.start_proxy(os.path.dirname(proxy.log_path), auth.address, web_pki["cert"],
                                 web_pki["key"], mode="no-routing", name="proxy-again")
    proxy_config(write_config, web_pki, proxy2.address)
    memo = os.path.join(cache_dir, "dial.memo")
    text = open(memo, encoding="ascii").read().replace(proxy.address, proxy2.address)
    with open(memo, "w", encoding="ascii") as f:
        f.write(text)
    try:
        r = run_cli("ping", timeout=BUDGET + 10)
        one_error_line(r, proxy2.address)
        assert r.elapsed < BUDGET + 2, r
        assert routes(proxy2, "refused"), helpers.proxy_log(proxy2)
        assert len(finds(proxy2)) == 1, helpers.proxy_log(proxy2)  # asked again
        assert "tls_routing false\n" in open(memo, encoding="ascii").read()
    finally:
        proxy2.stop()


def test_proxy_behind_l7_balancer(auth_server, write_config, run_cli, cache_dir, tmp_path):
    """auth.proxy behind an L7 load balancer that allows only the WebSocket upgrade
    (tests/fake_auth/l7_proxy.py of the connection-upgrade work): plain TLS routing fails
    before reaching Auth (the balancer's certificate is not Auth's), the upgrade path is
    tried within the same deadline and remembered; the next run goes straight to it."""
    l7 = os.path.join(helpers.FAKE_AUTH, "l7_proxy.py")
    if not os.path.exists(l7) or "/webapi/find" not in open(l7, encoding="utf-8").read():
        pytest.skip("the stand-in L7 balancer (with /webapi/find) is not in this tree")
    import l7_proxy  # noqa: PLC0415  (tests/fake_auth)
    web = l7_proxy.generate_web_certs(str(tmp_path / "l7-web"))
    srv = auth_server()
    log = str(tmp_path / "l7.jsonl")
    p = helpers.Proc([helpers.PY, l7, "--cert", web["cert"], "--key", web["key"],
                      "--auth", srv.address, "--log", log], str(tmp_path / "servers"), "l7").start()
    try:
        write_config(auth={"addresses": None, "proxy": p.address, "proxy_ca": web["ca"]})
        r = run_cli("ping")
        assert r.rc == 0, r
        assert f"Via:             proxy tls-routing+upgrade ({p.address})" in r.stdout, r
        memo = open(os.path.join(cache_dir, "dial.memo"), encoding="ascii").read()
        assert "path proxy tls-routing+upgrade\n" in memo and "upgrade true\n" in memo, memo
        r = run_cli("ping")
        assert r.rc == 0 and "tls-routing+upgrade" in r.stdout, r

        def entries():  # the balancer logs a connection when it ends
            with open(log, encoding="utf-8") as f:
                return f.read()
        end = time.monotonic() + 3
        while entries().count("/webapi/connectionupgrade") < 2 and time.monotonic() < end:
            time.sleep(0.05)
        text = entries()
        # One find and one failed plain TLS routing attempt in all: the second run went
        # straight to the upgrade.
        assert text.count("/webapi/connectionupgrade") == 2, text
        assert text.count("/webapi/find") == 1, text
        assert text.count("tls_error") == 1, text
    finally:
        p.stop()


@helpers.plain_pass_only("strace of an ASan process sees the runtime")
def test_proxy_path_host_safety(builddir, auth_server, proxy_server, write_config, web_pki):
    """Discovery and TLS routing keep the host-process rules: every socket close-on-exec
    from birth (curl's wake-up pairs are marked right after, see test_cloexec.py), no
    thread, openssl.cnf never opened."""
    import shutil  # noqa: PLC0415
    if not shutil.which("strace"):
        pytest.skip("strace not installed")
    auth = auth_server()
    proxy = proxy_server(auth.address)
    cfg = proxy_config(write_config, web_pki, proxy.address)
    trace = os.path.join(os.path.dirname(cfg), "proxy.trace")
    r = helpers.run([os.path.join(builddir, "libtool"), "--mode=execute", "strace", "-f", "-o", trace,
                     "-e", "trace=open,openat,socket,socketpair,clone,clone3,fork,vfork",
                     os.path.join(builddir, "teleport-unix"), "--insecure-perms", "-c", cfg, "ping"],
                    timeout=60 * SLOW)
    assert r.rc == 0 and "proxy tls-routing" in r.stdout, r
    assert len(finds(proxy)) == 1 and routes(proxy, "auth"), helpers.proxy_log(proxy)
    with open(trace, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert not [x for x in lines if "openssl.cnf" in x], "openssl.cnf was opened"
    sockets = [x for x in lines if " socket(" in x and "= -1" not in x]
    assert len(sockets) >= 2 and all("SOCK_CLOEXEC" in x for x in sockets), sockets
    assert not [x for x in lines if "clone" in x or "fork(" in x], "a thread or child was started"
