#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench-watch.py - `teleport-unix watch` (issue 13) against the stand-in Auth
on loopback, for each size in USERS (generated users, 100 roles):

  * time from start to "current" (INIT, one full list, both snapshots written)
  * change-to-`passwd` latency p50/p99: a user PUT on the stream until
    `teleport-unix passwd LOGIN` (the same code and file as getent) finds it,
    the stand-in's spool pickup (<= 5 ms) included
  * cost of applying one event: the watcher's own "write_duration" (the
    accounts mapped again through the memo, state.db and accounts.delta or
    accounts.db written under the lock), p50/max, with what it wrote
    (write_kind, bytes) and how many users it mapped again
  * idle cost for IDLE seconds: RPCs seen by Auth and TCP bytes on the
    watcher's connection (ss -ti), per minute
  * a PAM login decision in process (bench-pam-decide: configuration, watch
    state, snapshot, decision), median, while the watch is current; then the
    same with the watcher stopped (online: dials Auth)

Usage: bench/bench-watch.py BUILDDIR [USERS...]   (default 1000 10000)
Printed, never asserted.  Exit 0 ok, 2 on failure, 77 without grpcio.
"""

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
    print(f"bench-watch: skipped ({e})")
    sys.exit(77)

IDLE = int(os.environ.get("BENCH_WATCH_IDLE", "20"))
EVENTS = int(os.environ.get("BENCH_WATCH_EVENTS", "20"))
# BENCH_WATCH_PERF=DIR: record the watcher with `perf record -g` while it applies the user events
# (DIR/perf-USERS.data; read with `perf report -i`), for the profile split in docs/PERFORMANCE.md.
PERF = os.environ.get("BENCH_WATCH_PERF")
# BENCH_WATCH_FULL=1: the watcher runs with --full-writes (every write maps all users, encodes
# every record and rewrites both files: the cost before the incremental writes), for A/B runs.
FULL = os.environ.get("BENCH_WATCH_FULL") == "1"


def real_binary(build, name):
    p = os.path.join(build, ".libs", name)
    return p if os.access(p, os.X_OK) else os.path.join(build, name)


def state(cache):
    try:
        with open(os.path.join(cache, "watch.state"), encoding="utf-8") as f:
            return dict(line.split("=", 1) for line in f.read().splitlines())
    except FileNotFoundError:
        return {}


def wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.002)
    raise RuntimeError(f"timed out waiting for {what}")


def tcp_bytes(pid):
    """(sent, received) on pid's TCP connections, from ss -tinp; None if ss cannot tell."""
    try:
        out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    sent = recv = 0
    found = False
    lines = out.splitlines()
    for i, ln in enumerate(lines):
        if f"pid={pid}," in ln and i + 1 < len(lines):
            info = lines[i + 1]
            s = re.search(r"bytes_sent:(\d+)", info)
            r = re.search(r"bytes_received:(\d+)", info)
            sent += int(s.group(1)) if s else 0
            recv += int(r.group(1)) if r else 0
            found = True
    return (sent, recv) if found else None


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def one_size(build, tmp, certs, users):
    cli = real_binary(build, "teleport-unix")
    decide = real_binary(build, "bench/bench-pam-decide")
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(build, ".libs"))
    spool = os.path.join(tmp, f"spool-{users}")
    os.makedirs(spool)
    srv = helpers.Proc([helpers.PY, os.path.join(helpers.FAKE_AUTH, "server.py"), "--certs", certs.dir,
                        "--generate-users", str(users), "--generate-roles", "100", "--watch-dir", spool],
                       os.path.join(tmp, f"srv-{users}"), f"bench-watch-{users}", start_timeout=900)
    srv.call_log = os.path.join(tmp, f"calls-{users}.jsonl")
    srv.argv += ["--call-log", srv.call_log]
    srv.start()
    cache = os.path.join(tmp, f"cache-{users}")
    cfg = helpers.write_yaml(os.path.join(tmp, f"tu-{users}.yaml"), helpers.deep_merge(
        helpers.build_config(certs, srv.address, cache),
        {"auth": {"timeouts": {"connect": "5s", "request": "120s"}}}))
    w = None
    try:
        t0 = time.monotonic()
        w = subprocess.Popen([cli, "--insecure-perms", "-c", cfg, "watch", *(["--full-writes"] if FULL else [])],
                             env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: state(cache).get("phase") == "current", 900, "the watcher to be current")
        t_current = time.monotonic() - t0
        first_write = int(state(cache)["write_duration"]) / 1000

        perf = None
        if PERF:
            perf = subprocess.Popen(["perf", "record", "-q", "--call-graph", "dwarf,16384", "-F", "299", "-p", str(w.pid), "-o",
                                     os.path.join(PERF, f"perf-{users}.data")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        lat, writes, kinds, cpus = [], [], [], []
        for k in range(EVENTS):
            login = f"zw{k:03d}"
            cmd = {"op": "put", "kind": "user",
                   "txtpb": f'Metadata {{ Name: "{login}@example.com" }} Spec {{ Roles: "role-0000" '
                            f'Traits {{ Values {{ key: "logins" value {{ Values: "{login}" }} }} }} }}'}
            p = os.path.join(spool, f"{k:05d}.json")
            with open(p + ".tmp", "w", encoding="utf-8") as f:
                json.dump(cmd, f)
            ev_before = int(state(cache).get("events", 0))
            t0 = time.monotonic()
            os.replace(p + ".tmp", p)
            wait(lambda lg=login: subprocess.run([cli, "--insecure-perms", "-c", cfg, "passwd", lg],
                                                 capture_output=True, env=env).returncode == 0,
                 30, f"{login} in passwd")
            lat.append((time.monotonic() - t0) * 1000)
            # watch.state follows the files: wait for this event's write to be recorded
            wait(lambda e0=ev_before: int(state(cache).get("events", 0)) > e0
                 and int(state(cache)["last_write"]) >= int(state(cache)["last_event"]), 30, "the write recorded")
            st = state(cache)
            writes.append(int(st["write_duration"]) / 1000)
            cpus.append(int(st.get("write_cpu", 0)) / 1000)
            kinds.append(f'{st.get("write_kind", "?")} {int(st.get("write_bytes", 0)) / 1e3:.0f} kB, '
                         f'{st.get("write_recomputed", "?")} mapped')

        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)

        # locks: state.db alone is rewritten (no accounts to recompute)
        lock_lat, lock_writes = [], []
        for k in range(EVENTS):
            ev0 = int(state(cache).get("events", 0))
            cmd = {"op": "put", "kind": "lock",
                   "txtpb": f'Metadata {{ Name: "bench-lock-{k}" }} Spec {{ Target {{ User: "zw000@example.com" }} }}'}
            p = os.path.join(spool, f"lock{k:05d}.json")
            with open(p + ".tmp", "w", encoding="utf-8") as f:
                json.dump(cmd, f)
            t0 = time.monotonic()
            os.replace(p + ".tmp", p)
            wait(lambda e0=ev0: int(state(cache).get("events", 0)) > e0
                 and int(state(cache)["last_write"]) >= int(state(cache)["last_event"]), 30, "the lock written")
            lock_lat.append((time.monotonic() - t0) * 1000)
            lock_writes.append(int(state(cache)["write_duration"]) / 1000)

        calls0 = len(srv.calls())
        b0 = tcp_bytes(w.pid)
        time.sleep(IDLE)
        b1 = tcp_bytes(w.pid)
        idle_calls = len(srv.calls()) - calls0
        if b0 and b1:
            per_min = ((b1[0] - b0[0]) + (b1[1] - b0[1])) * 60 / IDLE
            idle_bytes = f"{per_min:.0f} B/min (sent+received)"
        else:
            idle_bytes = "n/a (ss could not tell)"

        user, login = "user00000@example.com", "u00000"
        watched = subprocess.run([decide, cfg, user, login, "300"], capture_output=True, text=True,
                                 env=env, timeout=600)
        w.send_signal(signal.SIGTERM)
        w.wait(30)
        w = None
        online = subprocess.run([decide, cfg, user, login, "30"], capture_output=True, text=True,
                                env=env, timeout=600)
    finally:
        if w is not None:
            w.kill()
            w.wait()
        srv.stop()

    print(f"-- {users} users, 100 roles{' (--full-writes)' if FULL else ''}")
    print(f"start to current (INIT, full list, both snapshots): {t_current:.2f} s "
          f"(the write alone {first_write:.1f} ms)")
    print(f"change-to-passwd latency over {EVENTS} PUTs: p50 {statistics.median(lat):.1f} ms, "
          f"p99 {pct(lat, 99):.1f} ms (goal <= 1000 ms; includes spawning the checking process)")
    print(f"applying one event (accounts + files, lock): p50 {statistics.median(writes):.1f} ms, "
          f"max {max(writes):.1f} ms (Auth's slow-watcher grace: 59 s); CPU p50 {statistics.median(cpus):.1f} ms, "
          f"max {max(cpus):.1f} ms; last write: {kinds[-1]}")
    print(f"a lock PUT until state.db is written: p50 {statistics.median(lock_lat):.1f} ms, "
          f"max {max(lock_lat):.1f} ms (the write alone p50 {statistics.median(lock_writes):.1f} ms)")
    print(f"idle {IDLE} s: {idle_calls} RPCs, {idle_bytes}")
    print(f"PAM decision while watched: {watched.stdout.strip() or watched.stderr.strip()} (goal <= 1000 us median)")
    print(f"PAM decision without the watcher: {online.stdout.strip() or online.stderr.strip()}")


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    build = os.path.abspath(argv[1])
    sizes = [int(x) for x in " ".join(argv[2:]).split()] or [1000, 10000]
    with tempfile.TemporaryDirectory(prefix="tu-bench-watch-") as tmp:
        certs = helpers.generate_certs(os.path.join(tmp, "certs"))
        for n in sizes:
            try:
                one_size(build, tmp, certs, n)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"bench-watch: {n} users: {e}", file=sys.stderr)
                return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
