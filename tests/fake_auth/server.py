#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""server.py - stand-in Teleport Auth server (grpcio, mTLS, ALPN h2).

Serves users, roles and locks from a fixtures dataset, the shared wire vectors
or generated data, with Teleport's RPC paths and semantics (see backend.py),
and can misbehave on request (fault injection) so the C client's fall-backs,
deadlines and error paths can be tested.

  /usr/bin/python3 tests/fake_auth/server.py --certs DIR --dataset demo --port-file F

The first line on stdout is "PORT <n>" once the server listens.  SIGTERM or
SIGINT stops it.  See tests/fake_auth/README.md for every option.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import backend  # noqa: E402
import raw_h2  # noqa: E402
import watch  # noqa: E402
from backend import METHODS, Backend, Fault, FaultError, Schema  # noqa: E402


def _status_code(name):
    return grpc.StatusCode[name.upper()]


class Control:
    """Faults and data that can change while the server runs.

    Sources: --fault options (fixed) and an optional JSON control file, re-read
    whenever its mtime/size changes:  {"faults": {"/proto.AuthService/Ping":
    "unimplemented", "*": "delay=1"}, "dataset": "demo" | "/dir", "vectors":
    "/dir", "server_version": "15.0.0", "ssh_user_ca": "/path/ca.pub"}.  A fault from the file replaces a
    command-line fault for the same path; its count= restarts when the file
    changes.
    """

    def __init__(self, args, schema):
        self.args = args
        self.schema = schema
        self.lock = threading.Lock()
        self.cli_faults = {}
        for path in backend.PROFILES[args.profile]:
            self.cli_faults[path] = Fault("unimplemented")
        for f in args.fault or []:
            path, fault = backend.parse_fault_arg(f)
            self.cli_faults[path] = fault
        self.file_faults = {}
        self.file_stamp = None
        self.data_key = None
        self.backend = None
        self._load_data(args.dataset, args.vectors, args.server_version)
        self.backend.ssh_user_ca = backend.load_ssh_user_ca(args.ssh_user_ca)
        self.refresh()

    def _load_data(self, dataset, vectors, server_version):
        key = (dataset, vectors, server_version)
        if key == self.data_key:
            return
        gen = (self.args.generate_users, self.args.generate_roles) \
            if (self.args.generate_users or self.args.generate_roles) else None
        ds = backend.load_dataset(self.schema, dataset, vectors, gen)
        self.backend = Backend(self.schema, ds, cluster=self.args.cluster,
                               server_version=server_version,
                               max_page_size=self.args.max_page_size,
                               hide_expired=self.args.hide_expired)
        self.data_key = key

    def refresh(self):
        path = self.args.control
        if not path:
            return
        try:
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self.file_stamp:
            return
        self.file_stamp = stamp
        doc = {}
        if stamp is not None:
            try:
                with open(path, encoding="utf-8") as f:
                    doc = json.load(f)
            except (OSError, ValueError) as e:
                log(f"control file {path}: {e}; keeping the previous settings")
                return
        try:
            faults = {p: Fault(s) for p, s in (doc.get("faults") or {}).items()}
            ca = backend.load_ssh_user_ca(doc.get("ssh_user_ca", self.args.ssh_user_ca))
            self._load_data(doc.get("dataset", self.args.dataset), doc.get("vectors", self.args.vectors),
                            doc.get("server_version", self.args.server_version))
            self.backend.ssh_user_ca = ca
        except (FaultError, backend.DatasetError) as e:
            log(f"control file {path}: {e}; keeping the previous settings")
            return
        self.file_faults = faults
        log(f"control file {path} applied: faults={sorted(faults)} data={self.backend.ds.source}")

    def fault_for(self, path):
        with self.lock:
            self.refresh()
            for table in (self.file_faults, self.cli_faults):
                for key in (path, "*"):
                    f = table.get(key)
                    if f is not None:
                        return f if f.take() else None
            return None


