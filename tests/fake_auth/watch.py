# SPDX-License-Identifier: Apache-2.0
"""watch.py - AuthService/WatchEvents for the stand-in Auth server (server.py).

Facts from shared/teleport/WATCH.md (paraphrased): one INIT first (with a
WatchStatus naming the accepted kinds, or an empty message for a pre-13
Auth), then PUT (the whole resource in its oneof member) and DELETE (a
ResourceHeader: Kind, Version, Metadata{Name, Namespace "default"}) as
resources change; nothing on an idle stream; a stream ends with a gRPC
status when Auth's fan-out resets ("event fanout system reset"), closes,
or a watcher stays in backlog past the grace period (59 s on Auth).

Tests drive it through a spool directory (--watch-dir DIR): each
DIR/<name>.json is applied in name order, then renamed <name>.json.done
(so a test knows it went out).  Commands:

  {"op": "put", "kind": "user"|"role"|"lock"|"cluster_auth_preference",
   "txtpb": "<text proto of the resource>"}      store it, send PUT
  {"op": "delete", "kind": ..., "name": "..."}   forget it, send DELETE
  {"op": "raw", "hex": "..."}                    send these bytes as one Event
  {"op": "reset", "code": "unknown", "message": "event fanout system reset"}
                                                 end every open stream with that status
  {"op": "config", "init_delay": S, "init": "new"|"old"|"none"|"put",
   "grace": S, "capacity": N}                    settings for the streams opened next
                                                 (grace/capacity: open ones too)

"put"/"delete" also change what the list RPCs answer, so a client that
re-lists after INIT sees the same state the events describe.
"""

import glob
import json
import os
import queue
import threading
import time

from google.protobuf import text_format

import backend

WATCH = "/proto.AuthService/WatchEvents"
KINDS = {"user": "types.UserV2", "role": "types.RoleV6", "lock": "types.LockV2",
         "cluster_auth_preference": "types.AuthPreferenceV2"}
MEMBER = {"user": "User", "role": "Role", "lock": "Lock", "cluster_auth_preference": "AuthPreference"}
# Version strings of the DELETE headers as the newest Auth builds them (WATCH.md §4).
DELETE_VERSION = {"user": "v2", "role": "v8", "lock": "v2", "cluster_auth_preference": "v2"}
GRACE_MESSAGE = "failed to process fanout buffer backlog within grace period"


def log(msg):
    import sys
    print(f"fake-auth: watch: {msg}", file=sys.stderr, flush=True)


class Subscriber:
    def __init__(self, grace, capacity):
        self.q = queue.Queue()
        self.grace = grace
        self.capacity = capacity
        self.closed = False


