# SPDX-License-Identifier: Apache-2.0
"""test_transport.py - the Auth transport end to end through the real CLI
(`teleport-unix ping` and `user NAME`) against the stand-in Auth servers
(tests/fake_auth): mTLS with SNI/verified name teleport.cluster.local, ALPN
h2, gRPC metadata, fail-over, deadlines (refused, black-holed, stalled,
slow), bad server and client certificates, gRPC errors with their
messages, and every malformed answer raw_h2.py can produce.  Every failure
must be exit 2 with exactly one `teleport-unix: <what>: <why>` line, and
nothing may hang (run_cli kills a hung CLI and fails the test)."""

import os
import re
import shutil
import time

import pytest

import helpers

PING = "/proto.AuthService/Ping"
GET_USER_V1 = "/teleport.users.v1.UsersService/GetUser"
GET_USER = "/proto.AuthService/GetUser"

# connect 1s + request 3s (helpers.build_config): the CLI's worst case per RPC.
# Under TU_VALGRIND=1 the configs' timeouts and our time bounds are x SLOW.
SLOW = helpers.SLOW
BUDGET = 4.0 * SLOW


one_error_line = helpers.one_error_line


# ---------------------------------------------------------------- success

def test_ping_ok(auth_server, write_config, run_cli, certs):
    srv = auth_server()
    write_config()
    r = run_cli("ping")
    assert r.rc == 0, r
    assert r.stderr == "", r
    out = r.stdout
    assert re.search(r"^Cluster: +example\.com$", out, re.M), r
    assert re.search(r"^Server version: +16\.4\.0$", out, re.M), r
    assert f"{certs.host_uuid}.example.com (cluster example.com)" in out, r
    assert re.search(r"^Certificate: +valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+ days left\)$", out, re.M), r
    calls = srv.calls(PING)
    assert len(calls) == 1
    # API.md §1.4: no `version` metadata (it would subject us to version checks / downgrades)
    assert "version" not in calls[0]["metadata"], calls[0]
    assert 0 < calls[0]["time_remaining"] <= BUDGET + 0.5, calls[0]
    assert calls[0]["peer_cn"] == f"{certs.host_uuid}.example.com"


def test_ping_json(auth_server, write_config, run_cli, certs):
    auth_server()
    write_config()
    r = run_cli("ping", json=True)
    assert r.rc == 0, r
    doc = r.json()
    assert doc["cluster_name"] == "example.com"
    assert doc["server_version"] == "16.4.0"
    assert doc["identity"]["subject_cn"] == f"{certs.host_uuid}.example.com"
    assert doc["identity"]["cluster"] == "example.com"
    assert doc["identity"]["expiring_soon"] is False
    assert doc["identity"]["expires_in_seconds"] > 300 * 86400


def test_wire_headers(raw_h2_server, write_config, run_cli, certs):
    """What really goes on the wire: SNI, ALPN, gRPC headers, framing."""
    srv = raw_h2_server("ok")
    write_config()
    r = run_cli("ping")
    assert r.rc == 0, r
    (c,) = srv.calls(PING)
    assert c["sni"] == "teleport.cluster.local", c
    assert c["alpn"] == "h2", c
    assert c["peer_cn"] == f"{certs.host_uuid}.example.com", c
    h = c["headers"]
    assert h[":method"] == "POST" and h[":scheme"] == "https", c
    assert h["content-type"] == "application/grpc", c
    assert h["te"] == "trailers", c
    assert re.fullmatch(r"\d{1,8}m", h["grpc-timeout"]), c
    assert 3000 * SLOW <= int(h["grpc-timeout"][:-1]) <= 4000 * SLOW, c
    assert "version" not in h, c
    assert c["body_hex"] == "0000000000", c   # one empty PingRequest frame


def test_ping_identity_file(auth_server, write_config, run_cli, certs):
    auth_server()
    for ident in ("identity", "identity-plain"):
        write_config(identity=ident)
        r = run_cli("ping")
        assert r.rc == 0, (ident, r)
        assert f"{certs.host_uuid}.example.com" in r.stdout


def test_ping_rsa_pkcs1_key(auth_server, write_config, run_cli):
    auth_server()
    write_config(client="client-rsa")
    r = run_cli("ping")
    assert r.rc == 0, r