def log(msg):
    print(f"fake-auth: {msg}", file=sys.stderr, flush=True)


class CallLog:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def write(self, rec):
        if not self.path:
            return
        line = json.dumps(rec, sort_keys=True)
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _peer_addr(context):
    p = context.peer() or ""
    for pre in ("ipv4:", "ipv6:"):
        if p.startswith(pre):
            return p[len(pre):]
    return p


def _peer_cn(context):
    try:
        ac = context.auth_context()
        cn = ac.get("x509_common_name") or []
        return cn[0].decode() if cn else None
    except Exception:  # noqa: BLE001
        return None


class Handler(grpc.GenericRpcHandler):
    def __init__(self, control, calllog, hub=None):
        self.control = control
        self.calllog = calllog
        self.hub = hub

    def service(self, details):
        path = details.method
        if path not in METHODS:
            return None  # grpcio answers UNIMPLEMENTED, as grpc-go does
        if path == watch.WATCH and self.hub is not None:
            return grpc.unary_stream_rpc_method_handler(lambda req, ctx: self._watch(path, req, ctx))
        if METHODS[path][2]:
            return grpc.unary_stream_rpc_method_handler(lambda req, ctx: self._stream(path, req, ctx))
        return grpc.unary_unary_rpc_method_handler(lambda req, ctx: self._unary(path, req, ctx))

    def _unary(self, path, req, ctx):
        payloads = self._serve(path, req, ctx)
        return payloads[0]

    def _watch(self, path, req, ctx):
        """WatchEvents (watch.py); faults: a status answers before INIT, delay= delays INIT."""
        t0 = time.time()
        fault = self.control.fault_for(path)
        be = self.control.backend
        md = {k: v for k, v in ctx.invocation_metadata() if not k.endswith("-bin")}
        rec = {"t": round(t0, 3), "path": path, "request_hex": req.hex(), "metadata": md,
               "time_remaining": ctx.time_remaining(), "peer": _peer_addr(ctx),
               "peer_cn": _peer_cn(ctx), "fault": fault.spec if fault else None}
        try:
            w = be.schema.parse("proto.Watch", req)
            rec["request"] = str(w).strip()
        except Exception as e:  # noqa: BLE001
            rec["code"] = "INTERNAL"
            self.calllog.write(rec)
            ctx.abort(grpc.StatusCode.INTERNAL, f"grpc: error unmarshalling request: {e}")

        def finish(code, msg=""):
            if code is None:  # the stream starts: log it now (it may last for minutes)
                rec["ms"] = round((time.time() - t0) * 1000, 1)
                self.calllog.write(rec)
                return
            rec["code"] = code
            rec["ms"] = round((time.time() - t0) * 1000, 1)
            self.calllog.write(rec)
            ctx.abort(_status_code(code), msg)

        if fault and fault.delay:
            end = time.time() + fault.delay
            while time.time() < end and ctx.is_active():
                time.sleep(0.02)
        if fault and fault.status:
            finish(fault.status.upper(), fault.message or f"injected {fault.status}")
        if self.control.args.enforce_caller_locks and rec["peer_cn"]:
            lk = be.caller_lock(rec["peer_cn"])
            if lk is not None:
                finish("PERMISSION_DENIED", f"access denied: {lk.Spec.Message or 'lock in force'}")
        yield from self.hub.serve(w, ctx, rec, finish)

    def _stream(self, path, req, ctx):
        payloads = self._serve(path, req, ctx)
        yield from payloads
        err = getattr(payloads, "then_abort", None)
        if err:
            ctx.abort(_status_code(err[0]), err[1])

    def _serve(self, path, req, ctx):
        t0 = time.time()
        fault = self.control.fault_for(path)  # re-reads the control file first
        be = self.control.backend
        md = {k: v for k, v in ctx.invocation_metadata() if not k.endswith("-bin")}
        rec = {"t": round(t0, 3), "path": path, "request_hex": req.hex(), "metadata": md,
               "time_remaining": ctx.time_remaining(), "peer": _peer_addr(ctx),
               "peer_cn": _peer_cn(ctx), "fault": fault.spec if fault else None}
        try:
            rec["request"] = str(be.schema.parse(METHODS[path][0], req)).strip()
        except Exception:  # noqa: BLE001
            rec["request"] = None

        def finish(code, msg=""):
            rec["code"] = code
            rec["ms"] = round((time.time() - t0) * 1000, 1)
            self.calllog.write(rec)
            if code != "OK":
                ctx.abort(_status_code(code), msg)

        if fault and fault.delay:
            end = time.time() + fault.delay
            while time.time() < end and ctx.is_active():
                time.sleep(min(0.05, max(0.0, end - time.time())))
            if not ctx.is_active():
                finish("CANCELLED")
        status_msg = None
        if fault and (fault.status or fault.partial is not None):
            status = fault.status or "unavailable"
            status_msg = (status.upper(), fault.message or {
                "unimplemented": f"unknown method {path.rsplit('/', 1)[-1]} for service "
                                 f"{path.strip('/').split('/')[0]}",
                "permission_denied": "access denied",
                "unavailable": "connection problem: backend unavailable",
            }.get(status, f"injected {status}"))
            if fault.partial is None or not METHODS[path][2]:
                finish(*status_msg)
        if self.control.args.enforce_caller_locks and rec["peer_cn"]:
            lk = be.caller_lock(rec["peer_cn"])
            if lk is not None:
                finish("PERMISSION_DENIED", f"access denied: {lk.Spec.Message or 'lock in force'}")
        reply = be.handle(path, req, peer=rec["peer"])
        if reply.code != 0:
            finish(reply.code_name, reply.message)
        payloads = reply.payloads
        if fault and fault.malformed:
            payloads = [backend.malformed_bytes()] if payloads else payloads
        if fault and fault.oversize:
            payloads = [backend.pad_message(payloads[0] if payloads else b"", fault.oversize)] + payloads[1:]
        ctx.send_initial_metadata((("version", be.server_version or "16.4.0"),))
        if status_msg:  # a stream cut after `partial` messages
            payloads = _Payloads(payloads[:fault.partial])
            payloads.then_abort = status_msg
        rec["responses"] = len(payloads)
        rec["response_bytes"] = sum(len(p) for p in payloads)
        rec["code"] = status_msg[0] if status_msg else "OK"
        rec["ms"] = round((time.time() - t0) * 1000, 1)
        self.calllog.write(rec)
        return payloads


