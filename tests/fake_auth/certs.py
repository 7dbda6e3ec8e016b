#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""certs.py - per-run certificates for the stand-in Teleport Auth server.

Makes what a Teleport cluster would hand out (API.md §1.3, §1.6), plus the
broken variants the tests need:

  ca.crt / ca.key                 "Host CA": self-signed, subject O=<cluster>
  server.crt / server.key         Auth server cert: SAN teleport.cluster.local and
                                  *.teleport.cluster.local (no IP, no localhost)
  client.crt / client.key         host identity: CN=<host-uuid>.<cluster>,
                                  O=Instance, 1.3.9999.1.7=<cluster>,
                                  1.3.9999.2.11=Node (system roles)
  client-rsa.crt / .key           same identity with an RSA-2048 PKCS#1 key
  client-expired.crt / .key       expired yesterday
  client-3days.crt / .key         expires in 3 days (the < 7 days warning)
  client-notyet.crt / .key        valid from tomorrow
  client-otherca.crt / .key       signed by another CA (server rejects it)
  client-mismatch.key             a key that does not match client.crt
  server-wrongname.crt / .key     SAN wrong.example.com only
  server-otherca.crt / .key       right names, signed by other-ca
  server-expired.crt / .key       right names, expired
  other-ca.crt / other-ca.key     the unrelated CA
  ca-bundle.crt                   other-ca then ca (a CA rotation's trust file)
  identity                        tctl-style identity file: key, SSH cert line,
                                  TLS cert, @cert-authority line, CA PEM
  identity-plain                  key PEM + cert PEM + CA PEM only
  identity-rsa                    the same with client-rsa's PKCS#1 RSA key
  certs.json                      manifest: paths, host uuid, cluster, expiry

Keys are mode 0600, everything else 0644.  Uses python3-cryptography (the
Debian package; OpenSSL 3.0's `x509` cannot set past validity dates).

Usage: certs.py --out DIR [--cluster example.com] [--host-uuid UUID] [--extra-client NAME:DAYS]
issue_client(dir, name, days) adds a pair with any validity to an existing set.
"""

import argparse
import base64
import datetime
import json
import os
import sys
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OID_TELEPORT_CLUSTER = x509.ObjectIdentifier("1.3.9999.1.7")
OID_SYSTEM_ROLES = x509.ObjectIdentifier("1.3.9999.2.11")
API_DOMAIN = "teleport.cluster.local"

DAY = datetime.timedelta(days=1)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _key(kind="ec"):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key):
    # RSA as PKCS#1 ("RSA PRIVATE KEY", what tctl writes), EC as PKCS#8.
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if isinstance(key, rsa.RSAPrivateKey)
           else serialization.PrivateFormat.PKCS8)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path, data, mode):
    # Create with the final mode so a key is never world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _serial():
    return x509.random_serial_number()


def make_ca(cluster, not_before, not_after, key=None):
    key = key or _key()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster),
        x509.NameAttribute(NameOID.COMMON_NAME, cluster),
        x509.NameAttribute(OID_TELEPORT_CLUSTER, cluster),
    ])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(_serial())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca_key, ca_cert, subject_attrs, not_before, not_after, dns=(), key=None,
              key_kind="ec"):
    key = key or _key(key_kind)
    subject = x509.Name([x509.NameAttribute(oid, val) for oid, val in subject_attrs])
    b = (x509.CertificateBuilder()
         .subject_name(subject).issuer_name(ca_cert.subject)
         .public_key(key.public_key())
         .serial_number(_serial())
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                      content_commitment=False, data_encipherment=False,
                                      key_agreement=False, key_cert_sign=False, crl_sign=False,
                                      encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                               ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if dns:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]),
                            critical=False)
    return key, b.sign(ca_key, hashes.SHA256())


def host_subject(host_uuid, cluster):
    return [
        (NameOID.COMMON_NAME, f"{host_uuid}.{cluster}"),
        (NameOID.ORGANIZATION_NAME, "Instance"),
        (OID_TELEPORT_CLUSTER, cluster),
        (OID_SYSTEM_ROLES, "Node"),
    ]


def server_subject(cluster):
    return [
        (NameOID.COMMON_NAME, f"{uuid.uuid5(uuid.NAMESPACE_DNS, 'auth.' + cluster)}.{cluster}"),
        (NameOID.ORGANIZATION_NAME, "Admin"),
        (OID_TELEPORT_CLUSTER, cluster),
    ]


def _fake_ssh_line(kind, comment):
    # Only the shape matters: our identity-file parser must skip SSH lines.
    blob = base64.b64encode(b"\x00\x00\x00\x28ecdsa-sha2-nistp256-cert-v01@openssh.com"
                            + os.urandom(96)).decode()
    return f"{kind} {blob} {comment}\n".encode()


def generate(out, cluster="example.com", host_uuid=None):
    """Writes the whole set into out (created 0755 if missing); returns the manifest dict."""
    os.makedirs(out, mode=0o755, exist_ok=True)
    host_uuid = host_uuid or str(uuid.uuid4())
    now = _now()
    long_nb, long_na = now - DAY, now + 365 * DAY
    names = [API_DOMAIN, "*." + API_DOMAIN]
    files = {}

    def put_pair(name, key, cert):
        kp, cp = os.path.join(out, name + ".key"), os.path.join(out, name + ".crt")
        _write(kp, _key_pem(key), 0o600)
        _write(cp, _cert_pem(cert), 0o644)
        files[name] = {"cert": cp, "key": kp,
                       "not_before": cert.not_valid_before.replace(tzinfo=datetime.timezone.utc).isoformat(),
                       "not_after": cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).isoformat()}

    ca_key, ca = make_ca(cluster, now - 2 * DAY, now + 10 * 365 * DAY)
    put_pair("ca", ca_key, ca)
    oca_key, oca = make_ca("other." + cluster, now - 2 * DAY, now + 10 * 365 * DAY)
    put_pair("other-ca", oca_key, oca)

    srv = server_subject(cluster)
    put_pair("server", *make_leaf(ca_key, ca, srv, long_nb, long_na, names))
    put_pair("server-wrongname", *make_leaf(ca_key, ca, srv, long_nb, long_na, ["wrong.example.com"]))
    put_pair("server-otherca", *make_leaf(oca_key, oca, srv, long_nb, long_na, names))
    put_pair("server-expired", *make_leaf(ca_key, ca, srv, now - 30 * DAY, now - DAY, names))

    hs = host_subject(host_uuid, cluster)
    client_key, client = make_leaf(ca_key, ca, hs, long_nb, long_na)
    put_pair("client", client_key, client)
    rsa_key, rsa_cert = make_leaf(ca_key, ca, hs, long_nb, long_na, key_kind="rsa")
    put_pair("client-rsa", rsa_key, rsa_cert)
    put_pair("client-expired", *make_leaf(ca_key, ca, hs, now - 30 * DAY, now - DAY))
    put_pair("client-3days", *make_leaf(ca_key, ca, hs, now - DAY, now + 3 * DAY))
    put_pair("client-notyet", *make_leaf(ca_key, ca, hs, now + DAY, now + 30 * DAY))
    put_pair("client-otherca", *make_leaf(oca_key, oca, hs, long_nb, long_na))

    mismatch = os.path.join(out, "client-mismatch.key")
    _write(mismatch, _key_pem(_key()), 0o600)
    files["client-mismatch"] = {"cert": files["client"]["cert"], "key": mismatch}

    key_pem, cert_pem, ca_pem = _key_pem(client_key), _cert_pem(client), _cert_pem(ca)
    ident = os.path.join(out, "identity")
    _write(ident, key_pem
           + _fake_ssh_line("ecdsa-sha2-nistp256-cert-v01@openssh.com", f"{host_uuid}.{cluster}")
           + cert_pem
           + b"@cert-authority *." + cluster.encode() + b" " + _fake_ssh_line("ecdsa-sha2-nistp256", "type=host")
           + ca_pem, 0o600)
    ident_plain = os.path.join(out, "identity-plain")
    _write(ident_plain, key_pem + cert_pem + ca_pem, 0o600)
    ident_rsa = os.path.join(out, "identity-rsa")
    _write(ident_rsa, _key_pem(rsa_key) + _cert_pem(rsa_cert) + ca_pem, 0o600)
    files["identity"] = {"path": ident}
    files["identity-plain"] = {"path": ident_plain}
    files["identity-rsa"] = {"path": ident_rsa}

    # Several Host CAs in one file, as `tctl auth sign` writes during a CA
    # rotation: the server's CA is the second one.
    bundle = os.path.join(out, "ca-bundle.crt")
    _write(bundle, _cert_pem(oca) + ca_pem, 0o644)
    files["ca-bundle"] = {"cert": bundle}

    manifest = {"dir": os.path.abspath(out), "cluster": cluster, "host_uuid": host_uuid,
                "server_name": API_DOMAIN, "files": files}
    _write(os.path.join(out, "certs.json"), (json.dumps(manifest, indent=2) + "\n").encode(), 0o644)
    return manifest


def _load_pem(path, kind):
    with open(path, "rb") as f:
        data = f.read()
    if kind == "cert":
        return x509.load_pem_x509_certificate(data)
    return serialization.load_pem_private_key(data, password=None)


def issue_client(out, name, not_after_days, not_before_days=-1, cluster=None, host_uuid=None,
                 key_kind="ec", subject=None):
    """Issues one more client pair <name>.crt/.key in an existing certs.py
    directory, signed by its CA, valid from now+not_before_days to
    now+not_after_days (days may be fractional or negative).  subject: a list
    of (oid, value) replacing the host identity.  Updates certs.json and
    returns the new manifest entry."""
    with open(os.path.join(out, "certs.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    cluster = cluster or manifest["cluster"]
    host_uuid = host_uuid or manifest["host_uuid"]
    ca_key = _load_pem(os.path.join(out, "ca.key"), "key")
    ca = _load_pem(os.path.join(out, "ca.crt"), "cert")
    now = _now()
    key, cert = make_leaf(ca_key, ca, subject or host_subject(host_uuid, cluster),
                          now + datetime.timedelta(days=not_before_days),
                          now + datetime.timedelta(days=not_after_days), key_kind=key_kind)
    kp, cp = os.path.join(out, name + ".key"), os.path.join(out, name + ".crt")
    _write(kp, _key_pem(key), 0o600)
    _write(cp, _cert_pem(cert), 0o644)
    entry = {"cert": cp, "key": kp,
             "not_before": cert.not_valid_before.replace(tzinfo=datetime.timezone.utc).isoformat(),
             "not_after": cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).isoformat()}
    manifest["files"][name] = entry
    _write(os.path.join(out, "certs.json"), (json.dumps(manifest, indent=2) + "\n").encode(), 0o644)
    return entry


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory to write into")
    ap.add_argument("--cluster", default="example.com")
    ap.add_argument("--host-uuid", default=None, help="default: a random UUID")
    ap.add_argument("--extra-client", action="append", default=[], metavar="NAME:DAYS",
                    help="also issue client pair NAME valid for DAYS more days (negative: expired)")
    a = ap.parse_args(argv)
    m = generate(a.out, a.cluster, a.host_uuid)
    for spec in a.extra_client:
        name, _, days = spec.partition(":")
        try:
            issue_client(a.out, name, float(days))
        except ValueError:
            ap.error(f"--extra-client {spec!r}: expected NAME:DAYS")
    print(f"certificates for cluster {m['cluster']} (host {m['host_uuid']}) in {m['dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
