# SPDX-License-Identifier: Apache-2.0
"""tsh_profile.py - writes a `~/.tsh`-style profile directory as `tsh login`
leaves it (PROXY.md §6, facts read from Teleport's api/utils/keypaths and
api/profile), from the per-run certificates of tests/fake_auth/certs.py.

  <dir>/current-profile                      "<proxy host>\\n"
  <dir>/<proxy host>.yaml                    web_proxy_addr, user, cluster, ... (+ keys we ignore)
  <dir>/known_hosts                          @cert-authority line of the SSH host CA
  <dir>/keys/<proxy host>/
      v17 layout: <user>.crt + <user>.key (TLS), <user> + <user>.pub (a separate SSH key)
      v16 layout: <user>-x509.pem (TLS) + <user> (the one key for TLS and SSH) + <user>.pub
      cas/<cluster>.pem                      the Host CA (legacy: certs.pem)
      <user>-ssh/<cluster>-cert.pub          the SSH user certificate (ssh-keygen -s)

make_profile(...) returns a dict of the paths.  Directories 0700, keys 0600,
the rest 0644, like tsh.
"""

import os
import shutil
import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def _write(path, data, mode):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


def _ssh_ca(workdir):
    key = os.path.join(workdir, "ssh-ca")
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "host-ca", "-f", key],
                       check=True, capture_output=True, timeout=60)
    return key


def _sign(ca_key, pub_path, user, validity):
    subprocess.run(["ssh-keygen", "-q", "-s", ca_key, "-I", user, "-n", user, "-V", validity, pub_path],
                   check=True, capture_output=True, timeout=60)
    cert = pub_path[:-len(".pub")] + "-cert.pub"
    with open(cert, encoding="ascii") as f:
        data = f.read()
    os.unlink(cert)
    return data


def make_profile(dest, certs, client="client", layout="v17", proxy="proxy.example.test:443",
                 user="alice", cluster="example.com", current=True, ssh_validity="-5m:+1h",
                 legacy_cas=False, extra_yaml=""):
    """Writes a tsh profile into dest (created) for the certs pair `client`."""
    host = proxy.rsplit(":", 1)[0].strip("[]") if ":" in proxy else proxy
    work = os.path.join(os.path.dirname(os.path.abspath(dest)), ".tsh-work")
    os.makedirs(work, exist_ok=True)
    os.makedirs(dest, mode=0o700, exist_ok=True)
    os.chmod(dest, 0o700)
    keydir = os.path.join(dest, "keys", host)
    with open(certs.cert(client), "rb") as f:
        tls_cert = f.read()
    with open(certs.key(client), "rb") as f:
        tls_key = f.read()
    with open(certs.ca, "rb") as f:
        ca = f.read()
    p = {"dir": dest, "keydir": keydir, "host": host}

    if layout == "v17":
        p["cert"], p["key"] = os.path.join(keydir, user + ".crt"), os.path.join(keydir, user + ".key")
        _write(p["cert"], tls_cert, 0o644)
        _write(p["key"], tls_key, 0o600)
        ssh_key = ec.generate_private_key(ec.SECP256R1())
        ssh_pem = ssh_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        ssh_pub = ssh_key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                    serialization.PublicFormat.OpenSSH) + b"\n"
    else:
        p["cert"], p["key"] = os.path.join(keydir, user + "-x509.pem"), os.path.join(keydir, user)
        _write(p["cert"], tls_cert, 0o644)
        ssh_pem = tls_key
        key = serialization.load_pem_private_key(tls_key, password=None)
        ssh_pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH) + b"\n"
    p["ssh_key"] = os.path.join(keydir, user)
    _write(p["ssh_key"], ssh_pem, 0o600)
    _write(os.path.join(keydir, user + ".pub"), ssh_pub, 0o644)

    if legacy_cas:
        p["cas"] = os.path.join(keydir, "certs.pem")
    else:
        p["cas"] = os.path.join(keydir, "cas", cluster + ".pem")
    _write(p["cas"], ca, 0o644)
    os.chmod(os.path.dirname(p["cas"]), 0o700)

    ca_key = _ssh_ca(work)
    pub = os.path.join(work, f"{user}-{layout}.pub")
    _write(pub, ssh_pub, 0o644)
    p["ssh_cert"] = os.path.join(keydir, f"{user}-ssh", f"{cluster}-cert.pub")
    p["ssh_cert_text"] = _sign(ca_key, pub, user, ssh_validity)
    _write(p["ssh_cert"], p["ssh_cert_text"], 0o644)
    os.chmod(os.path.dirname(p["ssh_cert"]), 0o700)
    with open(ca_key + ".pub", encoding="ascii") as f:
        ca_pub = f.read().split()
    p["known_hosts_line"] = f"@cert-authority {host},{cluster},*.{cluster} {ca_pub[0]} {ca_pub[1]} type=host\n"
    _write(os.path.join(dest, "known_hosts"), "proxy.example.test ssh-ed25519 AAAAnotacert\n" +
           p["known_hosts_line"], 0o644)

    p["yaml"] = os.path.join(dest, host + ".yaml")
    _write(p["yaml"], f"""web_proxy_addr: {proxy}
ssh_proxy_addr: {host}:3023
user: {user}
cluster: {cluster}
auth_connector: local
dynamic_forward_ports: []
tls_routing_enabled: true
tls_routing_conn_upgrade_required: false
load_all_cas: false
mfa_mode: auto
private_key_policy: none
sso_host: ""
dir: ""
missingclusterdetails: false
{extra_yaml}""", 0o644)
    if current:
        _write(os.path.join(dest, "current-profile"), host + "\n", 0o644)
    shutil.rmtree(os.path.join(keydir, "unused"), ignore_errors=True)
    return p