class _Payloads(list):
    """A list of messages that may carry then_abort = (code, message)."""


def cert_paths(args):
    """(server cert, server key, client CA) from --certs and overrides."""
    d = args.certs
    cert = args.server_cert or os.path.join(d, args.server_cert_name + ".crt")
    key = args.server_key or os.path.join(d, args.server_cert_name + ".key")
    ca = args.client_ca or os.path.join(d, "ca.crt")
    return cert, key, ca


def read(path):
    with open(path, "rb") as f:
        return f.read()


def build_parser():
    ap = argparse.ArgumentParser(description="stand-in Teleport Auth server (gRPC over mTLS)")
    ap.add_argument("--certs", help="directory made by certs.py (server.crt, server.key, ca.crt)")
    ap.add_argument("--server-cert-name", default="server",
                    help="which pair of --certs to present: server, server-wrongname, server-otherca, server-expired")
    ap.add_argument("--server-cert", help="server certificate PEM (overrides --certs)")
    ap.add_argument("--server-key", help="server key PEM (overrides --certs)")
    ap.add_argument("--client-ca", help="CA PEM that client certificates must chain to (default --certs/ca.crt)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port (printed as PORT <n>)")
    ap.add_argument("--die-with-parent", action="store_true",
                    help="exit when the process that started us goes away (test harness)")
    ap.add_argument("--port-file", help="also write the port number to this file (atomically)")
    ap.add_argument("--dataset", help="fixtures dataset: a name under tests/fixtures (demo, test) or a directory")
    ap.add_argument("--vectors", help="serve the *.bin users/roles/locks/ping of a vectors directory")
    ap.add_argument("--generate-users", type=int, default=0, metavar="N")
    ap.add_argument("--generate-roles", type=int, default=0, metavar="M")
    ap.add_argument("--cluster", default=None, help="cluster name for Ping (default: from --certs, else example.com)")
    ap.add_argument("--server-version", default="16.4.0")
    ap.add_argument("--profile", default="v16", choices=sorted(backend.PROFILES),
                    help="v14: no UsersService; v13: also no ListRoles; v19: no GetRoles")
    ap.add_argument("--max-page-size", type=int, default=backend.DEFAULT_PAGE_SIZE,
                    help="server-side cap on ListUsers page_size / ListRoles Limit")
    ap.add_argument("--hide-expired", action="store_true",
                    help="users whose Metadata.Expires passed are gone (backend TTL), as on a real server")
    ap.add_argument("--fault", action="append", metavar="PATH=SPEC",
                    help="e.g. /proto.AuthService/Ping=unimplemented, '*=delay=2', "
                         "/teleport.users.v1.UsersService/ListUsers=unavailable,count=1")
    ap.add_argument("--ssh-user-ca", metavar="FILE",
                    help="serve this cluster's SSH user CA (TrustService.GetCertAuthority): OpenSSH public key "
                         "lines, the first active, the others additional trusted keys; 'none': no user CA (NOT_FOUND); "
                         "default tests/fake_auth/default_user_ca.pub (no certificate matches it)")
    ap.add_argument("--control", help="JSON control file re-read on every call (faults, dataset)")
    ap.add_argument("--call-log", help="append one JSON line per call (path, request, metadata, code)")
    ap.add_argument("--proto-dir", help="directory of the .proto files (default: <top>/proto)")
    ap.add_argument("--no-client-auth", action="store_true", help="do not require a client certificate")
    ap.add_argument("--enforce-caller-locks", action="store_true",
                    help="like Auth: every RPC of a caller whose host (ServerID/Node = CN or its UUID part) "
                         "is locked gets PERMISSION_DENIED")
    ap.add_argument("--blackhole", action="store_true", help="accept TCP connections and never answer")
    ap.add_argument("--http1-only", action="store_true",
                    help="TLS server offering ALPN http/1.1 only, answering HTTP/1.1")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--keepalive", type=float, default=0.0, metavar="S",
                    help="server keepalive period and the minimum client ping interval (Auth: 1-5 min)")
    ap.add_argument("--watch-dir", metavar="DIR",
                    help="WatchEvents: apply the JSON commands dropped in DIR (see watch.py)")
    ap.add_argument("--watch-init", default="new", choices=("new", "old", "none", "put"),
                    help="WatchEvents INIT: new (with WatchStatus), old (empty, Auth < 13), "
                         "none (never sent), put (a broken first event)")
    ap.add_argument("--watch-init-delay", type=float, default=0.0, metavar="S",
                    help="seconds before INIT (Auth's own cache warming up after a restart)")
    ap.add_argument("--watch-grace", type=float, default=59.0, metavar="S",
                    help="slow watcher: an event waiting longer than this ends the stream (Auth: 59 s)")
    ap.add_argument("--watch-capacity", type=int, default=1024, metavar="N",
                    help="slow watcher: more events waiting than this ends the stream (Auth: 1024)")
    ap.add_argument("--write-config", metavar="PATH",
                    help="write a teleport-unix.yaml pointing at this server (before PORT is printed)")
    ap.add_argument("--config-cache-dir", metavar="DIR",
                    help="cache.dir for --write-config (default: <dir of PATH>/cache)")
    return ap


