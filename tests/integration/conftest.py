# SPDX-License-Identifier: Apache-2.0
"""conftest.py - pytest fixtures for teleport-unix integration tests.

Run:  TU_BUILDDIR=/abs/build /usr/bin/python3 -m pytest tests/integration

Fixtures (see helpers.py for the plain functions underneath):
  builddir            $TU_BUILDDIR (tests needing it are skipped when unset)
  cli                 path of the CLI in the build tree (a libtool wrapper)
  certs               helpers.Certs, generated once per session (certs.py)
  auth_server(...)    factory: starts tests/fake_auth/server.py, returns a
                      helpers.Proc (.address, .port, .calls(), .set_control())
  shared_auth_server  one session-wide server on the `test` dataset: read-only use
  raw_h2_server(mode, only_path=None)   factory: tests/fake_auth/raw_h2.py
  blackhole_server    a server that accepts TCP and never answers
  write_config(...)   factory: writes a teleport-unix.yaml, returns its path
  run_cli(*args, ...) runs `teleport-unix --insecure-perms -c CFG args...`
                      with a hard timeout; returns helpers.Result (rc, stdout, stderr);
                      TU_VALGRIND=1 runs it under valgrind memcheck
On a failure the report shows the stderr and call log of the servers the test started.
Every server started here is killed at teardown (process group).
"""

import os

import subprocess

import pytest

import helpers


@pytest.fixture(scope="session", autouse=True)
def _kill_children_at_exit():
    yield
    helpers.kill_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the stderr (and call log tail) of every server the
    test started, so the report says what the fake Auth saw."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    for p in _test_servers:
        err = p.stderr()
        if err:
            rep.sections.append((f"{p.name} stderr", err[-4000:]))
        if p.call_log and os.path.exists(p.call_log):
            with open(p.call_log, encoding="utf-8") as f:
                rep.sections.append((f"{p.name} calls", "".join(f.readlines()[-20:])))


_test_servers = []


def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist runs a group's tests on one worker")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`./run test` uses `-n 2 --dist loadgroup` when it is
    installed) a module's tests stay on one worker, in order, sharing their
    module fixtures: each module is its own group unless it names one
    (the modules that run make in the build dir share "buildtree")."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


@pytest.fixture(scope="session")
def builddir():
    d = os.environ.get("TU_BUILDDIR")
    if not d:
        pytest.skip("TU_BUILDDIR is not set: export TU_BUILDDIR=<absolute build dir> to run tests "
                    "that need the built teleport-unix")
    d = os.path.abspath(d)
    if not os.path.isdir(d):
        pytest.skip(f"TU_BUILDDIR={d} is not a directory")
    return d


@pytest.fixture(scope="session")
def private_build(builddir):
    """A second build of the tree in <builddir>/sshd-e2e, configured like a Debian host
    (cached across runs).  Tests that run `make install` install from this one: libtool
    relinks the transport and PAM modules in place during an install, and a test loading
    them from the main build dir at that moment (another pytest-xdist worker) would find
    them half written.  test_install.py and test_sshd.py share it (xdist group buildtree)."""
    top = helpers.TOP_SRCDIR
    bdir = os.path.join(builddir, "sshd-e2e")
    os.makedirs(bdir, exist_ok=True)

    def run(argv, timeout):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=bdir)
        assert r.returncode == 0, f"{argv}: rc {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"

    if not os.path.exists(os.path.join(bdir, "Makefile")):
        t = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True, check=True).stdout.strip()
        run([os.path.join(top, "configure"), "-q", "--prefix=/usr", "--sysconfdir=/etc", "--localstatedir=/var",
             f"--libdir=/usr/lib/{t}", f"--with-pam-moduledir=/usr/lib/{t}/security"], 600)
    run(["make", "-s", "-j2"], 1200)
    return bdir


