#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench-fleet.py - a small fleet of `teleport-unix watch` processes (issue 13
item 5) against one stand-in Auth on loopback (`test` dataset), each with its
own cache directory (one simulated host per process):

  * idle cost per host: RPCs seen by Auth and TCP bytes (ss -ti) per minute
  * change-to-snapshot latency: a user PUT until each host's watch.state shows
    the write (the file getent reads), p50/p99 over hosts x changes
  * Auth restart: the stand-in is killed and restarted on the same port; the
    WatchEvents calls the new one sees, per second (max, spread, share of
    the fleet in the busiest second), with Teleport's jitter and with
    --no-jitter (every host waits the same: the thundering herd)

Usage: bench/bench-fleet.py BUILDDIR [HOSTS]   (default 20; BENCH_FLEET_IDLE seconds idle, 20)
Printed, never asserted.  Exit 0 ok, 2 on failure, 77 without grpcio.
"""

import collections
import json
import os
import re
import signal
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
    print(f"bench-fleet: skipped ({e})")
    sys.exit(77)

WATCH = "/proto.AuthService/WatchEvents"
IDLE = int(os.environ.get("BENCH_FLEET_IDLE", "20"))


def state(cache):
    try:
        with open(os.path.join(cache, "watch.state"), encoding="utf-8") as f:
            return dict(line.split("=", 1) for line in f.read().splitlines())
    except (FileNotFoundError, ValueError):
        return {}


def wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


def tcp_bytes(pids):
    out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True, timeout=10).stdout
    lines = out.splitlines()
    total = 0
    for i, ln in enumerate(lines):
        if any(f"pid={p}," in ln for p in pids) and i + 1 < len(lines):
            for k in ("bytes_sent", "bytes_received"):
                m = re.search(k + r":(\d+)", lines[i + 1])
                total += int(m.group(1)) if m else 0
    return total


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def start_server(certs, tmp, name, spool, port=0):
    argv = [helpers.PY, os.path.join(helpers.FAKE_AUTH, "server.py"), "--certs", certs.dir,
            "--dataset", "test", "--watch-dir", spool, "--workers", "200"]
    if port:
        argv += ["--port", str(port)]
    p = helpers.Proc(argv, os.path.join(tmp, name), name, start_timeout=60)
    p.call_log = os.path.join(tmp, f"{name}.calls.jsonl")
    p.argv += ["--call-log", p.call_log]
    return p.start()


def fleet(build, tmp, certs, hosts, jitter):
    cli = os.path.join(build, ".libs", "teleport-unix")
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(build, ".libs"))
    tag = "jitter" if jitter else "nojitter"
    spool = os.path.join(tmp, f"spool-{tag}")
    os.makedirs(spool)
    srv = start_server(certs, tmp, f"auth-{tag}", spool)
    procs, caches = [], []
    try:
        for i in range(hosts):
            cache = os.path.join(tmp, f"{tag}-host{i}")
            cfg = helpers.write_yaml(os.path.join(tmp, f"{tag}-host{i}.yaml"),
                                     helpers.build_config(certs, srv.address, cache))
            args = [cli, "--insecure-perms", "-c", cfg, "watch"] + ([] if jitter else ["--no-jitter"])
            procs.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            caches.append(cache)
        wait(lambda: all(state(c).get("phase") == "current" for c in caches), 120, "the fleet to be current")
        result = {}
        if jitter:
            time.sleep(1)
            n0 = len(srv.calls())
            b0 = tcp_bytes([p.pid for p in procs])
            time.sleep(IDLE)
            b1 = tcp_bytes([p.pid for p in procs])
            result["idle_calls_per_host_min"] = (len(srv.calls()) - n0) * 60 / IDLE / hosts
            result["idle_bytes_per_host_min"] = (b1 - b0) * 60 / IDLE / hosts
            lat = []
            for k in range(5):
                cmd = {"op": "put", "kind": "user",
                       "txtpb": f'Metadata {{ Name: "fleet{k}" }} Spec {{ Roles: "dev" Traits {{ Values '
                                f'{{ key: "logins" value {{ Values: "fleet{k}" }} }} }} }}'}
                before = [int(state(c).get("last_write", 0)) for c in caches]
                p = os.path.join(spool, f"{k:05d}.json")
                with open(p + ".tmp", "w", encoding="utf-8") as f:
                    json.dump(cmd, f)
                t_send = time.time()
                os.replace(p + ".tmp", p)
                wait(lambda b=before: all(int(state(c).get("last_write", 0)) > b[i]
                                          for i, c in enumerate(caches)), 30, "every host to write")
                lat += [(int(state(c)["last_write"]) / 1e6 - t_send) * 1000 for c in caches]
            result["latency_ms"] = (statistics.median(lat), pct(lat, 99))
        # Auth restart: same port, the new server counts the reconnects.
        port = srv.port
        srv.stop()
        t_down = time.time()
        srv = start_server(certs, tmp, f"auth2-{tag}", spool, port)
        wait(lambda: all(state(c).get("phase") == "current" and int(state(c).get("relists", 0)) >= 2
                         for c in caches), 120, "the fleet to reconnect")
        times = [c["t"] - t_down for c in srv.calls(WATCH)]
        per_sec = collections.Counter(int(t) for t in times)
        result["reconnect_spread_s"] = max(times) - min(times)
        result["reconnect_max_per_s"] = max(per_sec.values())
        result["reconnect_first_last"] = (min(times), max(times))
        return result
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        srv.stop()


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    build = os.path.abspath(argv[1])
    hosts = int(argv[2]) if len(argv) > 2 else 20
    with tempfile.TemporaryDirectory(prefix="tu-bench-fleet-") as tmp:
        certs = helpers.generate_certs(os.path.join(tmp, "certs"))
        try:
            j = fleet(build, tmp, certs, hosts, True)
            n = fleet(build, tmp, certs, hosts, False)
        except RuntimeError as e:
            print(f"bench-fleet: {e}", file=sys.stderr)
            return 2
    print(f"-- {hosts} watchers (one process per simulated host), `test` dataset")
    print(f"idle per host: {j['idle_calls_per_host_min']:.2f} RPCs/min, "
          f"{j['idle_bytes_per_host_min']:.0f} bytes/min (goal < 1 KB/min)")
    print(f"change-to-snapshot latency: p50 {j['latency_ms'][0]:.1f} ms, p99 {j['latency_ms'][1]:.1f} ms")
    for name, r in (("with jitter", j), ("without jitter", n)):
        print(f"after an Auth restart, {name}: reconnects from {r['reconnect_first_last'][0]:.1f} s to "
              f"{r['reconnect_first_last'][1]:.1f} s after the kill (spread {r['reconnect_spread_s']:.1f} s), "
              f"busiest second {r['reconnect_max_per_s']} of {hosts} "
              f"({100 * r['reconnect_max_per_s'] / hosts:.0f}%; goal: spread >= 5 s, <= 33%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