class Hub:
    """Open WatchEvents streams and the settings for new ones."""

    def __init__(self, control, args):
        self.control = control
        self.lock = threading.Lock()
        self.subs = []
        self.init_delay = args.watch_init_delay
        self.init_style = args.watch_init
        self.grace = args.watch_grace
        self.capacity = args.watch_capacity
        self.n_events = 0
        self.spool = args.watch_dir
        if self.spool:
            os.makedirs(self.spool, exist_ok=True)
            threading.Thread(target=self._spool_loop, daemon=True).start()

    # -- the driving side --
    def _spool_loop(self):
        while True:
            for path in sorted(glob.glob(os.path.join(self.spool, "*.json"))):
                try:
                    with open(path, encoding="utf-8") as f:
                        cmd = json.load(f)
                    self.apply(cmd)
                    done = "ok"
                except Exception as e:  # noqa: BLE001 - a test's bad command must not kill the server
                    log(f"{os.path.basename(path)}: {e}")
                    done = f"error: {e}"
                with open(path + ".result", "w", encoding="utf-8") as f:
                    f.write(done + "\n")
                os.replace(path, path + ".done")
            time.sleep(0.005)

    def apply(self, cmd):
        op = cmd.get("op")
        be = self.control.backend
        schema = be.schema
        if op == "put":
            kind = cmd["kind"]
            msg = schema.new(KINDS[kind])
            text_format.Parse(cmd["txtpb"], msg, allow_unknown_field=True)
            if kind == "cluster_auth_preference":
                be.ds.auth_pref = msg
                msg = be.auth_pref()  # filled as the list RPC serves it
            else:
                backend.gogo_fill(kind, msg)
                be.put(kind, msg)
            ev = schema.new("proto.Event")
            ev.Type = 1
            getattr(ev, MEMBER[kind]).CopyFrom(msg)
            self.broadcast(ev.SerializeToString())
        elif op == "delete":
            kind, name = cmd["kind"], cmd["name"]
            if kind == "cluster_auth_preference":
                be.ds.auth_pref = None
                name = "cluster-auth-preference"
            else:
                be.delete(kind, name)
            ev = schema.new("proto.Event")
            ev.Type = 2
            h = ev.ResourceHeader
            h.Kind = kind
            h.Version = DELETE_VERSION[kind]
            h.Metadata.Name = name
            h.Metadata.Namespace = "default"
            self.broadcast(ev.SerializeToString())
        elif op == "raw":
            self.broadcast(bytes.fromhex(cmd["hex"]))
        elif op == "reset":
            code = cmd.get("code", "unknown").upper()
            msg = cmd.get("message", "event fanout system reset")
            with self.lock:
                for s in self.subs:
                    s.q.put(("abort", code, msg))
        elif op == "config":
            with self.lock:
                if "init_delay" in cmd:
                    self.init_delay = float(cmd["init_delay"])
                if "init" in cmd:
                    self.init_style = cmd["init"]
                if "grace" in cmd:
                    self.grace = float(cmd["grace"])
                if "capacity" in cmd:
                    self.capacity = int(cmd["capacity"])
                for s in self.subs:
                    s.grace, s.capacity = self.grace, self.capacity
        else:
            raise ValueError(f"unknown op {op!r}")

    def broadcast(self, data):
        with self.lock:
            self.n_events += 1
            for s in self.subs:
                s.q.put((time.monotonic(), data))

    # -- the serving side --
    def init_event(self, schema, kinds, style):
        if style == "old":
            return b""  # pre-RFD-0114 Auth: an empty Event is INIT
        if style == "put":
            ev = schema.new("proto.Event")
            ev.Type = 1  # a broken server: the first event is not INIT
            ev.User.Metadata.Name = "x"
            return ev.SerializeToString()
        ev = schema.new("proto.Event")
        st = ev.WatchStatus
        st.Kind = "watch_status"
        st.Version = "v1"
        st.Metadata.Name = "watch-status"
        st.Metadata.Namespace = "default"
        st.Spec.SetInParent()
        for k in kinds:
            st.Spec.Kinds.add().CopyFrom(k)
        return ev.SerializeToString()

    def serve(self, req, ctx, rec, finish):
        """Generator of Event bytes for one stream (grpcio unary_stream handler).
        rec/finish: the call-log record and the status finisher of server.py."""
        schema = self.control.backend.schema
        accepted = []
        for k in req.Kinds:
            if k.Kind in KINDS:
                accepted.append(k)
            elif not req.AllowPartialSuccess:
                finish("INVALID_ARGUMENT", f"cannot watch {k.Kind!r}: not supported by this cache")
        if not req.Kinds:
            finish("PERMISSION_DENIED", "can't setup global watch")
        if not accepted:
            finish("INVALID_ARGUMENT", "none of the requested kinds can be watched")
        with self.lock:
            sub = Subscriber(self.grace, self.capacity)
            self.subs.append(sub)
            delay, style = self.init_delay, self.init_style
        rec["code"] = "OK"
        finish(None)  # logs the call
        try:
            ctx.send_initial_metadata((("version", self.control.backend.server_version or "16.4.0"),))
            end = time.monotonic() + delay
            while time.monotonic() < end and ctx.is_active():
                time.sleep(0.02)
            if style != "none":
                yield self.init_event(schema, accepted, style)
            while ctx.is_active():
                try:
                    item = sub.q.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item[0] == "abort":
                    ctx.abort(backend_code(item[1]), item[2])
                    return
                t, data = item
                backlog = sub.q.qsize()
                if time.monotonic() - t > sub.grace or backlog > sub.capacity:
                    log(f"slow watcher: {backlog} events waiting, oldest {time.monotonic() - t:.1f}s")
                    ctx.abort(backend_code("UNKNOWN"), GRACE_MESSAGE)
                    return
                yield data
        finally:
            with self.lock:
                sub.closed = True
                if sub in self.subs:
                    self.subs.remove(sub)


def backend_code(name):
    import grpc
    return grpc.StatusCode[name.upper()]
