# SPDX-License-Identifier: Apache-2.0
"""test_profile.py - tsh profiles as the credential (issue 12 items 5 and 7):
`auth.credentials.profile` and the CLI's `--profile[=DIR]`, both key layouts
(tsh v17+ `<user>.crt`/`<user>.key`, v16 `<user>-x509.pem` + `<user>`), CAs
from `cas/` or the older `certs.pem`, current-profile or a named profile,
over real mTLS against the stand-in Auth (tests/fake_auth).  Every broken
profile (a missing or corrupt file, an expired certificate, a refused
owner/mode) is exit 2 with one `teleport-unix: ...` line naming the file,
within a second; expiry says "run tsh login".  Profile directories are
written per test by tsh_profile.py from the per-run certificates."""

import os
import re
import time

import pytest

import helpers
import tsh_profile

PING = "/proto.AuthService/Ping"
FAST = 2.0 * helpers.SLOW  # a credential problem never waits for the network


def profile_config(write_config, d, name=None, addresses=None):
    cred = {"dir": d, "name": name} if name else d
    return write_config(addresses=addresses, auth={"credentials": {"key_pair": None, "profile": cred}})


one_error_line = helpers.one_error_line


def default_config_path(cli):
    out = helpers.run([cli, "--help"]).stdout
    m = re.search(r"default \$TELEPORT_UNIX_CONFIG or (\S+)\)", out)
    assert m, out
    return m.group(1)


@pytest.fixture
def no_config(cli):
    """The CLI's default configuration file must not exist for 'no configuration at all'."""
    path = default_config_path(cli)
    if os.path.exists(path):
        pytest.skip(f"{path} exists on this machine: cannot test running without a configuration file")
    return path


# ---------------------------------------------------------------- success

@pytest.mark.parametrize("layout", ["v17", "v16"])
def test_profile_in_config_ping(auth_server, write_config, run_cli, certs, tmp_path, layout):
    srv = auth_server()
    d = str(tmp_path / "tsh")
    tsh_profile.make_profile(d, certs, layout=layout)
    profile_config(write_config, d)
    r = run_cli("ping")
    assert r.rc == 0, r
    assert re.search(r"^tsh profile: +proxy\.example\.test \(Proxy proxy\.example\.test:443\)$", r.stdout, re.M), r
    assert f"{certs.host_uuid}.example.com (cluster example.com)" in r.stdout, r
    cert = "alice.crt" if layout == "v17" else "alice-x509.pem"
    assert re.search(rf"^Credential: +{re.escape(d)}/keys/proxy\.example\.test/{cert}$", r.stdout, re.M), r
    assert srv.calls(PING)[0]["peer_cn"] == f"{certs.host_uuid}.example.com"
    j = run_cli("ping", json=True).json()
    assert j["identity"]["profile"] == "proxy.example.test"
    assert j["identity"]["profile_proxy"] == "proxy.example.test:443"


def test_profile_check_and_host_id(auth_server, write_config, run_cli, certs, tmp_path):
    """A user's certificate does not name this host: in the configuration (what PAM reads) a
    profile needs host.id; the administrator's --profile decides without it."""
    auth_server()
    d = str(tmp_path / "tsh")
    tsh_profile.make_profile(d, certs)
    write_config(auth={"credentials": {"key_pair": None, "profile": d}})
    r = run_cli("check", "alice", "alice")
    assert r.rc == 2, r
    assert "host.id must be set with a tsh profile credential" in r.stdout + r.stderr, r
    write_config(auth={"credentials": {"key_pair": None, "profile": d}}, host={"id": certs.host_uuid})
    r = run_cli("check", "alice", "alice")
    assert r.rc == 0 and r.stdout.startswith("allow: "), r
    r = run_cli("check", "frank", "root")
    assert r.rc == 1 and r.stdout.startswith("deny: "), r
    write_config()
    r = run_cli(f"--profile={d}", "check", "alice", "alice")
    assert r.rc == 0 and r.stdout.startswith("allow: "), r


def test_profile_named_and_legacy_cas(auth_server, write_config, run_cli, certs, tmp_path):
    """{dir, name} needs no current-profile; CAs from the pre-cas/ certs.pem."""
    auth_server()
    d = str(tmp_path / "tsh")
    tsh_profile.make_profile(d, certs, current=False, legacy_cas=True)
    profile_config(write_config, d, name="proxy.example.test")
    r = run_cli("ping")
    assert r.rc == 0, r
    # the same directory without a name: its current profile, and there is none
    profile_config(write_config, d)
    one_error_line(run_cli("ping"), f"no current tsh profile in {d}", "run tsh login")


