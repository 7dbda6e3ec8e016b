# SPDX-License-Identifier: Apache-2.0
"""`teleport-unix watch` (issue 13) against the stand-in Auth's WatchEvents
(tests/fake_auth/watch.py) over real mTLS + HTTP/2: INIT then one list,
PUT/DELETE visible to `passwd`/getent and `check --offline` within 1 s,
nothing listed while the stream is quiet, reconnect with backoff and a new
list after each INIT (server restart, stream reset, slow-watcher cut),
malformed events fail closed without losing anything, and PAM/check decide
from the watch-fed cache without calling Auth."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

import helpers

WATCH = "/proto.AuthService/WatchEvents"
LIST_USERS = "/teleport.users.v1.UsersService/ListUsers"
LIST_CALLS = (LIST_USERS, "/proto.AuthService/ListRoles", "/proto.AuthService/GetLocks",
              "/teleport.clusterconfig.v1.ClusterConfigService/GetAuthPreference")

ZED = ('Metadata { Name: "zed" } Spec { Roles: "dev" '
       'Traits { Values { key: "logins" value { Values: "zed" } } } }')


class Watcher:
    """A running `teleport-unix watch` and the stand-in it talks to."""

    def __init__(self, cli, config, cache_dir, workdir, env=None, args=()):
        self.cache_dir = cache_dir
        self.stderr_path = os.path.join(workdir, "watch.stderr")
        self.config = config
        argv = [cli, "--insecure-perms", "-c", config, "watch", "--backoff-max", "2s", *args]
        e = dict(os.environ)
        e.pop("TELEPORT_UNIX_CONFIG", None)
        e.update(env or {})
        self.err = open(self.stderr_path, "wb")  # noqa: SIM115
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=self.err, env=e, start_new_session=True)

    def state(self):
        try:
            with open(os.path.join(self.cache_dir, "watch.state"), encoding="utf-8") as f:
                return dict(line.split("=", 1) for line in f.read().splitlines())
        except FileNotFoundError:
            return {}

    def wait(self, pred, timeout=10.0, what="condition"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.p.poll() is not None:
                raise AssertionError(f"watch exited with {self.p.returncode}:\n{self.stderr()}")
            v = pred()
            if v:
                return v
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}; state {self.state()}\n{self.stderr()}")

    def wait_current(self, relists=1, timeout=10.0):
        return self.wait(lambda: self.state().get("phase") == "current"
                         and int(self.state().get("relists", 0)) >= relists,
                         timeout, f"phase current after {relists} list(s)")

    def stderr(self):
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self.err.close()
        return self.p.returncode


class Spool:
    """Drives the stand-in's WatchEvents (tests/fake_auth/watch.py)."""

    def __init__(self, path):
        self.path = path
        self.n = 0
        os.makedirs(path, exist_ok=True)

    def send(self, **cmd):
        self.n += 1
        p = os.path.join(self.path, f"{self.n:05d}.json")
        with open(p + ".tmp", "w", encoding="utf-8") as f:
            json.dump(cmd, f)
        os.replace(p + ".tmp", p)
        end = time.monotonic() + 10
        while not os.path.exists(p + ".done"):
            assert time.monotonic() < end, f"the stand-in did not take {cmd}"
            time.sleep(0.002)
        with open(p + ".result", encoding="utf-8") as f:
            assert f.read().strip() == "ok", cmd
        return time.monotonic()


@pytest.fixture
def watched(auth_server, write_config, cli, cache_dir, tmp_path):
    """(server, spool, watcher) with the watcher current on the `test` dataset."""
    started = []

    def start(server_extra=(), watch_args=(), env=None, wait=True, **cfg):
        spool = Spool(str(tmp_path / "spool"))
        srv = auth_server(extra=["--watch-dir", spool.path, *server_extra])
        config = write_config(**cfg)
        w = Watcher(cli, config, cache_dir, str(tmp_path), env=env, args=watch_args)
        started.append(w)
        if wait:
            w.wait_current()
        return srv, spool, w

    yield start
    for w in started:
        w.stop()


def list_calls(srv):
    return [c for c in srv.calls() if c["path"] in LIST_CALLS]


def visible(run_cli, login):
    return run_cli("passwd", login).rc == 0


