# SPDX-License-Identifier: Apache-2.0
"""helpers.py - plain functions and classes behind the pytest fixtures (conftest.py).

Importable from any tests/integration/test_*.py (`import helpers`):

  Proc / start_auth_server / start_raw_h2   child servers with bounded start-up
                                            waits, always killed (process group)
  Certs                                     the per-session certificate set
  build_config / write_yaml / deep_merge    teleport-unix.yaml for a test
  run                                       a command with a hard timeout
  nss_wrapper_env / pam_wrapper_env         environments for getent / pamtester
  run_getent / write_pam_service / run_pamtester   the same, ready to run
  make_dataset                              a modified copy of a fixtures dataset
  grpc_channel                              a grpcio client channel to the fake
"""

import json
import re
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.path.dirname(os.path.dirname(HERE))
FAKE_AUTH = os.path.join(TOP_SRCDIR, "tests", "fake_auth")
FIXTURES = os.path.join(TOP_SRCDIR, "tests", "fixtures")
VECTORS = os.environ.get("TU_VECTORS_DIR") or os.path.normpath(
    os.path.join(TOP_SRCDIR, "tests", "vectors", "teleport"))
PY = "/usr/bin/python3"
# The session certificates' host UUID (client CN = HOST_UUID.example.com), fixed
# so a test can write a lock whose ServerID targets "this host".
HOST_UUID = "5a9f3c0e-8d4b-4c1e-9f2a-7b6c5d4e3f21"
# Under TU_VALGRIND=1 everything is ~10x slower: configs get 10x timeouts and
# tests should scale their time bounds by SLOW.
SLOW = 10 if os.environ.get("TU_VALGRIND") == "1" else 1
CLUSTER = "example.com"
LIBDIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu")

if FAKE_AUTH not in sys.path:
    sys.path.insert(0, FAKE_AUTH)

# Every child we start, so a crashed test cannot leak one (see kill_all()).
_CHILDREN = []


class StartError(RuntimeError):
    pass


class Result:
    """rc, stdout, stderr (text) of a finished command; unpacks as a 3-tuple."""

    def __init__(self, rc, stdout, stderr, argv, elapsed):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.argv, self.elapsed = argv, elapsed

    def __iter__(self):
        return iter((self.rc, self.stdout, self.stderr))

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self):
        return (f"Result(rc={self.rc}, {self.elapsed:.2f}s, argv={self.argv!r},\n"
                f"  stdout={self.stdout!r},\n  stderr={self.stderr!r})")


class CommandTimeout(AssertionError):
    """The command outlived its hard timeout (and was killed): a hang is a bug."""