def test_ping_expiring_soon_warns(auth_server, write_config, run_cli):
    auth_server()
    write_config(client="client-3days")
    r = run_cli("ping")
    assert r.rc == 0, r
    assert re.search(r"\((2|3) days left\)", r.stdout), r
    assert re.fullmatch(r"teleport-unix: warning: the certificate expires on \S+ \(\d+ days left\): renew it\n",
                        r.stderr), r
    r = run_cli("ping", json=True)
    assert r.rc == 0 and r.json()["identity"]["expiring_soon"] is True, r


def test_failover_to_the_next_address(auth_server, write_config, run_cli):
    srv = auth_server()
    write_config(addresses=["127.0.0.1:1", srv.address])
    r = run_cli("ping")
    assert r.rc == 0, r
    assert r.elapsed < BUDGET, r


def test_connection_reused_across_calls(auth_server, write_config, run_cli):
    srv = auth_server()
    write_config()
    r = run_cli("user", "alice")
    assert r.rc == 0, r
    calls = srv.calls()
    assert len(calls) >= 3, calls   # GetUser, GetRole x2, GetLocks
    assert len({c["peer"] for c in calls}) == 1, [c["peer"] for c in calls]


# ---------------------------------------------------------------- reachability and deadlines

def test_refused_port(write_config, run_cli):
    write_config(addresses="127.0.0.1:1")
    r = run_cli("ping", timeout=10)
    one_error_line(r, "teleport-unix: ping: cannot connect to 127.0.0.1:1: connection refused")
    assert r.elapsed < 2 * SLOW, r


def test_all_addresses_refused(write_config, run_cli):
    write_config(addresses=["127.0.0.1:1", "127.0.0.1:2"])
    r = run_cli("ping", timeout=10)
    one_error_line(r, "no Auth address answered", "127.0.0.1:1", "127.0.0.1:2", "connection refused")


def test_blackhole_returns_within_the_timeouts(blackhole_server, write_config, run_cli):
    write_config()
    t0 = time.monotonic()
    r = run_cli("ping", timeout=15)
    elapsed = time.monotonic() - t0
    one_error_line(r, "timed out")
    assert elapsed < BUDGET + 1.0 * SLOW, r


@pytest.mark.parametrize("mode", ["stall_tls", "blackhole"])
def test_stalled_tls_returns_within_connect_timeout(raw_h2_server, write_config, run_cli, mode):
    raw_h2_server(mode)
    write_config()
    r = run_cli("ping", timeout=15)
    one_error_line(r, "connecting to 127.0.0.1:", "timed out after")
    assert r.elapsed < (1.0 + 1.0) * SLOW, r


def test_slow_answer_bounded_by_the_deadline(auth_server, write_config, run_cli):
    auth_server(faults={PING: f"delay={30 * SLOW}"})
    write_config()
    r = run_cli("ping", timeout=15)
    one_error_line(r, "no complete answer from 127.0.0.1:", "within")
    assert r.elapsed < BUDGET + 1.0 * SLOW, r


def test_trickle_bounded_by_the_deadline(raw_h2_server, write_config, run_cli):
    raw_h2_server("trickle", only_path=PING, extra=["--trickle-interval", str(0.5 * SLOW)])
    write_config()
    r = run_cli("ping", timeout=15)
    one_error_line(r, "no complete answer")
    assert r.elapsed < BUDGET + 1.0 * SLOW, r


def test_blackholed_first_address_then_failover(blackhole_server, auth_server, write_config, run_cli):
    srv = auth_server()
    write_config(addresses=[blackhole_server.address, srv.address])
    r = run_cli("ping", timeout=15)
    assert r.rc == 0, r
    assert r.elapsed < BUDGET + 1.0 * SLOW, r


# ---------------------------------------------------------------- TLS and HTTP/2

@pytest.mark.parametrize("how", ["server-flag", "raw-http1", "raw-no-alpn"])
def test_http1_only_server(auth_server, raw_h2_server, write_config, run_cli, how):
    if how == "server-flag":
        auth_server(extra=["--http1-only"])
    else:
        raw_h2_server("http1" if how == "raw-http1" else "no_alpn")
    write_config()
    r = run_cli("ping", timeout=10)
    one_error_line(r, "did not negotiate HTTP/2 (ALPN h2)")


@pytest.mark.parametrize("server_cert,needle", [
    ("server-wrongname", "is not valid for 'teleport.cluster.local'"),
    ("server-otherca", "unable to get local issuer certificate"),
    ("server-expired", "certificate has expired"),
])
def test_bad_server_certificate(auth_server, write_config, run_cli, server_cert, needle):
    auth_server(server_cert=server_cert)
    write_config()
    r = run_cli("ping", timeout=10)
    one_error_line(r, needle)