def test_init_then_one_list_and_propagation_within_1s(watched, run_cli, builddir, cache_dir, tmp_path):
    srv, spool, w = watched()
    assert len(srv.calls(WATCH)) == 1
    assert len(srv.calls(LIST_USERS)) == 1
    # the WatchEvents request names the four kinds, with no partial success
    req = srv.calls(WATCH)[0]["request"]
    for kind in ("user", "role", "lock", "cluster_auth_preference"):
        assert f'Kind: "{kind}"' in req
    assert "grpc-timeout" not in srv.calls(WATCH)[0]["metadata"]
    assert not visible(run_cli, "zed")

    t0 = spool.send(op="put", kind="user", txtpb=ZED)
    w.wait(lambda: visible(run_cli, "zed"), 1.0, "zed's account within 1 s")
    put_ms = (time.monotonic() - t0) * 1000
    # getent through the NSS module sees the same file
    if helpers.find_lib("libnss_wrapper.so") and os.path.exists(
            helpers.module_path(builddir, "libnss_teleport.so.2")):
        g = helpers.run_getent(builddir, "passwd", "zed", workdir=str(tmp_path / "getent"),
                               env={"TELEPORT_UNIX_CACHE_DIR": cache_dir})
        assert g.rc == 0 and g.stdout.startswith("zed:"), g

    r = run_cli("check", "--offline", "zed", "zed")
    assert r.rc == 0 and r.stdout.startswith("allow"), r
    pub = os.stat(os.path.join(cache_dir, "accounts.db"))
    t0 = spool.send(op="put", kind="lock",
                    txtpb='Metadata { Name: "lock-zed" } Spec { Target { User: "zed" } Message: "incident 7" }')
    w.wait(lambda: "incident 7" in run_cli("check", "--offline", "zed", "zed").stdout, 1.0,
           "the lock within 1 s")
    lock_ms = (time.monotonic() - t0) * 1000
    # a lock cannot change the accounts: only state.db was rewritten
    after = os.stat(os.path.join(cache_dir, "accounts.db"))
    assert (after.st_ino, after.st_mtime_ns) == (pub.st_ino, pub.st_mtime_ns)

    t0 = spool.send(op="delete", kind="lock", name="lock-zed")
    w.wait(lambda: run_cli("check", "--offline", "zed", "zed").stdout.startswith("allow"), 1.0,
           "the lock's DELETE within 1 s")
    t0 = spool.send(op="delete", kind="user", name="zed")
    w.wait(lambda: not visible(run_cli, "zed"), 1.0, "zed gone within 1 s")
    del_ms = (time.monotonic() - t0) * 1000
    print(f"propagation: put {put_ms:.0f} ms, lock {lock_ms:.0f} ms, delete {del_ms:.0f} ms")
    st = w.state()
    assert int(st["events"]) == 4 and st["last_event"] != "0"
    # all of that without a single list call
    assert len(srv.calls(LIST_USERS)) == 1


def test_role_and_auth_preference_events(watched, run_cli):
    srv, spool, w = watched()
    spool.send(op="put", kind="user", txtpb=ZED)
    w.wait(lambda: visible(run_cli, "zed"), 1.0, "zed")
    # dev no longer matches env: dev -> zed's account goes (a role PUT changes many users)
    spool.send(op="put", kind="role", txtpb='Metadata { Name: "dev" } Spec { Options { CreateHostUserMode: '
               'HOST_USER_MODE_KEEP } Allow { Logins: "{{internal.logins}}" NodeLabels { Values { key: "env" '
               'value { Values: "prod" } } } } }')
    w.wait(lambda: not visible(run_cli, "zed"), 1.0, "zed gone after the role change")
    spool.send(op="delete", kind="role", name="dev")
    spool.send(op="put", kind="cluster_auth_preference", txtpb='Spec { Type: "local" LockingMode: "strict" }')
    w.wait(lambda: int(w.state()["events"]) >= 4, 2.0, "4 events")
    assert w.state()["phase"] == "current"


def test_quiet_stream_costs_no_list_calls(watched, run_cli):
    srv, spool, w = watched()
    n = len(list_calls(srv))
    assert n >= 1
    hb = int(w.state()["heartbeat"])
    time.sleep(6)  # more than a heartbeat period
    assert len(list_calls(srv)) == n, list_calls(srv)[n:]
    assert len(srv.calls(WATCH)) == 1
    assert int(w.state()["heartbeat"]) > hb, "the watcher's heartbeat did not advance"
    # the timer's sync does nothing while the watch is current...
    r = run_cli("sync")
    assert r.rc == 0 and r.stdout.startswith("skipped"), r
    r = run_cli("sync", json=True)
    assert r.rc == 0 and r.json()["skipped"] is True, r
    assert len(list_calls(srv)) == n
    # ...unless forced
    r = run_cli("sync", "--force")
    assert r.rc == 0 and "users" in r.stdout, r
    assert len(list_calls(srv)) > n