def run(argv, timeout=20, env=None, input=None, cwd=None):  # noqa: A002
    """Runs argv with a hard timeout; on timeout kills its whole process group
    and raises CommandTimeout.  Returns Result."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                         start_new_session=True, text=True)
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _killpg(p)
        out, err = p.communicate()
        raise CommandTimeout(f"{argv!r} did not finish within {timeout}s (killed)\n"
                             f"stdout: {out!r}\nstderr: {err!r}") from None
    return Result(p.returncode, out, err, argv, time.monotonic() - t0)


def _killpg(p, grace=3.0):
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(5)


class Proc:
    """A child server.  .port / .address once started; .stop() is idempotent."""

    def __init__(self, argv, workdir, name, start_timeout=20.0):
        self.argv, self.workdir, self.name = argv, workdir, name
        os.makedirs(workdir, exist_ok=True)
        self.port_file = os.path.join(workdir, f"{name}.port")
        self.stdout_path = os.path.join(workdir, f"{name}.stdout")
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        self.control_path = None
        self.call_log = None
        self.port = None
        self.p = None
        self.start_timeout = start_timeout

    def start(self):
        for path in (self.port_file,):
            if os.path.exists(path):
                os.unlink(path)
        with open(self.stdout_path, "wb") as so, open(self.stderr_path, "wb") as se:
            self.p = subprocess.Popen(self.argv + ["--port-file", self.port_file, "--die-with-parent"],
                                      stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                      start_new_session=True)
        _CHILDREN.append(self)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise StartError(f"{self.name} exited with {self.p.returncode} at start-up:\n{self.stderr()}")
            try:
                with open(self.port_file, encoding="ascii") as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
                    return self
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        self.stop()
        raise StartError(f"{self.name} did not listen within {self.start_timeout}s:\n{self.stderr()}")

    @property
    def address(self):
        host = "127.0.0.1"
        if "--host" in self.argv:
            host = self.argv[self.argv.index("--host") + 1]
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def stderr(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self):
        if self.p is not None:
            _killpg(self.p)
        return self

    # -- stand-in Auth server extras --
    def set_control(self, **doc):
        """Rewrites the control file (faults=, dataset=, vectors=, server_version=).
        The server applies it on its next call."""
        if not self.control_path:
            raise RuntimeError(f"{self.name} was not started with a control file")
        tmp = self.control_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, self.control_path)

    def calls(self, path=None):
        """Parsed call log (list of dicts), optionally only for one RPC path."""
        if not self.call_log or not os.path.exists(self.call_log):
            return []
        with open(self.call_log, encoding="utf-8") as f:
            recs = [json.loads(line) for line in f if line.strip()]
        return [r for r in recs if path is None or r["path"] == path]

    def clear_calls(self):
        if self.call_log and os.path.exists(self.call_log):
            os.unlink(self.call_log)


def kill_all():
    while _CHILDREN:
        _CHILDREN.pop().stop()


def start_auth_server(certs_dir, workdir, name="auth", dataset="test", vectors=None, faults=None,
                      profile=None, server_cert="server", extra=(), control=True, ssh_user_ca=None):
    """Starts server.py.  faults: dict {path: spec} or list of 'PATH=SPEC'.  ssh_user_ca: a file
    of OpenSSH public key lines served as the cluster's SSH user CA (see ssh_ca())."""
    argv = [PY, os.path.join(FAKE_AUTH, "server.py"), "--certs", certs_dir,
            "--server-cert-name", server_cert]
    if ssh_user_ca:
        argv += ["--ssh-user-ca", str(ssh_user_ca)]
    if dataset:
        argv += ["--dataset", dataset]
    if vectors:
        argv += ["--vectors", vectors]
    if profile:
        argv += ["--profile", profile]
    if isinstance(faults, dict):
        faults = [f"{k}={v}" for k, v in faults.items()]
    for f in faults or []:
        argv += ["--fault", f]
    proc = Proc(argv, workdir, name)
    proc.call_log = os.path.join(workdir, f"{name}.calls.jsonl")
    argv += ["--call-log", proc.call_log]
    if control:
        proc.control_path = os.path.join(workdir, f"{name}.control.json")
        argv += ["--control", proc.control_path]
    argv += list(extra)
    proc.argv = argv
    return proc.start()


def start_raw_h2(certs_dir, workdir, mode, name=None, only_path=None, dataset="test",
                 server_cert="server", extra=()):
    argv = [PY, os.path.join(FAKE_AUTH, "raw_h2.py"), "--certs", certs_dir, "--mode", mode,
            "--server-cert-name", server_cert, "--dataset", dataset]
    if only_path:
        argv += ["--only-path", only_path]
    name = name or f"raw-{mode}"
    call_log = os.path.join(workdir, f"{name}.calls.jsonl")
    argv += ["--call-log", call_log] + list(extra)
    proc = Proc(argv, workdir, name)
    proc.call_log = call_log
    return proc.start()


def start_proxy(workdir, auth_address, web_cert, web_key, mode="ok", cluster=CLUSTER,
                name="proxy"):
    """Starts tests/fake_auth/proxy.py, the stand-in Proxy web port (ALPN routing to
    auth_address without terminating TLS, /webapi/find).  .log_path: its JSON-lines log."""
    argv = [PY, os.path.join(FAKE_AUTH, "proxy.py"), "--auth", auth_address, "--cluster", cluster,
            "--web-cert", web_cert, "--web-key", web_key, "--mode", mode]
    proc = Proc(argv, workdir, name)
    proc.log_path = os.path.join(workdir, f"{name}.log.jsonl")
    proc.argv = argv + ["--log", proc.log_path]
    return proc.start()


