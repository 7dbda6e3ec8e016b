# SPDX-License-Identifier: Apache-2.0
"""test_embed.py - the public C API (include/teleport-unix/teleport-unix.h,
issue 12 item 6) through tests/api/embed-ping, a program built with the
public header only: a credential from certificate, key and CA PEM read into
memory by the program itself, used for Ping and a user lookup over real mTLS
against the stand-in Auth; bad PEM, a key that does not match, an expired
certificate and a server it cannot verify give a clear error naming the
input, never a hang."""

import os
import time

import pytest

import helpers


@pytest.fixture
def embed(builddir):
    p = os.path.join(builddir, "tests", "api", "embed-ping")
    if not os.access(p, os.X_OK):
        pytest.skip(f"{p} not built (make check builds it)")
    return p


def run(embed, *args):
    return helpers.run([embed, *[str(a) for a in args]], timeout=20 * helpers.SLOW)


def test_ping_and_user_from_pem_in_memory(embed, auth_server, certs):
    srv = auth_server()
    r = run(embed, certs.cert(), certs.key(), certs.ca, srv.address, "alice")
    assert r.rc == 0, r
    assert f"cluster=example.com version=16.4.0 identity={certs.host_uuid}.example.com" in r.stdout, r
    assert "user alice: yes" in r.stdout, r
    r = run(embed, certs.cert(), certs.key(), certs.ca, srv.address, "nobody-such")
    assert r.rc == 1 and "user nobody-such: no" in r.stdout, r
    assert srv.calls("/proto.AuthService/Ping")[0]["peer_cn"] == f"{certs.host_uuid}.example.com"


def test_cluster_name_never_truncated(embed, auth_server, certs):
    """A cluster name that does not fit the caller's buffer is an error, never a
    shorter name ("example" for "example.com" could pass an embedder's check)."""
    srv = auth_server()
    r = helpers.run([embed, certs.cert(), certs.key(), certs.ca, srv.address],
                    timeout=20 * helpers.SLOW, env={**os.environ, "EMBED_PING_CLUSTER_BUF": "8"})
    assert r.rc == 2, r
    assert "cluster=" not in r.stdout, r
    assert "the cluster name (11 bytes) does not fit in 8 bytes" in r.stderr, r
    r = helpers.run([embed, certs.cert(), certs.key(), certs.ca, srv.address],
                    timeout=20 * helpers.SLOW, env={**os.environ, "EMBED_PING_CLUSTER_BUF": "12"})
    assert r.rc == 0 and "cluster=example.com " in r.stdout, r


def test_bad_inputs(embed, auth_server, certs, tmp_path):
    srv = auth_server()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n")
    certs.issue("client-embed-expired", -0.5, not_before_days=-2)
    cases = [
        ((garbage, certs.key(), certs.ca), ["cert:1:", "does not parse"]),
        ((certs.cert(), garbage, certs.ca), ["key:1:", "PRIVATE KEY was expected"]),
        ((certs.cert(), certs.key(), garbage), ["ca:1:", "does not parse"]),
        ((certs.cert(), certs.key("client-mismatch"), certs.ca), ["does not match the certificate"]),
        ((certs.cert("client-embed-expired"), certs.key("client-embed-expired"), certs.ca), ["expired on"]),
    ]
    for files, words in cases:
        t = time.monotonic()
        r = run(embed, *files, srv.address)
        assert r.rc == 2, (files, r)
        assert r.stderr.startswith("embed-ping: "), r
        for w in words:
            assert w in r.stderr, (w, r)
        assert time.monotonic() - t < 2 * helpers.SLOW, r
    # Auth's certificate is not signed by the CA given: refused, within the deadline
    r = run(embed, certs.cert(), certs.key(), certs.m["files"]["other-ca"]["cert"], srv.address)
    assert r.rc == 2 and "embed-ping: " in r.stderr, r
    r = run(embed, certs.cert(), certs.key(), certs.ca, "bad address:x")
    assert r.rc == 2 and "invalid address" in r.stderr, r