def test_status_shows_watch_state(watched, run_cli):
    srv, spool, w = watched()
    spool.send(op="put", kind="user", txtpb=ZED)
    w.wait(lambda: int(w.state()["events"]) == 1, 2.0, "one event")
    r = run_cli("status", json=True)
    j = r.json()["watch"]
    assert j["running"] is True and j["current"] is True and j["phase"] == "current", j
    assert j["connected_since"] and j["last_event"] and j["events"] == 1 and j["reconnects"] == 0, j
    r = run_cli("status")
    assert "watch:        current" in r.stdout and "connected:  since" in r.stdout, r
    w.stop()
    j = run_cli("status", json=True).json()["watch"]
    assert j["running"] is False and j["phase"] == "stopped", j


def test_reset_then_new_init_relists(watched, run_cli):
    srv, spool, w = watched()
    spool.send(op="reset", code="unknown", message="event fanout system reset")
    w.wait_current(relists=2)
    st = w.state()
    assert int(st["reconnects"]) == 1 and "event fanout system reset" in st["last_error"], st
    assert len(srv.calls(WATCH)) == 2 and len(srv.calls(LIST_USERS)) == 2
    assert "reconnecting in" in w.stderr()


def test_reconnect_after_auth_restart(watched, auth_server, run_cli, tmp_path):
    srv, spool, w = watched()
    port = srv.port
    srv.stop()
    w.wait(lambda: w.state().get("phase") in ("backoff", "connecting") and int(w.state()["reconnects"]) >= 1,
           10, "the watcher to notice the restart")
    # while Auth is down the watch is not current: check asks Auth (and falls back to the cache)
    r = run_cli("status", json=True)
    assert r.json()["watch"]["current"] is False
    # the restarted Auth has one user less (a change made while we were disconnected)
    ds = helpers.make_dataset(str(tmp_path / "ds2"), remove=["users/bob.txtpb"])
    srv2 = auth_server(dataset=ds, extra=["--watch-dir", spool.path, "--port", str(port)], name="restarted")
    assert srv2.port == port
    w.wait_current(relists=2, timeout=15)
    assert len(srv2.calls(WATCH)) >= 1 and len(srv2.calls(LIST_USERS)) == 1
    assert not visible(run_cli, "bob")


def test_malformed_event_fails_closed_and_loses_nothing(watched, run_cli):
    srv, spool, w = watched()
    # garbage: a length running past the end; then a PUT the broken stream never delivers
    spool.send(op="raw", hex="0801420aff")
    spool.send(op="put", kind="user", txtpb=ZED)
    w.wait_current(relists=2)
    st = w.state()
    assert "proto.Event" in st["last_error"] and "event #" in st["last_error"], st
    assert int(st["reconnects"]) == 1
    # the new list after INIT has what the lost event said
    assert visible(run_cli, "zed")


@pytest.mark.parametrize("raw,why", [
    ("0803", "unknown operation 3"),
    ("08011a00", "not watched"),                                   # CertAuthority (3)
    ("0802120c0a04757365721a027632220a", "runs past the end"),     # truncated header
    ("080212140a0863657274617574681a02763222040a026361", "not watched"),  # DELETE kind certauth
    ("0801", "PUT event without the resource"),
])
def test_malformed_events_are_named(watched, raw, why):
    srv, spool, w = watched()
    spool.send(op="raw", hex=raw)
    w.wait(lambda: int(w.state().get("reconnects", 0)) >= 1, 5, "the stream to be dropped")
    assert why in w.state()["last_error"] or why in w.stderr(), (w.state(), w.stderr())


def test_old_auth_empty_init(watched, run_cli):
    srv, spool, w = watched(server_extra=["--watch-init", "old"])
    spool.send(op="put", kind="user", txtpb=ZED)
    w.wait(lambda: visible(run_cli, "zed"), 1.0, "zed")


def test_first_event_must_be_init(watched):
    srv, spool, w = watched(server_extra=["--watch-init", "put"], wait=False)
    w.wait(lambda: "expected INIT" in w.state().get("last_error", ""), 5, "the INIT complaint")
    assert w.state()["phase"] in ("backoff", "connecting")