@pytest.fixture(scope="session")
def cli(builddir):
    p = os.path.join(builddir, "teleport-unix")
    if not os.access(p, os.X_OK):
        pytest.skip(f"{p} not built (run make in {builddir})")
    return p


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return helpers.generate_certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def auth_server(certs, tmp_path):
    """Factory.  auth_server(dataset="test", vectors=None, faults=None,
    profile=None, server_cert="server", extra=(), name="auth") -> Proc.
    faults: {"/proto.AuthService/Ping": "unimplemented"} or ["PATH=SPEC", ...].
    The latest one started is what write_config() points at by default."""
    started = []

    def start(**kw):
        kw.setdefault("name", f"auth{len(started)}")
        p = helpers.start_auth_server(certs.dir, str(tmp_path / "servers"), **kw)
        started.append(p)
        return _started(p)

    yield start
    for p in started:
        p.stop()


# Most recent server started by this test (for write_config's default address).
_last_server = [None]


@pytest.fixture(autouse=True)
def _reset_last_server():
    _last_server[0] = None
    del _test_servers[:]
    yield
    _last_server[0] = None


def _started(p):
    _last_server[0] = p
    _test_servers.append(p)
    return p


@pytest.fixture(scope="session")
def shared_auth_server(certs, tmp_path_factory):
    """A session-wide server on the `test` dataset.  Do not set faults on it."""
    p = helpers.start_auth_server(certs.dir, str(tmp_path_factory.mktemp("shared-auth")),
                                  name="shared", control=False)
    yield p
    p.stop()


@pytest.fixture
def raw_h2_server(certs, tmp_path):
    """Factory.  raw_h2_server(mode, only_path=None, dataset="test", extra=()) -> Proc."""
    started = []

    def start(mode, **kw):
        kw.setdefault("name", f"raw{len(started)}-{mode}")
        p = helpers.start_raw_h2(certs.dir, str(tmp_path / "servers"), mode, **kw)
        started.append(p)
        return _started(p)

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def blackhole_server(certs, tmp_path):
    p = _started(helpers.start_blackhole(certs.dir, str(tmp_path / "servers")))
    yield p
    p.stop()


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "cache"
    d.mkdir(mode=0o755, exist_ok=True)
    return str(d)


@pytest.fixture
def write_config(certs, tmp_path, cache_dir):
    """Factory.  write_config(addresses=None, client="client", identity=None,
    name="teleport-unix.yaml", extra_text="", **overrides) -> path.

    addresses: str or list; default: the server started last in this test, else
    127.0.0.1:1 (nothing listens).  client: which certs pair (client,
    client-expired, client-3days, client-rsa, client-mismatch, ...).
    identity: "identity" / "identity-plain" to use an identity file instead.
    overrides: deep-merged per top-level section, e.g.
    write_config(auth={"timeouts": {"request": "1s"}}, pam={"offline": "deny"});
    a None value deletes a key."""
    def write(addresses=None, client="client", identity=None, name="teleport-unix.yaml",
              extra_text="", **overrides):
        if addresses is None:
            addresses = _last_server[0].address if _last_server[0] else "127.0.0.1:1"
        doc = helpers.build_config(certs, addresses, cache_dir, client=client, identity=identity)
        doc = helpers.deep_merge(doc, overrides)
        path = str(tmp_path / name)
        helpers.write_yaml(path, doc, extra_text)
        _last_config[0] = path
        return path

    yield write
    _last_config[0] = None


_last_config = [None]


@pytest.fixture
def run_cli(cli, builddir, tmp_path):
    """run_cli(*args, config=None, timeout=20, env=None, json=False,
    insecure_perms=True, input=None) -> helpers.Result.
    config defaults to the last write_config() path of this test.
    With TU_VALGRIND=1 in the environment the CLI runs under valgrind memcheck
    (leaks and errors give exit code 99; timeouts are multiplied by 10)."""
    def run(*args, config=None, timeout=20, env=None, json=False, insecure_perms=True, input=None):  # noqa: A002
        config = config or _last_config[0]
        argv = [cli]
        if os.environ.get("TU_VALGRIND") == "1":
            argv = [os.path.join(builddir, "libtool"), "--mode=execute", "valgrind", "-q",
                    "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
                    cli]
            timeout *= 10
        if insecure_perms:
            argv.append("--insecure-perms")
        if config:
            argv += ["-c", config]
        if json:
            argv.append("--json")
        argv += [str(a) for a in args]
        e = dict(os.environ)
        e.pop("TELEPORT_UNIX_CONFIG", None)
        e.update(env or {})
        return helpers.run(argv, timeout=timeout, env=e, input=input, cwd=str(tmp_path))

    return run