def test_wrong_server_name(auth_server, write_config, run_cli):
    auth_server()
    write_config(auth={"server_name": "auth.example.com"})
    r = run_cli("ping", timeout=10)
    one_error_line(r, "is not valid for 'auth.example.com'")


def test_wrong_ca(auth_server, write_config, run_cli, certs):
    auth_server()
    write_config(auth={"credentials": {"key_pair": {"ca": certs.cert("other-ca")}}})
    r = run_cli("ping", timeout=10)
    one_error_line(r, "TLS: the certificate of 127.0.0.1:", "is not valid for 'teleport.cluster.local' under the "
                   "configured CA")


# ---------------------------------------------------------------- our credential

@pytest.mark.parametrize("client,needle", [
    ("client-expired", "the certificate expired on"),
    ("client-notyet", "the certificate is not valid before"),
])
def test_client_certificate_validity(auth_server, write_config, run_cli, certs, client, needle):
    srv = auth_server()
    write_config(client=client)
    r = run_cli("ping", timeout=10)
    line = one_error_line(r, needle)
    assert certs.cert(client) in line, r
    assert srv.calls() == []   # refused before dialling


def test_client_key_mismatch(auth_server, write_config, run_cli, certs):
    auth_server()
    write_config(auth={"credentials": {"key_pair": {"key": certs.key("client-mismatch")}}})
    r = run_cli("ping", timeout=10)
    one_error_line(r, certs.key("client-mismatch"), "the private key does not match the certificate")


def test_client_cert_from_another_ca(auth_server, write_config, run_cli):
    auth_server()
    write_config(client="client-otherca")
    r = run_cli("ping", timeout=10)
    one_error_line(r, "closed the connection without answering (did it refuse our client certificate?)")


def test_missing_credential_file(write_config, run_cli, certs, tmp_path):
    write_config(auth={"credentials": {"key_pair": {"cert": str(tmp_path / "nope.crt")}}})
    r = run_cli("ping", timeout=10)
    one_error_line(r, "teleport-unix: ping: credentials: cannot open " + str(tmp_path / "nope.crt") +
                   ": No such file or directory")


def test_key_readable_by_others_refused_without_insecure_perms(auth_server, write_config, run_cli, certs,
                                                               tmp_path):
    auth_server()
    key = tmp_path / "client.key"
    shutil.copy(certs.key("client"), key)
    os.chmod(key, 0o644)
    cfg = write_config(auth={"credentials": {"key_pair": {"key": str(key)}}})
    os.chmod(cfg, 0o644)
    r = run_cli("ping", timeout=10, insecure_perms=False)
    if r.rc == 2 and "config" in r.stderr and str(key) not in r.stderr:
        pytest.skip("config itself refused in this environment: " + r.stderr)
    one_error_line(r, str(key), "readable by others")


# ---------------------------------------------------------------- gRPC errors

@pytest.mark.parametrize("spec,needle", [
    ("permission_denied,message=access denied to perform action \"read\" on \"cluster\"",
     "Auth refused: the credential lacks permission for AuthService/Ping "
     "(access denied to perform action \"read\" on \"cluster\")"),
    ("unauthenticated", "Auth refused: the credential lacks permission for AuthService/Ping"),
    ("unavailable,message=backend is down", "AuthService/Ping failed: UNAVAILABLE: backend is down"),
    ("internal,message=boom 100% sure", "AuthService/Ping failed: INTERNAL: boom 100% sure"),
    ("unimplemented", "AuthService/Ping failed: UNIMPLEMENTED"),
    ("malformed", "malformed answer to AuthService/Ping"),
    ("oversize=70000000", "over the limit of 67108864 bytes"),
])
def test_grpc_errors_on_ping(auth_server, write_config, run_cli, spec, needle):
    auth_server(faults={PING: spec})
    write_config()
    r = run_cli("ping", timeout=20)
    one_error_line(r, "teleport-unix: ping: ", needle)


def test_large_message_under_the_limit(auth_server, write_config, run_cli):
    auth_server(faults={PING: "oversize=20000000"})   # 20 MB < 64 MiB
    write_config()
    r = run_cli("ping", timeout=30)
    assert r.rc == 0, r
    assert "example.com" in r.stdout


def test_oversize_against_configured_limit(auth_server, write_config, run_cli):
    auth_server(faults={PING: "oversize=4096"})
    write_config(auth={"max_message_size": "1KiB"})
    r = run_cli("ping", timeout=10)
    one_error_line(r, "gRPC message of 4096 bytes is over the limit of 1024 bytes")