def test_init_timeout(watched):
    srv, spool, w = watched(server_extra=["--watch-init", "none"], watch_args=["--init-timeout", "1s"],
                            wait=False)
    w.wait(lambda: "no INIT event within 1 s" in w.state().get("last_error", ""), 6, "the INIT timeout")
    assert not srv.calls(LIST_USERS)


def test_slow_watcher_cut_recovers(watched, run_cli):
    srv, spool, w = watched()
    spool.send(op="config", grace=0)  # every queued event is "too old": Auth's slow-watcher cut
    spool.send(op="put", kind="user", txtpb=ZED)
    w.wait_current(relists=2)
    assert "grace period" in w.state()["last_error"]
    assert visible(run_cli, "zed")


def test_permission_denied_is_backed_off(watched):
    srv, spool, w = watched(server_extra=["--fault", f"{WATCH}=permission_denied,count=1"], wait=False)
    w.wait_current(relists=1, timeout=10)
    assert int(w.state()["reconnects"]) == 1
    assert len(srv.calls(WATCH)) == 2


def test_check_and_pam_decide_without_auth_while_current(watched, run_cli):
    srv, spool, w = watched()
    srv.clear_calls()
    r = run_cli("check", "bob", "bob")
    assert "(from the watch-fed cache)" in r.stdout, r
    r = run_cli("check", "dave", "dave", json=True)
    assert r.json()["watched"] is True, r
    assert srv.calls() == [], srv.calls()
    # a lock arriving on the stream decides the next login at once
    spool.send(op="put", kind="lock", txtpb='Metadata { Name: "l-dave" } Spec { Target { User: "dave" } }')
    w.wait(lambda: run_cli("check", "dave", "dave").stdout.startswith("deny"), 1.0, "dave denied")
    assert srv.calls() == []
    # once the watcher is gone (no heartbeat), check asks Auth again
    w.stop()
    r = run_cli("check", "dave", "dave")
    assert "(from the watch-fed cache)" not in r.stdout
    assert srv.calls()


def test_fast_path_host_identity_follows_the_certificate_file(watched, run_cli, certs, tmp_path):
    """The fast path takes this host's id from what the watcher read (watch.state host_cert,
    host_cn, the file's stamp) instead of parsing the certificate: a certificate replaced
    since (another host id) must be noticed, so a lock on the new id applies at once."""
    crt, key = str(tmp_path / "host.crt"), str(tmp_path / "host.key")
    for src, dst, mode in ((certs.cert(), crt, 0o644), (certs.key(), key, 0o600)):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
        os.chmod(dst, mode)
    new_uuid = "0b5e6c1d-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
    other = certs.issue("client-other-host", 30, host_uuid=new_uuid)
    srv, spool, w = watched(auth={"credentials": {"key_pair": {"cert": crt, "key": key, "ca": certs.ca}}})
    st = w.state()
    assert st["host_cert"] == crt and st["host_cn"].startswith(helpers.HOST_UUID), st
    srv.clear_calls()
    spool.send(op="put", kind="lock",
               txtpb=f'Metadata {{ Name: "l-new-host" }} Spec {{ Target {{ ServerID: "{new_uuid}" }} }}')
    w.wait(lambda: int(w.state().get("events", 0)) >= 1
           and int(w.state()["last_write"]) >= int(w.state()["last_event"]), 2.0, "the lock written")
    r = run_cli("check", "alice", "alice", json=True)
    assert r.json()["watched"] is True and r.json()["allowed"] is True, r  # the lock names another host
    # the certificate is renewed for another host id while the watcher keeps its old one
    for src, dst in ((other["cert"], crt), (other["key"], key)):
        with open(src, "rb") as f, open(dst + ".new", "wb") as g:
            g.write(f.read())
        os.chmod(dst + ".new", 0o600 if dst == key else 0o644)
        os.replace(dst + ".new", dst)
    r = run_cli("check", "alice", "alice", json=True)
    assert r.json()["watched"] is True, r
    assert r.json()["decision"] == "deny" and "l-new-host" in r.json()["reason"], r
    assert srv.calls() == [], srv.calls()