def proxy_log(proc):
    """The stand-in Proxy's connections so far (list of dicts)."""
    if not os.path.exists(proc.log_path):
        return []
    with open(proc.log_path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def start_blackhole(certs_dir, workdir, name="blackhole"):
    argv = [PY, os.path.join(FAKE_AUTH, "server.py"), "--certs", certs_dir, "--blackhole"]
    return Proc(argv, workdir, name).start()


class Certs:
    """The per-session certificate set (tests/fake_auth/certs.py)."""

    def __init__(self, manifest):
        self.m = manifest
        self.dir = manifest["dir"]
        self.cluster = manifest["cluster"]
        self.host_uuid = manifest["host_uuid"]

    def cert(self, name="client"):
        return self.m["files"][name]["cert"]

    def key(self, name="client"):
        return self.m["files"][name]["key"]

    @property
    def ca(self):
        return self.m["files"]["ca"]["cert"]

    def identity(self, name="identity"):
        return self.m["files"][name]["path"]

    def not_after(self, name="client"):
        return self.m["files"][name]["not_after"]

    def issue(self, name, days, not_before_days=-1, **kw):
        """A new client pair `name` valid for `days` more days (certs.issue_client);
        returns its manifest entry.  Do it once per name per session."""
        import certs as certs_mod  # noqa: PLC0415
        if name not in self.m["files"]:
            self.m["files"][name] = certs_mod.issue_client(self.dir, name, days, not_before_days, **kw)
        return self.m["files"][name]


def generate_certs(out, cluster=CLUSTER, host_uuid=HOST_UUID):
    import certs as certs_mod  # tests/fake_auth/certs.py  # noqa: PLC0415
    return Certs(certs_mod.generate(out, cluster, host_uuid))


def make_dataset(dest, base="test", files=None, remove=()):
    """Copies tests/fixtures/<base> (or a directory) to dest, then writes
    files {"locks/host.txtpb": text, ...} and deletes the relative paths in
    remove.  Returns dest, for auth_server(dataset=dest) or set_control()."""
    import shutil  # noqa: PLC0415
    src = base if os.path.isdir(base) else os.path.join(FIXTURES, base)
    shutil.copytree(src, dest, dirs_exist_ok=True)
    for rel in remove:
        os.unlink(os.path.join(dest, rel))
    for rel, text in (files or {}).items():
        path = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return dest


# ---------------------------------------------------------------- config

def deep_merge(base, over):
    """Recursive dict merge; a None value in `over` deletes the key."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def _yaml_lines(doc, indent=0):
    pad = "  " * indent
    lines = []
    for k, v in doc.items():
        if isinstance(v, dict):
            if v:
                lines.append(f"{pad}{k}:")
                lines += _yaml_lines(v, indent + 1)
            else:
                lines.append(f"{pad}{k}: {{}}")
        elif isinstance(v, (list, tuple)):
            lines.append(f"{pad}{k}: [" + ", ".join(_yaml_scalar(x) for x in v) + "]")
        else:
            lines.append(f"{pad}{k}: {_yaml_scalar(v)}")
    return lines


def yaml_text(doc):
    return "\n".join(_yaml_lines(doc)) + "\n"


def write_yaml(path, doc, extra_text=""):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# written by tests/integration (helpers.write_yaml)\n")
        f.write(yaml_text(doc))
        f.write(extra_text)
    os.chmod(path, 0o644)
    return path


def build_config(certs, addresses, cache_dir, client="client", identity=None):
    """The default test config (SPEC §3): key pair `client` from certs (or an
    identity file), host labels env: dev, timeouts connect 1s / request 3s
    (times SLOW)."""
    if isinstance(addresses, str):
        addresses = [addresses]
    if identity:
        cred = {"identity_file": certs.identity(identity)}
    else:
        cred = {"key_pair": {"cert": certs.cert(client), "key": certs.key(client), "ca": certs.ca}}
    return {
        "auth": {
            "addresses": list(addresses),
            "server_name": "teleport.cluster.local",
            "credentials": cred,
            "timeouts": {"connect": f"{1 * SLOW}s", "request": f"{3 * SLOW}s"},
        },
        "host": {"name": "web-1", "labels": {"env": "dev"}},
        "accounts": {"source": "host_user_creation", "uid_range": [200000, 899999999],
                     "home": "/home/{login}", "shell": "/bin/bash"},
        "cache": {"dir": cache_dir, "refresh_after": "5m", "offline_max_age": "72h",
                  "negative_ttl": "1m"},
        "pam": {"offline": "cached", "trust_teleport_env": False, "trust_ssh_cert": False},
    }


# ---------------------------------------------------------------- wrappers

def find_lib(name):
    for d in LIBDIRS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def module_path(builddir, soname):
    """A module built by libtool: <builddir>/.libs/<soname>."""
    return os.path.join(builddir, ".libs", soname)


def one_error_line(r, *needles):
    """Exit 2, exactly one stderr line of the house form, containing needles."""
    assert r.rc == 2, r
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r
    assert lines[0].startswith("teleport-unix: "), r
    for n in needles:
        assert n in lines[0], (n, r)
    return lines[0]


def plain_pass_only(why):
    """Skips a test in tools/harden.sh's sanitizer pass (TU_PRELOAD set), where
    the ASan/LSan runtime itself starts a thread and opens descriptors, and a
    setuid program ignores the preload: what such a test observes is the
    runtime, not our code.  The plain pass of ./run test runs it."""
    import pytest
    return pytest.mark.skipif(bool(os.environ.get("TU_PRELOAD")), reason=f"sanitizer pass: {why}")


def _preload(lib):
    """TU_PRELOAD (a sanitizer build's runtime, e.g. set by tools/harden.sh)
    goes first: an instrumented module in an uninstrumented getent/pamtester
    needs the ASan runtime ahead of every other library."""
    pre = os.environ.get("TU_PRELOAD", "").strip()
    return f"{pre} {lib}" if pre else lib


def nss_wrapper_env(builddir, passwd, group, extra=None, base_env=None):
    """Environment running getent & co. with libnss_teleport.so.2 from the build
    tree through nss_wrapper.  passwd/group: files nss_wrapper serves as the
    'files' part (may be empty files)."""
    env = dict(base_env if base_env is not None else os.environ)
    lib = find_lib("libnss_wrapper.so")
    env.update({
        "LD_PRELOAD": _preload(lib or "libnss_wrapper.so"),
        "NSS_WRAPPER_PASSWD": passwd,
        "NSS_WRAPPER_GROUP": group,
        "NSS_WRAPPER_MODULE_SO_PATH": module_path(builddir, "libnss_teleport.so.2"),
        "NSS_WRAPPER_MODULE_FN_PREFIX": "teleport",
    })
    env.update(extra or {})
    return env


def pam_wrapper_env(service_dir, extra=None, base_env=None):
    """Environment running pamtester with service files from service_dir
    (pam_wrapper).  Reference modules by absolute path in the service file."""
    env = dict(base_env if base_env is not None else os.environ)
    env.update({
        "LD_PRELOAD": _preload(find_lib("libpam_wrapper.so") or "libpam_wrapper.so"),
        "PAM_WRAPPER": "1",
        "PAM_WRAPPER_SERVICE_DIR": service_dir,
    })
    env.update(extra or {})
    return env


def uid_wrapper_env(env, root=True):
    """Adds libuid_wrapper (UID_WRAPPER_ROOT=1 to pretend to be root)."""
    env = dict(env)
    lib = find_lib("libuid_wrapper.so") or "libuid_wrapper.so"
    env["LD_PRELOAD"] = (env.get("LD_PRELOAD", "") + " " + lib).strip()
    env["UID_WRAPPER"] = "1"
    if root:
        env["UID_WRAPPER_ROOT"] = "1"
    return env


def run_getent(builddir, *args, workdir, passwd_lines=(), group_lines=(), env=None, timeout=20):
    """`getent ARGS` through nss_wrapper with our module.  nss_wrapper's own
    files part gets passwd_lines / group_lines (written into workdir).
    env: extra variables (e.g. TELEPORT_UNIX_CONFIG, UID_WRAPPER...)."""
    os.makedirs(workdir, exist_ok=True)
    pw, gr = os.path.join(workdir, "nss.passwd"), os.path.join(workdir, "nss.group")
    with open(pw, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in passwd_lines))
    with open(gr, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in group_lines))
    return run(["getent", *args], timeout=timeout, env=nss_wrapper_env(builddir, pw, gr, extra=env))


def write_pam_service(service_dir, name, lines):
    """Writes a pam_wrapper service file; returns its path.  Use absolute
    module paths, e.g. module_path(builddir, "pam_teleport.so")."""
    os.makedirs(service_dir, exist_ok=True)
    path = os.path.join(service_dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def run_pamtester(service_dir, service, user, *ops, env=None, timeout=20):
    """`pamtester SERVICE USER OPS...` (default op acct_mgmt) under pam_wrapper."""
    return run(["pamtester", "-v", service, user, *(ops or ("acct_mgmt",))], timeout=timeout,
               env=pam_wrapper_env(service_dir, extra=env))


# ---------------------------------------------------------------- grpcio client

def grpc_channel(certs, address, client="client", server_name="teleport.cluster.local"):
    import grpc  # noqa: PLC0415
    with open(certs.ca, "rb") as f:
        ca = f.read()
    with open(certs.key(client), "rb") as f:
        key = f.read()
    with open(certs.cert(client), "rb") as f:
        crt = f.read()
    creds = grpc.ssl_channel_credentials(ca, key, crt)
    return grpc.secure_channel(address, creds, options=[("grpc.ssl_target_name_override", server_name),
                                                        ("grpc.max_receive_message_length", 64 << 20)])


# ---------------------------------------------------------------- build tree

def make_vars(builddir, *names):
    """The values configure substituted into the Makefile (${prefix} and friends expanded)."""
    raw = {}
    with open(os.path.join(builddir, "Makefile"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([A-Za-z_]+) = (.*)$", line.rstrip("\n"))
            if m:
                raw[m.group(1)] = m.group(2)

    def expand(v):
        for _ in range(10):
            v = re.sub(r"\$[{(]([A-Za-z_]+)[})]", lambda m: raw.get(m.group(1), ""), v)
        return v

    return {n: expand(raw[n]) for n in names}


# ---- SSH user certificates (issue 14 F3) ----

class SshCA:
    """An OpenSSH CA made with ssh-keygen in a private temporary directory.

    pub: the public key file (serve it as Teleport's user CA with
    start_auth_server(ssh_user_ca=ca.pub), or keep it away to play a self-made CA).
    auth_info(key_id, ...) -> an SSH_AUTH_INFO_0 line ("publickey <type> <base64>") holding a
    real certificate signed by this CA for a throwaway user key."""

    _made = {}

    def __init__(self, name, key_type="ed25519"):
        import atexit  # noqa: PLC0415
        import shutil  # noqa: PLC0415
        import tempfile  # noqa: PLC0415
        self.dir = tempfile.mkdtemp(prefix=f"tu-sshca-{name}-")
        atexit.register(shutil.rmtree, self.dir, True)
        self.key = os.path.join(self.dir, "ca")
        self.pub = self.key + ".pub"
        self.n = 0
        subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", f"{name}-ca", "-f", self.key],
                       check=True, capture_output=True, timeout=60)

    @classmethod
    def named(cls, name="teleport"):
        """One CA per name for the whole test session."""
        if name not in cls._made:
            cls._made[name] = cls(name)
        return cls._made[name]

    def cert(self, key_id, extensions=None, validity="-5m:+1h", host=False, principals="root"):
        """(type, base64) of a certificate for key_id.  extensions {name: value}; value "" adds
        the extension without data (ssh-keygen writes a non-empty value as a string inside)."""
        self.n += 1
        user = os.path.join(self.dir, f"user{self.n}")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", user],
                       check=True, capture_output=True, timeout=60)
        argv = ["ssh-keygen", "-q", "-s", self.key, "-I", key_id, "-n", principals, "-V", validity, "-O", "clear"]
        if host:
            argv.append("-h")
        for k, v in sorted((extensions or {}).items()):
            argv += ["-O", f"extension:{k}={v}" if v else f"extension:{k}"]
        subprocess.run(argv + [user + ".pub"], check=True, capture_output=True, timeout=60)
        with open(user + "-cert.pub", encoding="ascii") as f:
            t, b64 = f.read().split()[:2]
        return t, b64

    def auth_info(self, key_id, extensions=None, **kw):
        t, b64 = self.cert(key_id, extensions, **kw)
        return f"publickey {t} {b64}"


def ssh_ca(name="teleport"):
    """The session's SSH CA called name ("teleport": what the tests serve as Teleport's user CA)."""
    return SshCA.named(name)
