#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""proxy.py - stand-in Teleport Proxy web port for teleport-unix's tests (issue 12).

Like Teleport's ALPN router (PROXY.md §2): it reads the TLS ClientHello
without terminating TLS (peeking at the socket), and
  - when the first ALPN protocol is teleport-auth@<hex(cluster)>.teleport.cluster.local
    and the cluster is --cluster, forwards the raw bytes to the stand-in Auth
    (--auth HOST:PORT): TLS stays end to end between the client and Auth;
    another cluster: the route is refused (connection closed), as Teleport does;
  - otherwise terminates TLS itself with the web certificate (--web-cert/--web-key)
    and serves HTTP/1.1: GET /webapi/find answers the JSON of PROXY.md §5.

Every connection is logged to --log as one JSON line:
  {"alpn": [...], "sni": "...", "route": "auth" | "refused" | "web", "path": "/webapi/find"}

Faults (--mode): ok, find-404 (find answers 404), find-garbage (200 with
a non-JSON body), no-routing (find says tls_routing_enabled false; the
teleport-auth route is still refused like a Proxy without TLS routing).

Usage: proxy.py --auth 127.0.0.1:PORT --cluster example.com --web-cert C --web-key K
                [--mode MODE] [--log F] [--port-file F] [--die-with-parent]
"""

import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raw_h2  # noqa: E402  (watch_parent)

LOCK = threading.Lock()


def log(args, rec):
    if not args.log:
        return
    with LOCK, open(args.log, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def read_hello(sock, timeout=5.0):
    """Peeks until one whole TLS handshake record is buffered; returns its bytes or None."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = sock.recv(16384 + 5, socket.MSG_PEEK)
        if not data:
            return None
        if data[0] != 0x16:
            return data  # not TLS
        if len(data) >= 5:
            n = int.from_bytes(data[3:5], "big")
            if len(data) >= 5 + n:
                return data[:5 + n]
        time.sleep(0.005)
    return None


def parse_hello(rec):
    """(alpn list, sni) from one ClientHello record; ([], "") when unparsable."""
    try:
        b = rec[5:]
        if b[0] != 1:
            return [], ""
        p = 4 + 2 + 32  # handshake header, version, random
        p += 1 + b[p]  # session id
        p += 2 + int.from_bytes(b[p:p + 2], "big")  # cipher suites
        p += 1 + b[p]  # compression
        end = p + 2 + int.from_bytes(b[p:p + 2], "big")
        p += 2
        alpn, sni = [], ""
        while p + 4 <= end:
            t = int.from_bytes(b[p:p + 2], "big")
            n = int.from_bytes(b[p + 2:p + 4], "big")
            body = b[p + 4:p + 4 + n]
            if t == 16:
                q = 2
                while q < len(body):
                    ln = body[q]
                    alpn.append(body[q + 1:q + 1 + ln].decode("latin-1"))
                    q += 1 + ln
            elif t == 0 and len(body) > 5:
                ln = int.from_bytes(body[3:5], "big")
                sni = body[5:5 + ln].decode("latin-1")
            p += 4 + n
        return alpn, sni
    except (IndexError, UnicodeDecodeError):
        return [], ""


def pipe(a, b):
    def one(src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
        except OSError:
            pass
        for s in (dst,):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
    t = threading.Thread(target=one, args=(b, a), daemon=True)
    t.start()
    one(a, b)
    t.join(30)
    a.close()
    b.close()


def find_body(args):
    host, port = "127.0.0.1", args.port_value
    return json.dumps({
        "auth": {"type": "local", "second_factor": "otp"},
        "proxy": {
            "kube": {"enabled": False},
            "ssh": {
                "listen_addr": "0.0.0.0:3023",
                "tunnel_listen_addr": "0.0.0.0:3024",
                "web_listen_addr": "0.0.0.0:3080",
                "public_addr": f"{host}:{port}",
            },
            "db": {},
            "tls_routing_enabled": args.mode != "no-routing",
        },
        "server_version": "16.4.0",
        "min_client_version": "15.0.0",
        "cluster_name": args.cluster,
        "automatic_upgrades": False,
    }).encode()


def serve_web(args, conn, rec):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.web_cert, args.web_key)
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        t = ctx.wrap_socket(conn, server_side=True)
        t.settimeout(5)
        req = b""
        while b"\r\n\r\n" not in req and len(req) < 65536:
            d = t.recv(4096)
            if not d:
                break
            req += d
        line = req.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        path = parts[1] if len(parts) > 1 else ""
        rec["path"] = path
        if path == "/webapi/find" and args.mode == "find-404":
            status, body, ctype = "404 Not Found", b'{"error":{"message":"not found"}}', "application/json"
        elif path == "/webapi/find" and args.mode == "find-garbage":
            status, body, ctype = "200 OK", b"<html>Welcome to nginx</html>", "text/html"
        elif path == "/webapi/find":
            status, body, ctype = "200 OK", find_body(args), "application/json"
        else:
            status, body, ctype = "404 Not Found", b"{}", "application/json"
        t.sendall((f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
        t.close()
    except (OSError, ssl.SSLError) as e:
        rec["error"] = str(e)
    log(args, rec)


def handle(args, conn):
    rec = {}
    try:
        hello = read_hello(conn)
        alpn, sni = parse_hello(hello) if hello else ([], "")
        rec.update(alpn=alpn, sni=sni)
        if alpn and alpn[0].startswith("teleport-auth@"):
            want = "teleport-auth@" + args.cluster.encode().hex() + ".teleport.cluster.local"
            if alpn[0] != want or args.mode == "no-routing":
                rec["route"] = "refused"
                log(args, rec)
                conn.close()
                return
            rec["route"] = "auth"
            log(args, rec)
            host, port = args.auth.rsplit(":", 1)
            up = socket.create_connection((host, int(port)), timeout=5)
            # No Nagle on either leg: a relay must not hold small TLS records back.
            for s in (conn, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up.settimeout(None)
            conn.settimeout(None)
            pipe(conn, up)
            return
        rec["route"] = "web"
        serve_web(args, conn, rec)
    except OSError as e:
        rec["error"] = str(e)
        log(args, rec)
        conn.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="stand-in Teleport Proxy (ALPN routing + find)")
    ap.add_argument("--auth", required=True)
    ap.add_argument("--cluster", default="example.com")
    ap.add_argument("--web-cert", required=True)
    ap.add_argument("--web-key", required=True)
    ap.add_argument("--mode", default="ok", choices=["ok", "find-404", "find-garbage", "no-routing"])
    ap.add_argument("--log")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--die-with-parent", action="store_true")
    args = ap.parse_args(argv)
    if args.die_with_parent:
        raw_h2.watch_parent()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.host, args.port))
    ls.listen(64)
    args.port_value = ls.getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{args.port_value}\n")
        os.replace(tmp, args.port_file)
    print(f"PORT {args.port_value}", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(args, c), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