def test_sigterm_and_sd_notify(watched, tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(10)
    try:
        srv, spool, w = watched(env={"NOTIFY_SOCKET": sock_path})
        msgs = []
        while not any(m.startswith("STATUS=current") for m in msgs):
            msgs.append(s.recv(4096).decode())
        assert msgs[0] == "READY=1", msgs
        assert w.stop() == 0
        assert w.state()["phase"] == "stopped"
        while "STOPPING=1" not in msgs:
            msgs.append(s.recv(4096).decode())
    finally:
        s.close()


def test_fast_path_decides_like_the_full_cache(watched, run_cli, builddir, tmp_path):
    """The watch-fed fast path parses only the users a decision can need (decide.c user_want):
    it must decide exactly as the full snapshot does (check --offline) for every user and
    login of the `test` dataset, and as Auth does (the watcher stopped) for PAM's owner
    lookup, where no Teleport user is named."""
    srv, spool, w = watched()
    users = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank", "ivan", "judy",
             "mallory", "olga", "sam@example.com"]
    logins = ["alice", "bob", "ubuntu", "deploy", "root", "dave", "svc", "nobody", "gina", "sam"]

    def strip(r):
        d = dict(r.json())
        d.pop("offline", None)
        d.pop("watched", None)
        return r.rc, d

    for user in users[::2]:
        for login in logins[:6]:
            full = run_cli("check", "--offline", user, login, json=True)
            fast = run_cli("check", user, login, json=True)
            assert fast.json()["watched"] is True, fast
            assert strip(full) == strip(fast), (user, login, full, fast)

    pam_module = helpers.module_path(builddir, "pam_teleport.so")
    if not (os.path.exists(pam_module) and helpers.find_lib("libpam_wrapper.so")
            and subprocess.run(["which", "pamtester"], capture_output=True).returncode == 0):
        pytest.skip("pamtester, pam_wrapper or pam_teleport.so missing")
    service_dir = str(tmp_path / "pam.d")
    helpers.write_pam_service(service_dir, "tu-watch", [
        f"account required {pam_module} config={w.config} insecure_perms"])

    def pam_all():
        out = {}
        for login in logins:
            r = helpers.run_pamtester(service_dir, "tu-watch", login, "acct_mgmt",
                                      env={"PAM_WRAPPER_DEBUGLEVEL": "4"})
            text = r.stdout + r.stderr
            out[login] = (r.rc, "watch-fed" in text,
                          [ln.split(": ", 2)[-1] for ln in text.splitlines() if "login '" in ln])
        return out

    # an owner by role only: zed-ops's record never names the login svc-deploy, its role does
    spool.send(op="put", kind="role", txtpb='Metadata { Name: "ops" } Spec { Options { CreateHostUserMode: '
               'HOST_USER_MODE_KEEP } Allow { Logins: "svc-deploy" NodeLabels { Values { key: "env" '
               'value { Values: "dev" } } } } }')
    spool.send(op="put", kind="user", txtpb='Metadata { Name: "zed-ops" } Spec { Roles: "ops" }')
    logins.append("svc-deploy")
    w.wait(lambda: int(w.state()["events"]) >= 2 and w.state()["last_write"] >= w.state()["last_event"],
           2.0, "both events written")
    srv.clear_calls()
    fast = pam_all()
    assert fast["svc-deploy"][0] == 0, fast["svc-deploy"]
    assert all(v[1] for v in fast.values()), fast
    assert srv.calls() == []
    w.stop()
    online = pam_all()
    assert srv.calls(), "without the watcher PAM asks Auth"
    for login in logins:
        assert fast[login][0] == online[login][0], (login, fast[login], online[login])


def test_keepalive_policy_no_goaway(watched, run_cli):
    """Auth pings idle clients every keepalive period and sends GOAWAY too_many_pings to a client
    pinging more often than that (WATCH.md §3); the stand-in does the same with a 1 s period.
    The watcher sends no HTTP/2 PING (TCP keepalive only) and answers Auth's: the stream stays."""
    srv, spool, w = watched(server_extra=["--keepalive", "1"])
    time.sleep(5)
    st = w.state()
    assert st["phase"] == "current" and st["reconnects"] == "0", st
    assert len(srv.calls(WATCH)) == 1
    spool.send(op="put", kind="user", txtpb=ZED)
    w.wait(lambda: visible(run_cli, "zed"), 1.0, "zed after 5 s of pings")


