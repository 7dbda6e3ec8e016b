# SPDX-License-Identifier: Apache-2.0
"""test_ssh_principals.py - `teleport-unix ssh-principals LOGIN CERT-TYPE CERT`, sshd's
AuthorizedPrincipalsCommand (issue 10 B), run the way sshd runs it (%u %t %k), against the
stand-in Auth and the `test` dataset: prints LOGIN when the certificate's Teleport user may log
in as it, nothing otherwise; exit 0/1/2; bad certificates refused with a clear line; online
within the budget, else the cache.  The real-sshd test is test_sshd.py."""

import base64
import os
import shutil
import struct
import subprocess

import pytest

import helpers

pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen (openssh-client) is missing")

CERT_TYPE = "ssh-ed25519-cert-v01@openssh.com"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("sshca"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "ca")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "user")], check=True)
    return d


def cert_b64(ca, key_id, principals, extensions=(), n=[0]):  # noqa: B006 (a counter)
    n[0] += 1
    pub = os.path.join(ca, f"user{n[0]}.pub")
    shutil.copy(os.path.join(ca, "user.pub"), pub)
    argv = ["ssh-keygen", "-q", "-s", os.path.join(ca, "ca"), "-I", key_id, "-n", ",".join(principals),
            "-V", "-5m:+1h"]
    for e in extensions:
        argv += ["-O", f"extension:{e}"]
    subprocess.run(argv + [pub], check=True)
    with open(pub[:-4] + "-cert.pub", encoding="ascii") as f:
        typ, b64 = f.read().split()[:2]
    assert typ == CERT_TYPE
    return b64


@pytest.fixture
def setup(auth_server, write_config, ca):
    srv = auth_server(ssh_user_ca=os.path.join(ca, "ca.pub"))
    return srv, write_config(pam={"trust_ssh_cert": True})


def test_allowed_prints_login(setup, run_cli, ca):
    r = run_cli("ssh-principals", "frank", CERT_TYPE, cert_b64(ca, "frank", ["frank"]))
    assert r.rc == 0 and r.stdout == "frank\n", r
    assert "Teleport user 'frank': allow" in r.stderr, r


def test_denied_root_prints_nothing(setup, run_cli, ca):
    r = run_cli("ssh-principals", "root", CERT_TYPE, cert_b64(ca, "frank", ["frank", "root"]))
    assert r.rc == 1 and r.stdout == "", r
    assert "deny" in r.stderr and "root" in r.stderr, r


def test_locked_and_unknown_users(setup, run_cli, ca):
    r = run_cli("ssh-principals", "bob", CERT_TYPE, cert_b64(ca, "bob", ["bob"]))
    assert r.rc == 1 and r.stdout == "" and "locked" in r.stderr, r
    r = run_cli("ssh-principals", "frank", CERT_TYPE, cert_b64(ca, "nobody-here", ["frank"]))
    assert r.rc == 1 and r.stdout == "", r
    assert "does not exist" in r.stderr or "names no Teleport user" in r.stderr, r


def test_certificate_from_another_ca_is_no_identity(setup, run_cli, tmp_path):
    """A CA that sshd may trust but that is not Teleport's user CA names nobody (issue 14 F3),
    even a user who is allowed the login: nothing printed."""
    other = str(tmp_path / "other")
    os.makedirs(other)
    for k in ("ca", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(other, k)], check=True)
    r = run_cli("ssh-principals", "frank", CERT_TYPE, cert_b64(other, "frank", ["frank"]))
    assert r.rc == 1 and r.stdout == "", r
    assert "carries no Teleport identity" in r.stderr, r


def _sshstr(b):
    return struct.pack(">I", len(b)) + b


# A user certificate whose extensions section holds one name claiming 200 bytes (issue 10:
# sshd would never pass it, but the parser must refuse it with a clear line, never crash).
BAD_EXT = base64.b64encode(
    _sshstr(CERT_TYPE.encode()) + _sshstr(b"n" * 32) + _sshstr(b"k" * 32) + struct.pack(">QI", 1, 1)
    + _sshstr(b"frank") + _sshstr(_sshstr(b"frank")) + struct.pack(">QQ", 0, 2**64 - 1) + _sshstr(b"")
    + _sshstr(struct.pack(">I", 200) + b"permit-pty") + _sshstr(b"") + _sshstr(b"ca") + _sshstr(b"sig")).decode()


