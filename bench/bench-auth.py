#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench-auth.py - the online path, timed end to end against the stand-in Auth
server on loopback (real mTLS + HTTP/2 + gRPC, a fresh TLS handshake each run):

  * `teleport-unix ping`          p50/p90 of RUNS runs   (goal <= 20 ms p50)
  * `teleport-unix check U L`     p50/p90                (GetUser + roles + locks + auth preference)
  * the same `check` through the stand-in Proxy's web port (TLS routing, issue 12),
    next to direct (goal <= 1.3x the direct median)
  * pamtester acct_mgmt           p50/p90 through pam_teleport.so (goal <= 25 ms p50)
  * `teleport-unix ssh-principals` offline (sshd's AuthorizedPrincipalsCommand, once per
    OpenSSH certificate login), interleaved with `check --offline`, `--version` and a bare
    /bin/true: p50/p99 wall and CPU, and what it adds over /bin/true (goal <= 5 ms p50)
  * `teleport-unix sync` of USERS generated users: wall time and the CLI's peak
    RSS (the "list 10,000 users" goal: <= 1 s, <= 100 MB; sync also maps and
    writes both snapshots, so it is an upper bound for the listing alone).

Usage: bench/bench-auth.py BUILDDIR [RUNS [USERS]]   (default 30 10000)
BENCH_AUTH_ONLY=ssh-principals runs the ssh-principals figures alone.
Printed, never asserted.  Exit 0 ok, 2 on failure, 77 without grpcio.
"""

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

try:
    import helpers  # noqa: E402
except ImportError as e:  # pragma: no cover
    print(f"bench-auth: skipped ({e})")
    sys.exit(77)


def timed(argv, env=None, runs=30, ok=(0,)):
    samples = []
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        samples.append((time.monotonic() - t0) * 1000)
        if p.returncode not in ok:
            raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[:300]}")
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


def real_binary(build, name):
    """The libtool wrapper script costs a shell start; time the real binary."""
    p = os.path.join(build, ".libs", name)
    return p if os.access(p, os.X_OK) else os.path.join(build, name)


def timed_interleaved(cmds, env, runs):
    """{name: argv} run round-robin RUNS times (so load changes hit every command alike):
    {name: (wall p50, wall p99, cpu p50)} in ms; cpu = the child's user + system time."""
    wall = {k: [] for k in cmds}
    cpu = {k: [] for k in cmds}
    for _ in range(runs):
        for k, (argv, ok) in cmds.items():
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
            wall[k].append((time.monotonic() - t0) * 1000)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[k].append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
            if p.returncode not in ok:
                raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[:300]}")
    out = {}
    for k in cmds:
        w = sorted(wall[k])
        out[k] = (statistics.median(w), w[max(0, int(len(w) * 0.99) - 1)], statistics.median(cpu[k]))
    return out


def ssh_certificate_path(tmp, certs, cli, env, runs):
    """What an OpenSSH login with a Teleport certificate adds (issue 10): sshd runs
    `teleport-unix ssh-principals %u %t %k` once per login.  Offline (Auth's port closed, the
    cache synced): connection refused, then the decision from the snapshot, for a certificate
    signed by the cluster's user CA that is allowed (the whole path: parse, CA key, RBAC; the
    signature is sshd's, and the host identity comes from host.identity: no OpenSSL, issue 10).
    Method: the command, `check --offline` and a bare /bin/true (what any
    AuthorizedPrincipalsCommand costs sshd: fork, exec, wait) run interleaved; "added" is the
    command's p50 minus /bin/true's.  The PAM session check replaces the account check for
    such logins, so it adds nothing of its own."""
    import shutil  # noqa: PLC0415
    if not shutil.which("ssh-keygen"):
        print("ssh-principals: skipped (no ssh-keygen)")
        return
    d = os.path.join(tmp, "sshca")
    os.makedirs(d)
    for k in ("ca", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, k)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", os.path.join(d, "ca"), "-I", "frank", "-n", "frank",
                    "-V", "-5m:+1h", os.path.join(d, "user.pub")], check=True)
    with open(os.path.join(d, "user-cert.pub"), encoding="ascii") as f:
        typ, b64 = f.read().split()[:2]
    srv = helpers.start_auth_server(certs.dir, os.path.join(tmp, "srv-ssh"), dataset="test",
                                    ssh_user_ca=os.path.join(d, "ca.pub"))
    try:
        doc = helpers.build_config(certs, srv.address, os.path.join(tmp, "cache-ssh"))
        doc["pam"]["trust_ssh_cert"] = True
        cfg = helpers.write_yaml(os.path.join(tmp, "tu-ssh.yaml"), doc)
        subprocess.run([cli, "--insecure-perms", "-c", cfg, "sync"], capture_output=True, env=env, check=True)
    finally:
        srv.stop()
    doc["auth"]["addresses"] = ["127.0.0.1:1"]  # closed: the decision is offline
    cfg = helpers.write_yaml(os.path.join(tmp, "tu-ssh-off.yaml"), doc)
    base = [cli, "--insecure-perms", "-c", cfg]
    p = subprocess.run(base + ["ssh-principals", "frank", typ, b64], capture_output=True, text=True, env=env)
    if p.returncode != 0 or p.stdout != "frank\n":
        raise RuntimeError(f"ssh-principals did not allow: {p.returncode} {p.stderr.strip()[:300]}")
    dbg = subprocess.run(base + ["ssh-principals", "frank", typ, b64], capture_output=True, text=True,
                         env=dict(env, LD_DEBUG="files"))
    crypto = [ln for ln in dbg.stderr.splitlines() if "libcrypto" in ln and "file=" in ln]
    print(f"  ssh-principals offline loads libcrypto: {'yes' if crypto else 'no'}")
    res = timed_interleaved({
        "true": (["/bin/true"], (0,)),
        "version": (base[:1] + ["--version"], (0,)),
        "check": (base + ["check", "--offline", "frank", "frank"], (0, 1)),
        "sshp": (base + ["ssh-principals", "frank", typ, b64], (0,)),
    }, env, max(runs, 40))
    for k, what in (("true", "/bin/true (fork, exec, wait)"), ("version", "teleport-unix --version"),
                    ("check", "teleport-unix check --offline"),
                    ("sshp", "teleport-unix ssh-principals, offline")):
        w50, w99, c50 = res[k]
        print(f"  {what}: p50 {w50:.1f} ms, p99 {w99:.1f} ms, CPU p50 {c50:.1f} ms")
    added = res["sshp"][0] - res["true"][0]
    added_cpu = res["sshp"][2] - res["true"][2]
    print(f"ssh-principals (AuthorizedPrincipalsCommand, offline): adds {added:.1f} ms p50 "
          f"({added_cpu:.1f} ms CPU) over a bare command (goal: <= 5 ms p50)")