def test_busy_cache_lock_is_retried(watched, run_cli, cache_dir):
    """Another writer (a forced sync) holding the cache lock delays the write, without dropping
    the stream; the change lands once the lock is free."""
    import fcntl  # noqa: PLC0415
    srv, spool, w = watched()
    fd = os.open(os.path.join(cache_dir, ".online.lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        spool.send(op="put", kind="user", txtpb=ZED)
        time.sleep(2.5)
        assert not visible(run_cli, "zed")
    finally:
        os.close(fd)
    w.wait(lambda: visible(run_cli, "zed"), 3.0, "zed once the lock is free")
    assert w.state()["reconnects"] == "0" and w.state()["phase"] == "current"
    assert "retrying" in w.stderr()


DEV_ROLE = ('Metadata {{ Name: "dev" }} Spec {{ Options {{ CreateHostUserMode: HOST_USER_MODE_KEEP }} '
            'Allow {{ Logins: ["{{{{internal.logins}}}}", "{{{{external.unix_login}}}}"{extra}] '
            'NodeLabels {{ Values {{ key: "env" value {{ Values: ["dev", "staging"] }} }} }} '
            'HostGroups: [{groups}] }} }}')


def test_incremental_mapping_equals_a_fresh_sync(watched, run_cli, write_config, tmp_path):
    """The watcher maps only what an event touched (tu_accounts_memo) and keeps state.db's
    records encoded: after role events that change their holders' logins and groups, a user
    rename and deletes, what it serves equals a fresh `sync` of the same data into another
    cache, and it never serves a stale login."""
    srv, spool, w = watched()
    fresh = write_config(name="fresh.yaml", cache={"dir": str(tmp_path / "fresh-cache")})
    config = w.config

    def same_as_fresh(step):
        r = run_cli("sync", "--force", config=fresh)
        assert r.rc == 0, r
        for db in ("passwd", "group"):
            mine = run_cli(db, config=config)
            theirs = run_cli(db, config=fresh)
            assert mine.rc == 0 and theirs.rc == 0, (mine, theirs)
            # the same entries (enumeration lists accounts.delta's before accounts.db's)
            assert sorted(mine.stdout.splitlines()) == sorted(theirs.stdout.splitlines()), \
                f"{step}: {db} differs from a fresh sync"

    def seen(login):
        return run_cli("passwd", login, config=config).rc == 0

    def last_write():
        st = w.state()
        return st["write_kind"], int(st["write_recomputed"])

    same_as_fresh("after INIT")
    # a role PUT: every holder of dev gets the login devshared, and loses the group docker
    ev0 = int(w.state()["events"])
    spool.send(op="put", kind="role", txtpb=DEV_ROLE.format(extra=', "devshared"', groups='"developers"'))
    w.wait(lambda: seen("devshared"), 1.0, "devshared within 1 s of the role PUT")
    w.wait(lambda: int(w.state()["events"]) > ev0 and w.state()["last_write"] >= w.state()["last_event"],
           2.0, "the role event written")
    same_as_fresh("role PUT")

    # a user PUT maps that user alone, and the accounts go out as a delta
    spool.send(op="put", kind="user", txtpb=ZED)
    w.wait(lambda: seen("zed"), 1.0, "zed")
    w.wait(lambda: last_write()[1] == 1, 2.0, "one user mapped again")
    assert last_write()[0] in ("delta", "full"), w.state()
    same_as_fresh("user PUT")

    # a rename: zed goes, zed2 (same roles) comes; the memo never serves zed again
    spool.send(op="delete", kind="user", name="zed")
    spool.send(op="put", kind="user", txtpb=ZED.replace('"zed"', '"zed2"'))
    w.wait(lambda: seen("zed2") and not seen("zed"), 1.0, "zed renamed to zed2")
    same_as_fresh("rename")

    # the role loses devshared again, then goes: its holders' logins follow at once
    spool.send(op="put", kind="role", txtpb=DEV_ROLE.format(extra="", groups='"developers", "docker"'))
    w.wait(lambda: not seen("devshared"), 1.0, "devshared gone with the role change")
    spool.send(op="delete", kind="role", name="dev")
    w.wait(lambda: not seen("zed2"), 1.0, "zed2 gone with its only role")
    same_as_fresh("role DELETE")
    spool.send(op="put", kind="role", txtpb=DEV_ROLE.format(extra="", groups='"developers", "docker"'))
    w.wait(lambda: seen("zed2"), 1.0, "zed2 back with the role")
    same_as_fresh("role back")
    j = run_cli("status", json=True, config=config).json()["watch"]
    assert j["last_write_kind"] in ("delta", "full") and j["last_write_bytes"] > 0, j
    assert "mapped again" in run_cli("status", config=config).stdout
