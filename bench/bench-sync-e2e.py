#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench-sync-e2e.py - a real `teleport-unix sync` against the stand-in Auth
server generating USERS users and ROLES roles (tests/fake_auth, --generate-*):
TLS + HTTP/2 + gRPC paging, protobuf decoding, mapping and both snapshots.
Prints wall time of the sync, the CLI's peak RSS and the resulting counts.

Usage: bench/bench-sync-e2e.py BUILDDIR [USERS [ROLES]]   (default 100000 1000)
Exit 0 ok, 2 on failure, 77 when the stand-in server cannot run (no grpcio).
"""

import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

try:
    import helpers  # noqa: E402
except ImportError as e:  # pragma: no cover
    print(f"bench-sync-e2e: skipped ({e})")
    sys.exit(77)


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[4], file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    users = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    roles = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    cli = os.path.join(build, "teleport-unix")
    if not os.access(cli, os.X_OK):
        print(f"bench-sync-e2e: {cli} not built", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tu-bench-e2e-") as tmp:
        try:
            certs = helpers.generate_certs(os.path.join(tmp, "certs"))
            t0 = time.monotonic()
            argv = [helpers.PY, os.path.join(helpers.FAKE_AUTH, "server.py"), "--certs", certs.dir,
                    "--generate-users", str(users), "--generate-roles", str(roles)]
            srv = helpers.Proc(argv, os.path.join(tmp, "srv"), "bench-auth", start_timeout=600).start()
        except helpers.StartError as e:
            print(f"bench-sync-e2e: stand-in Auth server did not start: {e}", file=sys.stderr)
            return 77
        t_gen = time.monotonic() - t0
        try:
            cache = os.path.join(tmp, "cache")
            doc = helpers.build_config(certs, srv.address, cache)
            doc = helpers.deep_merge(doc, {"auth": {"timeouts": {"connect": "5s", "request": "60s"}}})
            cfg = helpers.write_yaml(os.path.join(tmp, "teleport-unix.yaml"), doc)
            # The libtool wrapper execs the real binary: RUSAGE_CHILDREN sees it.
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            before = ru0.ru_maxrss
            t0 = time.monotonic()
            p = subprocess.run([cli, "--insecure-perms", "-c", cfg, "sync"], capture_output=True, text=True,
                               timeout=600)
            wall = time.monotonic() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            rss = ru1.ru_maxrss
            cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        finally:
            srv.stop()
        if p.returncode != 0:
            print(f"bench-sync-e2e: sync failed ({p.returncode}): {p.stderr.strip()}", file=sys.stderr)
            return 2
        print(f"bench-sync-e2e: {users} users, {roles} roles (server generated them in {t_gen:.1f} s)")
        print(f"bench-sync-e2e: teleport-unix sync {wall:.2f} s wall (mostly waiting on the Python server), "
              f"{cpu:.2f} s CPU, peak RSS {max(rss, before) // 1024} MiB")
        print(f"bench-sync-e2e: {p.stdout.strip()}")
        for name in ("accounts.db", "state.db"):
            st = os.stat(os.path.join(cache, name))
            print(f"bench-sync-e2e: {name} {st.st_size / 1e6:.1f} MB, mode {st.st_mode & 0o777:o}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