def test_profile_option_replaces_configured_credential(auth_server, write_config, run_cli, certs, tmp_path):
    """--profile=DIR wins over the configuration's key pair (here an expired one)."""
    certs.issue("client-old", -1, not_before_days=-3)
    auth_server()
    d = str(tmp_path / "tsh")
    tsh_profile.make_profile(d, certs)
    write_config(client="client-old")
    one_error_line(run_cli("ping"), "expired")
    r = run_cli(f"--profile={d}", "ping")
    assert r.rc == 0, r
    assert "tsh profile:" in r.stdout, r
    r = run_cli(f"--profile={d}", "user", "alice")
    assert r.rc == 0, r


def test_profile_option_default_dir(auth_server, write_config, run_cli, certs, tmp_path):
    """--profile alone: $TELEPORT_HOME, else $HOME/.tsh."""
    auth_server()
    write_config()
    home = tmp_path / "home"
    tsh_profile.make_profile(str(home / ".tsh"), certs)
    r = run_cli("--profile", "ping", env={"HOME": str(home), "TELEPORT_HOME": ""})
    assert r.rc == 0, r
    assert f"{home}/.tsh/keys/" in r.stdout, r
    other = tmp_path / "elsewhere"
    tsh_profile.make_profile(str(other), certs, layout="v16")
    r = run_cli("--profile", "ping", env={"HOME": str(home), "TELEPORT_HOME": str(other)})
    assert r.rc == 0, r
    assert f"{other}/keys/proxy.example.test/alice-x509.pem" in r.stdout, r
    # a relative DIR is taken from the working directory (run_cli runs in tmp_path)
    r = run_cli("--profile=elsewhere", "ping", env={"HOME": str(home)})
    assert r.rc == 0, r
    assert f"{other}/keys/proxy.example.test/alice-x509.pem" in r.stdout, r


def test_profile_without_configuration_file(no_config, run_cli, certs, tmp_path):
    """No configuration file at all: the profile is the credential and names the Proxy.
    Nothing listens at the profile's Proxy here: the failure is about reaching Auth, after
    the profile loaded, within the default deadlines, never about the configuration."""
    d = str(tmp_path / "tsh")
    tsh_profile.make_profile(d, certs, proxy="127.0.0.1:1")
    t = time.monotonic()
    r = run_cli(f"--profile={d}", "ping")
    line = one_error_line(r, "ping")
    assert time.monotonic() - t < 5.0 * helpers.SLOW, r
    assert "credentials" not in line and "config" not in line.split(":")[1], r
    # not for the host's own checks
    for cmd in (["doctor"], ["ssh-principals", "alice", "t", "k"]):
        one_error_line(run_cli(f"--profile={d}", *cmd), "--profile does not apply")
    # an explicitly named configuration file must exist
    r = run_cli(f"--profile={d}", "ping", config=str(tmp_path / "nope.yaml"))
    one_error_line(r, "nope.yaml")


# ---------------------------------------------------------------- expiry (item 7)

@pytest.mark.parametrize("command", [["ping"], ["user", "alice"], ["check", "alice", "alice"]])
def test_expired_profile_certificate(no_config, run_cli, certs, tmp_path, command):
    certs.issue("client-expired-profile", -0.5, not_before_days=-2)
    d = str(tmp_path / "tsh")
    p = tsh_profile.make_profile(d, certs, client="client-expired-profile", proxy="192.0.2.1:443")
    t = time.monotonic()
    r = run_cli(f"--profile={d}", *command)
    line = one_error_line(r, p["cert"], "expired on", "run tsh login")
    assert time.monotonic() - t < FAST, r
    assert line.count("run tsh login") == 1, line


def test_expired_identity_file(write_config, run_cli, certs, tmp_path):
    certs.issue("client-expired-id", -0.5, not_before_days=-2)
    ident = tmp_path / "identity"
    with open(certs.key("client-expired-id"), encoding="ascii") as k, \
            open(certs.cert("client-expired-id"), encoding="ascii") as c, open(certs.ca, encoding="ascii") as a:
        ident.write_text(k.read() + c.read() + a.read())
    ident.chmod(0o600)
    write_config(addresses="192.0.2.1:3025",
                 auth={"credentials": {"key_pair": None, "identity_file": str(ident)}})
    t = time.monotonic()
    r = run_cli("ping")
    one_error_line(r, str(ident), "expired on", "run tsh login")
    assert time.monotonic() - t < FAST, r