@pytest.mark.parametrize("typ,blob,why", [
    ("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIA==", "not an OpenSSH certificate"),
    (CERT_TYPE, BAD_EXT, "bad extensions in the certificate"),
    (CERT_TYPE, "!!!not base64!!!", "unreadable certificate"),
    (CERT_TYPE, "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t", "unreadable certificate"),  # truncated
    (CERT_TYPE, "A" * (64 * 1024 + 4), "over 65536 bytes"),
])
def test_bad_certificates_refused(setup, run_cli, typ, blob, why):
    r = run_cli("ssh-principals", "frank", typ, blob)
    assert r.rc == 1 and r.stdout == "", r
    assert why in r.stderr, r


def test_usage_and_trust_off(auth_server, write_config, run_cli, ca, tmp_path):
    auth_server()
    write_config(pam={"trust_ssh_cert": True})
    r = run_cli("ssh-principals", "frank", CERT_TYPE)
    assert r.rc == 2 and r.stdout == "" and "usage" in r.stderr, r
    write_config(pam={"trust_ssh_cert": False})
    r = run_cli("ssh-principals", "frank", CERT_TYPE, cert_b64(ca, "frank", ["frank"]))
    assert r.rc == 2 and r.stdout == "" and "trust_ssh_cert" in r.stderr, r
    r = run_cli("ssh-principals", "frank", CERT_TYPE, cert_b64(ca, "frank", ["frank"]),
                config=str(tmp_path / "missing.yaml"))
    assert r.rc == 2 and r.stdout == "" and "configuration error" in r.stderr and "missing.yaml" in r.stderr, r


def test_offline_from_cache_within_budget(auth_server, write_config, run_cli, ca, certs, tmp_path):
    """Auth stops answering: the decision comes from the cache, within connect + request."""
    auth_server(ssh_user_ca=os.path.join(ca, "ca.pub"))
    write_config(pam={"trust_ssh_cert": True})
    assert run_cli("sync").rc == 0
    hole = helpers.start_blackhole(certs.dir, str(tmp_path / "hole"))
    write_config(addresses=hole.address, pam={"trust_ssh_cert": True, "offline": "cached"})
    b64 = cert_b64(ca, "frank", ["frank"])
    r = run_cli("ssh-principals", "frank", CERT_TYPE, b64, timeout=30)
    assert r.rc == 0 and r.stdout == "frank\n", r
    assert "offline" in r.stderr, r
    assert r.elapsed < (1 + 3) * helpers.SLOW + 3, r.elapsed
    write_config(addresses=hole.address, pam={"trust_ssh_cert": True, "offline": "deny"})
    r = run_cli("ssh-principals", "frank", CERT_TYPE, b64, timeout=30)
    assert r.rc == 2 and r.stdout == "", r
    assert r.elapsed < (1 + 3) * helpers.SLOW + 3, r.elapsed
    hole.stop()


def _loaded(stderr):
    """The shared objects the dynamic linker loaded, from LD_DEBUG=files output."""
    return [ln for ln in stderr.splitlines() if "file=" in ln and ("needed by" in ln or "dynamically loaded" in ln)]


@pytest.mark.skipif(os.environ.get("TU_VALGRIND") == "1", reason="LD_DEBUG under valgrind traces valgrind")
def test_offline_decision_loads_no_libcrypto(auth_server, write_config, run_cli, ca, cache_dir, certs, tmp_path):
    """Issue 10: an offline ssh-principals loads no OpenSSL at all: sshd verified %k's
    signature, and the host identity comes from host.identity (written by sync, 0600, tied to
    the certificate file's stamp).  A changed certificate file (new ctime) is read again,
    which needs the crypto module; the decision stays the same."""
    auth_server(ssh_user_ca=os.path.join(ca, "ca.pub"))
    # a private copy of the key pair: its stamp is changed below
    own = {}
    for what, src in (("cert", certs.cert()), ("key", certs.key())):
        own[what] = str(tmp_path / os.path.basename(src))
        shutil.copy(src, own[what])
        os.chmod(own[what], 0o600)
    cred = {"credentials": {"key_pair": {"cert": own["cert"], "key": own["key"], "ca": certs.ca}}}
    write_config(auth=cred, pam={"trust_ssh_cert": True})
    assert run_cli("sync").rc == 0
    rec = os.path.join(cache_dir, "host.identity")
    st = os.stat(rec)
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    with open(rec, encoding="ascii") as f:
        text = f.read()
    assert "host_cn=" in text and "host_cert_stamp=" in text, text
    write_config(addresses="127.0.0.1:1", auth=cred, pam={"trust_ssh_cert": True})
    b64 = cert_b64(ca, "frank", ["frank"])
    r = run_cli("ssh-principals", "frank", CERT_TYPE, b64, env={"LD_DEBUG": "files"})
    assert r.rc == 0 and r.stdout == "frank\n", r
    libs = _loaded(r.stderr)
    assert any("libteleport-unix" in ln for ln in libs), libs  # the trace works
    assert not [ln for ln in libs if "libcrypto" in ln or "teleport-unix-crypto" in ln], libs
    # the same certificate through SSH_AUTH_INFO_0's reading (`check --ssh-cert`, as PAM):
    # the signature is checked with OpenSSL, so the module is loaded
    cert_file = os.path.join(ca, "frank-cert.pub")
    with open(cert_file, "w", encoding="ascii") as f:
        f.write(f"{CERT_TYPE} {b64}\n")
    r = run_cli("check", "--offline", "--ssh-cert", cert_file, "frank", env={"LD_DEBUG": "files"})
    assert r.rc == 0, r
    assert [ln for ln in _loaded(r.stderr) if "teleport-unix-crypto" in ln], r.stderr[-2000:]
    # the certificate file changed since the record: it is parsed again (crypto loaded), same answer
    os.utime(own["cert"])
    r = run_cli("ssh-principals", "frank", CERT_TYPE, b64, env={"LD_DEBUG": "files"})
    assert r.rc == 0 and r.stdout == "frank\n", r
    assert [ln for ln in _loaded(r.stderr) if "teleport-unix-crypto" in ln], r.stderr[-2000:]


