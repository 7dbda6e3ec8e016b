#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""raw_h2.py - a misbehaving Auth server: hand-made HTTP/2 (python3-h2) over mTLS.

For what grpcio never sends.  --mode selects the misbehaviour; with
--only-path PATH it applies to that RPC only and every other call gets a
correct answer from the same backend as server.py (so a client can Ping
first and then hit the broken call).

HTTP/2 modes (TLS, ALPN h2, client certificate required):
  ok               correct gRPC answers (sanity check of this server)
  truncated        length prefix says 100, 10 bytes follow, then END_STREAM, no trailers
  truncated_ok     same, then trailers grpc-status 0
  no_trailers      full message, END_STREAM on the data, no grpc-status at all
  rst_stream       headers and half a message, then RST_STREAM(INTERNAL_ERROR)
  two_messages     a unary answer carrying two messages, grpc-status 0
  oversize_prefix  length prefix 0x7fffffff, 1 KiB follows, grpc-status 0
  compressed       compressed-flag 1 without grpc-encoding, grpc-status 0
  bad_status       trailers with grpc-status "abc"
  http500          :status 500, content-type text/plain
  non_grpc         :status 200, content-type text/html, an HTML page
  trickle          the answer one byte per --trickle-interval seconds (default 1)
  goaway           GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") instead of an answer