@pytest.mark.parametrize("mode,needle", [
    ("truncated", "truncated gRPC frame (got 15 of 105 bytes)"),
    ("truncated_ok", "truncated gRPC frame (got 15 of 105 bytes)"),
    ("no_trailers", "no grpc-status trailer"),
    ("rst_stream", "HTTP/2"),
    ("two_messages", "unary RPC AuthService/Ping answered with more than one message"),
    ("oversize_prefix", "gRPC message of 2147483647 bytes is over the limit"),
    ("compressed", "compressed gRPC message at byte 0"),
    ("bad_status", "invalid grpc-status"),
    ("http500", "answered HTTP status 500"),
    ("non_grpc", "not application/grpc"),
    ("goaway", "127.0.0.1:"),
    ("close", "127.0.0.1:"),
])
def test_malformed_answers(raw_h2_server, write_config, run_cli, mode, needle):
    raw_h2_server(mode, only_path=PING)
    write_config()
    r = run_cli("ping", timeout=15)
    one_error_line(r, "teleport-unix: ping", needle)
    assert r.elapsed < BUDGET + 1.0 * SLOW, r


# ---------------------------------------------------------------- user NAME

def test_user_ok(shared_auth_server, write_config, run_cli):
    write_config(addresses=shared_auth_server.address)
    r = run_cli("user", "bob")
    assert r.rc == 0, r
    assert re.search(r"^User: +bob$", r.stdout, re.M), r
    assert re.search(r"^Roles: +dev$", r.stdout, re.M), r
    assert re.search(r"^Status: +locked until 2035-", r.stdout, re.M), r
    assert re.search(r"^Logins here: +bob, robert$", r.stdout, re.M), r
    # what `check bob LOGIN` says: login-locked, so every login here is refused
    assert re.search(r"^Refused: +bob: Teleport user 'bob' is locked", r.stdout, re.M), r
    assert re.search(r"^ +robert: Teleport user 'bob' is locked", r.stdout, re.M), r
    assert "Cluster:" not in r.stdout, r   # a fresh cluster requires nothing
    r = run_cli("user", "bob", json=True)
    assert r.rc == 0, r
    doc = r.json()
    assert [x["login"] for x in doc["refused"]] == ["bob", "robert"], doc
    assert doc["cluster"] == {"require_session_mfa": False, "device_trust_mode": "", "locking_mode": ""}, doc
    assert doc["name"] == "bob" and doc["roles"] == ["dev"]
    assert doc["status"] == "locked" and doc["login_locked"] is True
    assert doc["logins"] == ["bob", "robert"]
    assert doc["traits"]["unix_login"] == ["robert"]


def test_user_expired_and_locked_by_lock(shared_auth_server, write_config, run_cli):
    write_config(addresses=shared_auth_server.address)
    r = run_cli("user", "carol", json=True)
    assert r.rc == 0 and r.json()["status"] == "expired", r
    r = run_cli("user", "dave", json=True)
    assert r.rc == 0, r
    assert [lk["name"] for lk in r.json()["locks"]] == ["lock-user-dave"], r


def test_user_not_found(shared_auth_server, write_config, run_cli):
    write_config(addresses=shared_auth_server.address)
    r = run_cli("user", "nobody")
    assert r.rc == 1, r
    assert r.stderr == "teleport-unix: user: Teleport user 'nobody' not found\n", r


def test_user_usage(write_config, run_cli):
    write_config()
    r = run_cli("user")
    one_error_line(r, "usage: teleport-unix user NAME")


def test_user_legacy_fallback(auth_server, write_config, run_cli):
    srv = auth_server(profile="v14")
    write_config()
    r = run_cli("user", "alice", json=True)
    assert r.rc == 0, r
    assert r.json()["roles"] == ["access", "dev"]
    paths = [c["path"] for c in srv.calls()]
    assert paths[:2] == [GET_USER_V1, GET_USER], paths
    assert srv.calls(GET_USER_V1)[0]["code"] == "UNIMPLEMENTED"


def test_user_permission_denied(auth_server, write_config, run_cli):
    auth_server(faults={GET_USER_V1: "permission_denied,message=access denied"})
    write_config()
    r = run_cli("user", "alice")
    one_error_line(r, "teleport-unix: user: Auth refused: the credential lacks permission for "
                      "UsersService/GetUser (access denied)")


def test_user_unreachable(write_config, run_cli):
    write_config(addresses="127.0.0.1:1")
    r = run_cli("user", "alice", timeout=10)
    one_error_line(r, "connection refused")