# ---------------------------------------------------------------- broken profiles

def _unlink(p, key):
    os.unlink(p[key])


def _garbage(p, key):
    with open(p[key], "w", encoding="ascii") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n")


BROKEN = [
    # (id, layout, action, file key or literal path, expected words)
    ("no-cert-v17", "v17", _unlink, "cert", ["alice.crt", "alice-x509.pem", "run tsh login"]),
    ("no-cert-v16", "v16", _unlink, "cert", ["alice.crt", "alice-x509.pem", "run tsh login"]),
    ("no-key-v16", "v16", _unlink, "key", ["alice", "missing", "run tsh login"]),
    ("corrupt-cert", "v17", _garbage, "cert", ["alice.crt", "does not parse"]),
    ("corrupt-key", "v17", _garbage, "key", ["alice.key", "PRIVATE KEY was expected"]),
    ("corrupt-ca", "v17", _garbage, "cas", ["cas/example.com.pem", "does not parse"]),
    ("no-ca", "v17", _unlink, "cas", ["keys/192.0.2.1/cas: no CA certificate file", "run tsh login"]),
    ("no-yaml", "v17", _unlink, "yaml", ["192.0.2.1.yaml", "missing", "run tsh login"]),
]


@pytest.mark.parametrize("case", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_profile(no_config, run_cli, certs, tmp_path, case):
    _, layout, action, key, words = case
    d = str(tmp_path / "tsh")
    p = tsh_profile.make_profile(d, certs, layout=layout, proxy="192.0.2.1:443")
    action(p, key)
    t = time.monotonic()
    r = run_cli(f"--profile={d}", "ping")
    one_error_line(r, "ping: credentials", *words)
    assert time.monotonic() - t < FAST, r


@pytest.mark.parametrize("text,words", [
    ("", ["current-profile is empty", "run tsh login"]),
    ("../../etc\n", ["does not hold a profile name"]),
])
def test_bad_current_profile(no_config, run_cli, certs, tmp_path, text, words):
    d = str(tmp_path / "tsh")
    tsh_profile.make_profile(d, certs)
    with open(os.path.join(d, "current-profile"), "w", encoding="ascii") as f:
        f.write(text)
    one_error_line(run_cli(f"--profile={d}", "ping"), f"{d}/current-profile", *words)


@pytest.mark.parametrize("yaml_text,words", [
    ("user: alice\n", ["missing web_proxy_addr"]),
    ("web_proxy_addr: proxy.example.test:443\n", ["missing user"]),
    ("web_proxy_addr: proxy.example.test:443\nuser: ../root\n", ["invalid user name"]),
    ("web_proxy_addr: [a, b]\nuser: alice\n", ["web_proxy_addr", "expected a string"]),
    ("web_proxy_addr: 'http://x/y'\nuser: alice\n", ["invalid Proxy address"]),
    ("- just\n- a list\n", ["not a tsh profile"]),
    ("web_proxy_addr: {\n", ["web_proxy_addr", "expected a string, found a mapping"]),
    ("user: alice\nweb_proxy_addr: 'unterminated\n", ["YAML syntax error"]),
    ("future: [1, 2]\nweb_proxy_addr: proxy.example.test:443\nuser: alice\nuser: bob\n", ["duplicate key 'user'"]),
])
def test_corrupt_profile_yaml(no_config, run_cli, certs, tmp_path, yaml_text, words):
    d = str(tmp_path / "tsh")
    p = tsh_profile.make_profile(d, certs)
    with open(p["yaml"], "w", encoding="ascii") as f:
        f.write(yaml_text)
    one_error_line(run_cli(f"--profile={d}", "ping"), p["yaml"], *words)


def test_profile_permissions(no_config, run_cli, certs, tmp_path):
    """Without --insecure-perms: files owned by root or by the user running the CLI, no
    group/other write, keys not readable by others; the directories walked likewise."""
    d = str(tmp_path / "tsh")
    p = tsh_profile.make_profile(d, certs, proxy="192.0.2.1:443")
    os.chmod(str(tmp_path), 0o755)
    os.chmod(p["key"], 0o644)
    one_error_line(run_cli(f"--profile={d}", "ping", insecure_perms=False), p["key"], "readable by others")
    os.chmod(p["key"], 0o600)
    os.chmod(p["keydir"], 0o777)
    one_error_line(run_cli(f"--profile={d}", "ping", insecure_perms=False), p["keydir"], "writable by others")
    os.chmod(p["keydir"], 0o700)
    keys = os.path.dirname(p["keydir"])
    os.chmod(keys, 0o777)
    one_error_line(run_cli(f"--profile={d}", "ping", insecure_perms=False), keys, "writable by others")
    os.chmod(keys, 0o700)
    os.chmod(d, 0o770)
    one_error_line(run_cli(f"--profile={d}", "ping", insecure_perms=False), d, "writable by group")
    os.chmod(d, 0o700)
    os.chmod(p["cert"], 0o666)
    one_error_line(run_cli(f"--profile={d}", "ping", insecure_perms=False), p["cert"], "writable by others")
    os.chmod(p["cert"], 0o644)
    # all good again: the failure is now about reaching the (unreachable) Proxy, not the files
    r = run_cli(f"--profile={d}", "ping", insecure_perms=False)
    assert r.rc == 2 and "ping: credentials" not in r.stderr, r


# ---------------------------------------------------------------- through the Proxy

def _web_pki(d):
    """A web CA and a Proxy web certificate for 127.0.0.1 (as test_proxy.py makes them)."""
    import datetime  # noqa: PLC0415
    import ipaddress  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web-ca")])
    ca = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy")]))
            .issuer_name(subj).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    os.makedirs(d, exist_ok=True)
    out = {"ca": os.path.join(d, "web-ca.pem"), "cert": os.path.join(d, "web.pem"), "key": os.path.join(d, "web.key")}
    with open(out["ca"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(out["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(out["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return out


def test_profile_names_the_proxy(auth_server, write_config, run_cli, certs, tmp_path):
    """The Proxy comes from the profile's web_proxy_addr: a configuration with neither
    auth.addresses nor auth.proxy reaches Auth through the profile's Proxy (TLS routing).
    Needs the stand-in Proxy of the TLS-routing work (tests/fake_auth/proxy.py)."""
    if not hasattr(helpers, "start_proxy"):
        pytest.skip("the stand-in Proxy (helpers.start_proxy, issue 12 item 1) is not in this tree")
    auth = auth_server()
    pki = _web_pki(str(tmp_path / "web"))
    proxy = helpers.start_proxy(str(tmp_path / "servers"), auth.address, pki["cert"], pki["key"])
    try:
        d = str(tmp_path / "tsh")
        tsh_profile.make_profile(d, certs, proxy=proxy.address)
        write_config(auth={"addresses": None, "proxy_ca": pki["ca"],
                           "credentials": {"key_pair": None, "profile": d}},
                     host={"id": certs.host_uuid})
        r = run_cli("ping")
        assert r.rc == 0, r
        assert re.search(r"^Via: +proxy tls-routing", r.stdout, re.M), r
        assert auth.calls(PING)[0]["peer_cn"] == f"{certs.host_uuid}.example.com"
        r = run_cli("check", "alice", "alice")
        assert r.rc == 0 and r.stdout.startswith("allow: "), r
    finally:
        proxy.stop()


def test_profile_never_writes_the_host_cache(auth_server, write_config, run_cli, certs, tmp_path,
                                             cache_dir):
    """A person's tsh login is not the host's view of Teleport (another cluster, or what that
    user's roles may read: locks left out would let in someone Teleport refuses): with
    --profile nothing writes the cache PAM and NSS decide from, not an online check, and
    sync and watch refuse to run."""
    auth_server()
    d = str(tmp_path / "tsh")
    tsh_profile.make_profile(d, certs)
    write_config()
    def written():
        return [f for f in os.listdir(cache_dir) if f.endswith(".db")]

    r = run_cli(f"--profile={d}", "check", "alice", "alice")
    assert r.rc == 0 and r.stdout.startswith("allow: "), r
    assert written() == [], r
    for cmd in (["sync"], ["sync", "--force"], ["watch"]):
        one_error_line(run_cli(f"--profile={d}", *cmd), "--profile does not apply")
    assert written() == []
    # the host's own credential still writes it
    r = run_cli("sync")
    assert r.rc == 0, r
    assert written(), os.listdir(cache_dir)