def web_pki(d):
    """A throwaway web CA + the stand-in Proxy's certificate for 127.0.0.1."""
    import datetime  # noqa: PLC0415
    import ipaddress  # noqa: PLC0415
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415
    os.makedirs(d, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench web CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {n: os.path.join(d, n) for n in ("ca.pem", "web.pem", "web.key")}
    pem = serialization.Encoding.PEM
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["web.pem"], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths["web.key"], "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def proxy_path(tmp, certs, srv, cli, env, runs, direct_cfg):
    """`check` through the stand-in Proxy's web port (TLS routing: ALPN teleport-auth@,
    forwarded byte for byte to the same Auth), next to direct (issue 12: goal <= 1.3x the
    direct median).  The first run discovers (/webapi/find) and remembers the path in
    <cache.dir>/dial.memo; the timed runs go straight to it, as a PAM login does."""
    try:
        pki = web_pki(os.path.join(tmp, "web-pki"))
    except ImportError as e:
        print(f"check through the Proxy: skipped ({e})")
        return
    proxy = helpers.start_proxy(os.path.join(tmp, "proxy"), srv.address, pki["web.pem"], pki["web.key"])
    try:
        doc = helpers.build_config(certs, srv.address, os.path.join(tmp, "cache-proxy"))
        del doc["auth"]["addresses"]
        doc["auth"]["proxy"] = proxy.address
        doc["auth"]["proxy_ca"] = pki["ca.pem"]
        cfg = helpers.write_yaml(os.path.join(tmp, "tu-proxy.yaml"), doc)
        base = [cli, "--insecure-perms", "-c", cfg]
        t0 = time.monotonic()
        p = subprocess.run(base + ["ping"], capture_output=True, text=True, env=env, timeout=60)
        first = (time.monotonic() - t0) * 1000
        if p.returncode != 0 or "proxy tls-routing" not in p.stdout:
            print(f"check through the Proxy: ping failed: {p.stderr.strip()[:300]}")
            return
        # Interleaved with direct runs, so the load of a shared machine weighs on both alike.
        dbase = [cli, "--insecure-perms", "-c", direct_cfg]
        ds, ps = [], []
        for _ in range(runs):
            ds.append(timed(dbase + ["check", "alice@example.com", "alice"], env, 1, ok=(0, 1))[0])
            ps.append(timed(base + ["check", "alice@example.com", "alice"], env, 1, ok=(0, 1))[0])
        d50, p50 = statistics.median(ds), statistics.median(ps)
        p90 = sorted(ps)[int(len(ps) * 0.9) - 1]
        print(f"check through the Proxy (TLS routing, path remembered, whole process): p50 {p50:.1f} ms, "
              f"p90 {p90:.1f} ms = {p50 / d50:.2f}x direct p50 {d50:.1f} ms of the same interleaved runs "
              f"(goal <= 1.3x); first run with discovery (find + ping): {first:.1f} ms")
    finally:
        proxy.stop()


def upgrade_path(tmp, certs, srv, cli, env, runs, direct_p50):
    """`check` through the ALPN connection upgrade (issue 12 item 2): TLS to a stand-in
    L7 Proxy (tests/fake_auth/l7_proxy.py, Python, a thread per connection), the
    WebSocket upgrade, and the same mTLS inside, against the same Auth (goal: at most
    1.3x the direct median; the stand-in's own Python relay is part of the figure)."""
    import l7_proxy  # tests/fake_auth  # noqa: PLC0415
    web = l7_proxy.generate_web_certs(os.path.join(tmp, "web"))
    proxy = helpers.Proc([helpers.PY, os.path.join(helpers.FAKE_AUTH, "l7_proxy.py"), "--cert", web["cert"],
                          "--key", web["key"], "--auth", srv.address], os.path.join(tmp, "l7"), "bench-l7").start()
    try:
        doc = helpers.build_config(certs, proxy.address, os.path.join(tmp, "cache-l7"))
        doc["auth"].update({"proxy_conn_upgrade": "always", "proxy_ca": web["ca"]})
        cfg = helpers.write_yaml(os.path.join(tmp, "tu-l7.yaml"), doc)
        p50, p90 = timed([cli, "--insecure-perms", "-c", cfg, "check", "alice@example.com", "alice"], env, runs,
                         ok=(0, 1))
        print(f"check through the connection upgrade (L7 stand-in, whole process): p50 {p50:.1f} ms, "
              f"p90 {p90:.1f} ms = {p50 / direct_p50:.2f}x direct (goal <= 1.3x)")
    finally:
        proxy.stop()


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    users = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    cli = real_binary(build, "teleport-unix")
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(build, ".libs"))
    with tempfile.TemporaryDirectory(prefix="tu-bench-auth-") as tmp:
        certs = helpers.generate_certs(os.path.join(tmp, "certs"))
        if os.environ.get("BENCH_AUTH_ONLY") == "ssh-principals":  # the issue 10 figures alone
            ssh_certificate_path(tmp, certs, cli, env, runs)
            return 0
        try:
            srv = helpers.start_auth_server(certs.dir, os.path.join(tmp, "srv"), dataset="test")
        except helpers.StartError as e:
            print(f"bench-auth: stand-in Auth server did not start: {e}", file=sys.stderr)
            return 77
        try:
            cfg = helpers.write_yaml(os.path.join(tmp, "tu.yaml"),
                                     helpers.build_config(certs, srv.address, os.path.join(tmp, "cache")))
            base = [cli, "--insecure-perms", "-c", cfg]
            p50, p90 = timed(base + ["ping"], env, runs)
            print(f"ping (fresh TLS handshake, whole process): p50 {p50:.1f} ms, p90 {p90:.1f} ms (goal <= 20 ms p50)")
            p50, p90 = timed(base + ["check", "alice@example.com", "alice"], env, runs, ok=(0, 1))
            print(f"check (GetUser + roles + locks + auth preference, whole process): p50 {p50:.1f} ms, p90 {p90:.1f} ms")
            upgrade_path(tmp, certs, srv, cli, env, runs, p50)
            svc = os.path.join(tmp, "pam.d")
            helpers.write_pam_service(svc, "bench", [
                f"account [success=ok user_unknown=ignore default=bad] "
                f"{helpers.module_path(build, 'pam_teleport.so')} config={cfg}",
                "account required pam_permit.so"])
            helpers.write_pam_service(svc, "other", ["account required pam_deny.so"])
            penv = helpers.pam_wrapper_env(svc, base_env=env)
            p50, p90 = timed(["pamtester", "bench", "alice", "acct_mgmt"], penv, runs, ok=(0, 1))
            print(f"pamtester acct_mgmt through pam_teleport.so: p50 {p50:.1f} ms, p90 {p90:.1f} ms "
                  f"(goal <= 25 ms p50)")
            proxy_path(tmp, certs, srv, cli, env, runs, cfg)
        finally:
            srv.stop()
        ssh_certificate_path(tmp, certs, cli, env, runs)

        srv = helpers.Proc([helpers.PY, os.path.join(helpers.FAKE_AUTH, "server.py"), "--certs", certs.dir,
                            "--generate-users", str(users), "--generate-roles", "100"],
                           os.path.join(tmp, "srv-big"), "bench-auth-big", start_timeout=600).start()
        try:
            cfg = helpers.write_yaml(os.path.join(tmp, "tu-big.yaml"), helpers.deep_merge(
                helpers.build_config(certs, srv.address, os.path.join(tmp, "cache-big")),
                {"auth": {"timeouts": {"connect": "5s", "request": "60s"}}}))
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            p = subprocess.run([cli, "--insecure-perms", "-c", cfg, "sync"], capture_output=True, text=True,
                               env=env, timeout=600)
            wall = time.monotonic() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
        finally:
            srv.stop()
        if p.returncode != 0:
            print(f"bench-auth: sync failed: {p.stderr.strip()}", file=sys.stderr)
            return 2
        print(f"sync of {users} users + 100 roles (list, map, write): {wall:.2f} s wall "
              f"(includes the Python server's encoding), {cpu:.2f} s client CPU, "
              f"peak RSS {ru1.ru_maxrss // 1024} MiB (goal: listing <= 1 s, <= 100 MB) -> {p.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