@pytest.mark.skipif(os.environ.get("TU_VALGRIND") == "1", reason="runs the binary from a copied library directory")
def test_missing_crypto_module(auth_server, write_config, run_cli, ca, builddir, tmp_path):
    """The core without teleport-unix-crypto.so beside it: an offline ssh-principals still
    decides (no OpenSSL needed), and what needs OpenSSL fails closed with a line naming the
    file (as a missing online transport does)."""
    auth_server(ssh_user_ca=os.path.join(ca, "ca.pub"))
    cfg = write_config(pam={"trust_ssh_cert": True})
    assert run_cli("sync").rc == 0
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(os.path.join(builddir, ".libs", "libteleport-unix.so.0"), lib / "libteleport-unix.so.0")
    binary = os.path.join(builddir, ".libs", "teleport-unix")
    env = dict(os.environ, LD_LIBRARY_PATH=str(lib))
    env.pop("TELEPORT_UNIX_CONFIG", None)
    off = write_config(addresses="127.0.0.1:1", pam={"trust_ssh_cert": True}, name="off.yaml")
    b64 = cert_b64(ca, "frank", ["frank"])
    r = helpers.run([binary, "--insecure-perms", "-c", off, "ssh-principals", "frank", CERT_TYPE, b64],
                    env=env, timeout=20)
    assert r.rc == 0 and r.stdout == "frank\n", r
    r = helpers.run([binary, "--insecure-perms", "-c", cfg, "ping"], env=env, timeout=20)
    assert r.rc == 2, r
    assert "cannot load the crypto module" in r.stderr and "teleport-unix-crypto.so" in r.stderr, r


@pytest.mark.skipif(os.environ.get("TU_VALGRIND") == "1", reason="LD_DEBUG under valgrind traces valgrind")
def test_offline_identity_file_loads_no_libcrypto(auth_server, write_config, run_cli, ca, certs, tmp_path):
    """The same with an identity file that carries a real SSH certificate line (as tctl writes
    it): that line is parsed for its validity only, its signature is not ours to judge."""
    auth_server(ssh_user_ca=os.path.join(ca, "ca.pub"))
    ident = str(tmp_path / "identity")
    with open(certs.identity("identity-plain"), encoding="ascii") as f:
        text = f.read()
    with open(ident, "w", encoding="ascii") as f:
        f.write(text + f"{CERT_TYPE} {cert_b64(ca, 'web-1', ['web-1'])} host\n")
    os.chmod(ident, 0o600)
    cred = {"credentials": {"identity_file": ident, "key_pair": None}}
    write_config(auth=cred, pam={"trust_ssh_cert": True})
    assert run_cli("sync").rc == 0
    write_config(addresses="127.0.0.1:1", auth=cred, pam={"trust_ssh_cert": True})
    r = run_cli("ssh-principals", "frank", CERT_TYPE, cert_b64(ca, "frank", ["frank"]), env={"LD_DEBUG": "files"})
    assert r.rc == 0 and r.stdout == "frank\n", r
    libs = _loaded(r.stderr)
    assert not [ln for ln in libs if "libcrypto" in ln or "teleport-unix-crypto" in ln], libs