Connection modes:
  stall_tls        accept TCP, read the ClientHello, never send ServerHello
  close            accept TCP and close at once (RST when the client already sent data)
  syn_drop         never accept and keep the accept queue full: the kernel drops new
                   SYNs, so a client's connect() itself hangs (its connect timeout)
  blackhole        accept TCP, never answer anything
  http1            TLS offering ALPN http/1.1 only; answers HTTP/1.1 404
  no_alpn          TLS without ALPN; answers HTTP/1.1 404 (Teleport's legacy API)

  /usr/bin/python3 tests/fake_auth/raw_h2.py --certs DIR --mode truncated [--only-path P] [--port-file F]

First stdout line: "PORT <n>".  SIGTERM/SIGINT stop it.
"""

import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

H2_MODES = ("ok", "truncated", "truncated_ok", "no_trailers", "rst_stream", "two_messages",
            "oversize_prefix", "compressed", "bad_status", "http500", "non_grpc", "trickle", "goaway")
SIMPLE_MODES = ("stall_tls", "blackhole", "http1", "no_alpn", "close", "syn_drop")
MODES = H2_MODES + SIMPLE_MODES

VECTORS = os.environ.get("TU_VECTORS_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors", "teleport")


def log(msg):
    print(f"raw-h2: {msg}", file=sys.stderr, flush=True)


def watch_parent():
    """Sends ourselves SIGTERM once our parent is gone (re-parented), so a
    killed test run cannot leave servers behind."""
    ppid = os.getppid()

    def loop():
        while os.getppid() == ppid:
            time.sleep(0.5)
        log(f"parent {ppid} went away; exiting")
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=loop, daemon=True).start()


def frame(payload, flag=0, length=None):
    n = len(payload) if length is None else length
    return bytes([flag]) + n.to_bytes(4, "big") + payload


def tls_context(cert, key, ca, alpn, require_client_cert=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(ca)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class Listener:
    """A TCP listener whose accepted sockets go to handler(sock, addr) in threads."""

    def __init__(self, host, port):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.held = []

    def run(self, handler):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        while not self.stop.is_set():
            try:
                s, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            s.settimeout(None)
            self.held.append(s)
            threading.Thread(target=self._guard, args=(handler, s, addr), daemon=True).start()
        self.sock.close()
        for s in self.held:
            try:
                s.close()
            except OSError:
                pass
        return 0

    @staticmethod
    def _guard(handler, s, addr):
        try:
            handler(s, addr)
        except (OSError, ssl.SSLError) as e:
            log(f"{addr[0]}:{addr[1]}: {e.__class__.__name__}: {e}")
        except Exception as e:  # noqa: BLE001  (h2 protocol errors and the like)
            log(f"{addr[0]}:{addr[1]}: {e.__class__.__name__}: {e}")


def _hold(sock, stop):
    """Reads and discards until the peer closes or we stop; never writes."""
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            if not sock.recv(65536):
                return
        except socket.timeout:
            continue


def _http1(tls_sock):
    tls_sock.settimeout(10)
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < 65536:
        d = tls_sock.recv(4096)
        if not d:
            return
        buf += d
    if buf.startswith(b"PRI * HTTP/2.0"):
        status, body = "400 Bad Request", b"HTTP/2 is not offered here\n"
    else:
        status, body = "404 Not Found", b'{"error":{"message":"not found"}}\n'
    tls_sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


def run_syn_drop(host, port, announce):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    lsock = socket.socket(fam, socket.SOCK_STREAM)
    lsock.bind((host, port))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(4):  # more than the queue holds with backlog 0
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect((host, port))
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.2)
    log(f"mode syn_drop on {host}:{port}")
    announce(port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    return 0


def run_simple(mode, host, port, cert, key, ca, announce, require_client_cert=True):
    if mode == "syn_drop":
        return run_syn_drop(host, port, announce)
    lst = Listener(host, port)
    if mode in ("http1", "no_alpn"):
        if not cert:
            raise SystemExit(f"raw_h2: mode {mode} needs certificates (--certs)")
        try:
            ctx = tls_context(cert, key, ca, ["http/1.1"] if mode == "http1" else None, require_client_cert)
        except (OSError, ssl.SSLError) as e:
            print(f"raw_h2.py: cannot load certificates: {e}", file=sys.stderr)
            return 2

        def handler(s, addr):
            with ctx.wrap_socket(s, server_side=True) as t:
                log(f"{addr[0]}:{addr[1]}: TLS up, ALPN {t.selected_alpn_protocol()!r}")
                _http1(t)
    elif mode == "close":
        def handler(s, addr):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()  # linger 0: the peer sees a reset
    else:
        def handler(s, addr):
            _hold(s, lst.stop)
    log(f"mode {mode} on {host}:{lst.port}")
    announce(lst.port)
    return lst.run(handler)


class H2Conn:
    """One HTTP/2 connection answered per mode."""

    def __init__(self, sock, mode, only_path, answer, trickle_interval, stop, record=None, peer=""):
        import h2.config  # noqa: PLC0415
        import h2.connection  # noqa: PLC0415
        self.h2events = __import__("h2.events", fromlist=["events"])
        self.sock, self.mode, self.only_path = sock, mode, only_path
        self.answer, self.trickle_interval, self.stop = answer, trickle_interval, stop
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                         header_encoding="utf-8"))
        self.streams = {}
        self.closed = False
        self.record = record  # callable(dict) or None
        self.peer = peer

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self):
        """Reads once and processes events; returns False when the peer is gone."""
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        if not data:
            return False
        ev = self.h2events
        for e in self.conn.receive_data(data):
            if isinstance(e, ev.RequestReceived):
                self.streams[e.stream_id] = {"headers": dict(e.headers), "body": bytearray()}
            elif isinstance(e, ev.DataReceived):
                st = self.streams.get(e.stream_id)
                if st is not None:
                    st["body"] += e.data
                self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            elif isinstance(e, ev.StreamEnded):
                st = self.streams.pop(e.stream_id, None)
                if st is not None:
                    self.flush()
                    self.respond(e.stream_id, st["headers"], bytes(st["body"]))
            elif isinstance(e, ev.ConnectionTerminated):
                self.closed = True
        self.flush()
        return not self.closed

    def run(self):
        self.sock.settimeout(0.5)
        self.conn.initiate_connection()
        self.flush()
        while not self.stop.is_set() and self.pump():
            pass

    def send_data(self, sid, data, end_stream=False):
        """Sends respecting flow control (waits for WINDOW_UPDATEs)."""
        view = memoryview(data)
        while len(view):
            win = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if win <= 0:
                self.flush()
                if not self.pump():
                    return
                continue
            chunk, view = view[:win], view[win:]
            self.conn.send_data(sid, bytes(chunk), end_stream=end_stream and not len(view))
            self.flush()
        if not data and end_stream:
            self.conn.send_data(sid, b"", end_stream=True)
            self.flush()

    def respond(self, sid, headers, body):
        path = headers.get(":path", "")
        mode = self.mode if (not self.only_path or path == self.only_path) else "ok"
        log(f"stream {sid} {path} -> {mode}")
        if self.record:
            self.record({"t": round(time.time(), 3), "stream": sid, "path": path, "mode": mode,
                         "headers": headers, "body_hex": body.hex()})
        grpc_ok = [(":status", "200"), ("content-type", "application/grpc")]
        trailers_ok = [("grpc-status", "0")]
        c = self.conn
        if mode == "http500":
            c.send_headers(sid, [(":status", "500"), ("content-type", "text/plain")])
            self.send_data(sid, b"Internal Server Error\n", end_stream=True)
            return
        if mode == "non_grpc":
            c.send_headers(sid, [(":status", "200"), ("content-type", "text/html; charset=utf-8")])
            self.send_data(sid, b"<!doctype html><title>Teleport</title><p>Welcome</p>\n", end_stream=True)
            return
        if mode == "goaway":
            c.close_connection(error_code=11, additional_data=b"too_many_pings")
            self.flush()
            self.closed = True
            return
        # The request is one length-prefixed gRPC message.
        if len(body) >= 5 and body[0] == 0 and int.from_bytes(body[1:5], "big") == len(body) - 5:
            code, msg, payloads = self.answer(path, body[5:], self.peer)
        else:
            code, msg, payloads = 13, f"bad request framing ({len(body)} bytes)", []
        if mode == "ok":
            if code != 0:
                c.send_headers(sid, grpc_ok + [("grpc-status", str(code)),
                                               ("grpc-message", urllib.parse.quote(msg, safe=" "))],
                               end_stream=True)
                self.flush()
                return
            c.send_headers(sid, grpc_ok)
            self.send_data(sid, b"".join(frame(p) for p in payloads))
            c.send_headers(sid, trailers_ok, end_stream=True)
            self.flush()
            return
        payload = payloads[0] if payloads else b""
        c.send_headers(sid, grpc_ok)
        self.flush()
        if mode == "truncated":
            self.send_data(sid, frame(b"\x00" * 10, length=100), end_stream=True)
        elif mode == "truncated_ok":
            self.send_data(sid, frame(b"\x00" * 10, length=100))
            c.send_headers(sid, trailers_ok, end_stream=True)
        elif mode == "no_trailers":
            self.send_data(sid, frame(payload), end_stream=True)
        elif mode == "rst_stream":
            f = frame(payload)
            self.send_data(sid, f[:max(1, len(f) // 2)])
            c.reset_stream(sid, error_code=2)
        elif mode == "two_messages":
            self.send_data(sid, frame(payload) + frame(payload))
            c.send_headers(sid, trailers_ok, end_stream=True)
        elif mode == "oversize_prefix":
            self.send_data(sid, frame(b"\x00" * 1024, length=0x7FFFFFFF))
            c.send_headers(sid, trailers_ok, end_stream=True)
        elif mode == "compressed":
            self.send_data(sid, frame(payload, flag=1))
            c.send_headers(sid, trailers_ok, end_stream=True)
        elif mode == "bad_status":
            self.send_data(sid, frame(payload))
            c.send_headers(sid, [("grpc-status", "abc")], end_stream=True)
        elif mode == "trickle":
            for b in frame(payload):
                if self.stop.is_set():
                    return
                self.send_data(sid, bytes([b]))
                time.sleep(self.trickle_interval)
            c.send_headers(sid, trailers_ok, end_stream=True)
        self.flush()


def make_answer(args):
    """answer(path, body) -> (code, message, payloads) from backend.py, or vectors for Ping."""
    try:
        import backend  # noqa: PLC0415
        schema = backend.Schema(args.proto_dir)
        ds = backend.load_dataset(schema, args.dataset, args.vectors)
        be = backend.Backend(schema, ds, cluster=args.cluster or "example.com")
        be.ssh_user_ca = backend.load_ssh_user_ca(args.ssh_user_ca)

        def answer(path, body, peer=""):
            r = be.handle(path, body, peer=peer)
            return r.code, r.message, r.payloads
        return answer
    except Exception as e:  # noqa: BLE001  (no protos yet: fall back to the ping vector)
        log(f"backend unavailable ({e}); answering Ping from the vectors only")
        ping = b""
        p = os.path.join(VECTORS, "ping_response.bin")
        if os.path.exists(p):
            with open(p, "rb") as f:
                ping = f.read()

        def answer(path, body, peer=""):
            if path == "/proto.AuthService/Ping":
                return 0, "", [ping]
            return 12, f"unknown method {path}", []
        return answer


def main(argv=None):
    ap = argparse.ArgumentParser(description="misbehaving HTTP/2 Auth server",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--mode", required=True, choices=MODES)
    ap.add_argument("--certs", help="directory made by certs.py")
    ap.add_argument("--server-cert-name", default="server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--die-with-parent", action="store_true",
                    help="exit when the process that started us goes away (test harness)")
    ap.add_argument("--port-file")
    ap.add_argument("--only-path", help="misbehave only for this :path; answer others correctly")
    ap.add_argument("--dataset", default="test", help="data for correct answers (see server.py)")
    ap.add_argument("--vectors")
    ap.add_argument("--cluster")
    ap.add_argument("--proto-dir")
    ap.add_argument("--ssh-user-ca", metavar="FILE", help="the cluster's SSH user CA (see server.py)")
    ap.add_argument("--trickle-interval", type=float, default=1.0)
    ap.add_argument("--no-client-auth", action="store_true")
    ap.add_argument("--call-log", help="one JSON line per request: path, headers, body, SNI, ALPN, TLS version, peer CN")
    args = ap.parse_args(argv)
    if args.die_with_parent:
        watch_parent()

    def announce(port):
        if args.port_file:
            with open(args.port_file + ".tmp", "w", encoding="ascii") as f:
                f.write(f"{port}\n")
            os.replace(args.port_file + ".tmp", args.port_file)
        print(f"PORT {port}", flush=True)

    cert = key = ca = None
    if args.certs:
        cert = os.path.join(args.certs, args.server_cert_name + ".crt")
        key = os.path.join(args.certs, args.server_cert_name + ".key")
        ca = os.path.join(args.certs, "ca.crt")
    if args.mode in SIMPLE_MODES:
        return run_simple(args.mode, args.host, args.port, cert, key, ca, announce,
                          require_client_cert=not args.no_client_auth)
    if not cert:
        ap.error(f"--mode {args.mode} needs --certs")
    try:
        ctx = tls_context(cert, key, ca, ["h2"], not args.no_client_auth)
    except (OSError, ssl.SSLError) as e:
        print(f"raw_h2.py: cannot load certificates from {args.certs}: {e}", file=sys.stderr)
        return 2
    answer = make_answer(args)
    lst = Listener(args.host, args.port)

    log_lock = threading.Lock()
    sni_seen = threading.local()

    def on_sni(sslobj, name, _ctx):
        sni_seen.name = name  # runs in the handshaking thread

    ctx.sni_callback = on_sni

    def handler(s, addr):
        s.settimeout(10)
        sni_seen.name = None
        with ctx.wrap_socket(s, server_side=True) as t:
            alpn = t.selected_alpn_protocol()
            conn_info = {"peer": f"{addr[0]}:{addr[1]}", "sni": sni_seen.name, "alpn": alpn,
                         "tls_version": t.version(),
                         "peer_cn": dict(x[0] for x in (t.getpeercert() or {}).get("subject", ())).get("commonName")}

            def record(rec):
                if not args.call_log:
                    return
                rec.update(conn_info)
                with log_lock, open(args.call_log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec, sort_keys=True) + "\n")
            if alpn != "h2":
                log(f"{addr[0]}:{addr[1]}: client did not negotiate h2 (ALPN {alpn!r}); closing")
                record({"t": round(time.time(), 3), "path": None, "mode": "closed: no h2"})
                return
            H2Conn(t, args.mode, args.only_path, answer, args.trickle_interval, lst.stop, record,
                   f"{addr[0]}:{addr[1]}").run()

    log(f"mode {args.mode} on {args.host}:{lst.port}" + (f" for {args.only_path} only" if args.only_path else ""))
    announce(lst.port)
    return lst.run(handler)


if __name__ == "__main__":
    sys.exit(main())