def write_client_config(args, address):
    """A teleport-unix.yaml for this server (client.crt/.key, ca.crt of --certs,
    host labels env: dev), so a demo is one command away."""
    d = os.path.abspath(args.certs)
    cache = os.path.abspath(args.config_cache_dir or os.path.join(os.path.dirname(
        os.path.abspath(args.write_config)), "cache"))
    text = f"""# teleport-unix.yaml for the stand-in Auth server (tests/fake_auth/server.py)
auth:
  addresses: ["{address}"]
  server_name: teleport.cluster.local
  cluster_name: {args.cluster}
  credentials:
    key_pair: {{ cert: "{d}/client.crt", key: "{d}/client.key", ca: "{d}/ca.crt" }}
  timeouts: {{ connect: 1s, request: 3s }}
host:
  name: web-1
  labels: {{ env: dev }}
accounts:
  source: host_user_creation
  home: /home/{{login}}
  shell: /bin/bash
cache:
  dir: "{cache}"
"""
    os.makedirs(os.path.dirname(os.path.abspath(args.write_config)), exist_ok=True)
    tmp = args.write_config + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, args.write_config)


def keepalive_options(args):
    """Auth's gRPC keepalive (WATCH.md §3): it pings an idle client every --keepalive seconds and
    answers a client that pings more often than that with GOAWAY too_many_pings."""
    if not args.keepalive:
        return []
    ms = int(args.keepalive * 1000)
    return [("grpc.keepalive_time_ms", ms), ("grpc.keepalive_timeout_ms", 3 * ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", ms),
            ("grpc.http2.max_ping_strikes", 2)]


def announce(args, port):
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"PORT {port}", flush=True)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.die_with_parent:
        raw_h2.watch_parent()
    if args.cluster is None:
        args.cluster = "example.com"
        if args.certs and os.path.exists(os.path.join(args.certs, "certs.json")):
            with open(os.path.join(args.certs, "certs.json"), encoding="utf-8") as f:
                args.cluster = json.load(f).get("cluster", args.cluster)

    if args.blackhole or args.http1_only:
        mode = "blackhole" if args.blackhole else "http1"
        cert, key, ca = cert_paths(args) if args.certs or args.server_cert else (None, None, None)
        return raw_h2.run_simple(mode, args.host, args.port, cert, key, ca,
                                 lambda p: announce(args, p), require_client_cert=not args.no_client_auth)

    if not (args.certs or (args.server_cert and args.server_key)):
        print("server.py: --certs DIR (or --server-cert/--server-key) is required", file=sys.stderr)
        return 2
    try:
        schema = Schema(args.proto_dir)
        control = Control(args, schema)
    except (backend.SchemaError, backend.DatasetError, FaultError) as e:
        print(f"server.py: {e}", file=sys.stderr)
        return 2
    cert, key, ca = cert_paths(args)
    try:
        pems = read(key), read(cert), (None if args.no_client_auth else read(ca))
    except OSError as e:
        print(f"server.py: cannot read {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    creds = grpc.ssl_server_credentials([(pems[0], pems[1])], root_certificates=pems[2],
                                        require_client_auth=not args.no_client_auth)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                         handlers=[Handler(control, CallLog(args.call_log), watch.Hub(control, args))],
                         options=[("grpc.max_send_message_length", -1),
                                  ("grpc.max_receive_message_length", 16 << 20),
                                  ("grpc.so_reuseport", 0)] + keepalive_options(args))
    hostpart = f"[{args.host}]" if ":" in args.host else args.host
    port = server.add_secure_port(f"{hostpart}:{args.port}", creds)
    if port == 0:
        print(f"server.py: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 2
    server.start()
    ds = control.backend.ds
    log(f"listening on {args.host}:{port}; data {ds.source}: {len(ds.users)} users, "
        f"{len(ds.roles)} roles, {len(ds.locks)} locks; profile {args.profile}")
    if args.write_config:
        write_client_config(args, f"{hostpart}:{port}")
    # A test server has nothing to flush (call-log lines are written whole):
    # leave at once, grpcio's graceful stop can take seconds.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os._exit(0))
    announce(args, port)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
