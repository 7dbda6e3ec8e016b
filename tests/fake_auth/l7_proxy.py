#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""l7_proxy.py - a stand-in for a Teleport Proxy behind an L7 load balancer
(PROXY.md §3): it terminates TLS with a web certificate, negotiates no ALPN
protocol (so Teleport's test dial says "upgrade required"), answers
GET /webapi/find (TLS routing on; plain HTTP passes a load balancer), and
otherwise only serves the WebSocket connection upgrade on
/webapi/connectionupgrade with sub-protocol alpn-ping.  After the 101 it forwards the unmasked payload of
the client's binary frames to the stand-in Auth (--auth HOST:PORT) untouched
(the inner TLS is end to end) and wraps Auth's bytes in binary frames.  It
sends a ping (payload "teleport") right after the 101 and then every
--ping-interval seconds, and counts the pongs it gets back.

Faults (--mode): ok, notfound (404 for the upgrade), badaccept (a wrong
Sec-WebSocket-Accept), legacy (101 without WebSocket headers), blackhole
(TLS, then never answers the upgrade), tricky (legal but unusual framing:
text frames, fragments of a few bytes, masked server frames, the 64-bit
length form, pings between fragments), badframe (reserved bits set),
reset (the connection reset right after the 101 and a ping).

Every finished connection appends a JSON line to --log: request headers,
pongs counted, bytes each way, and whether each frame from the client was
masked with a zero key.
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raw_h2  # noqa: E402  (watch_parent)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LOCK = threading.Lock()


def log_line(path, doc):
    if not path:
        return
    with LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(doc) + "\n")


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        k = s.recv(n - len(b))
        if not k:
            raise EOFError
        b += k
    return b


def read_frame(s):
    h = recv_exact(s, 2)
    op = h[0] & 0x0F
    masked = bool(h[1] & 0x80)
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", recv_exact(s, 8))[0]
    mask = recv_exact(s, 4) if masked else b"\0\0\0\0"
    data = recv_exact(s, n)
    if mask != b"\0\0\0\0":
        key = (mask * (n // 4 + 1))[:n]
        data = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return op, masked, mask, data


def make_frame(op, payload, fin=True, mask=None, long_len=False, rsv=0):
    """One frame; mask: 4 bytes to mask with (servers normally do not); long_len: the
    64-bit length form even for a short payload."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | op
    m = 0x80 if mask else 0
    if long_len or n > 65535:
        h = bytes([b0, m | 127]) + struct.pack(">Q", n)
    elif n > 125:
        h = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, m | n])
    if mask:
        key = (mask * (n // 4 + 1))[:n]
        payload = bytes(a ^ b for a, b in zip(payload, key))
        h += mask
    return h + payload


def tricky_frames(b):
    """Auth's bytes b as a legal but unusual frame sequence: a text frame (to be skipped),
    then b fragmented into a binary frame and continuation frames of 1..7 bytes and the
    rest, masked with a random key, one with the 64-bit length form, a ping between
    fragments (control frames may interleave)."""
    out = [make_frame(0x1, b"ignore me")]
    parts, i, k = [], 0, 1
    while i < len(b) and len(parts) < 6:
        parts.append(b[i:i + k])
        i += k
        k += 1
    if i < len(b):
        parts.append(b[i:])
    for j, part in enumerate(parts):
        op = 0x2 if j == 0 else 0x0
        out.append(make_frame(op, part, fin=j == len(parts) - 1, mask=os.urandom(4),
                              long_len=j == 1))
        if j == 0:
            out.append(make_frame(0x9, b"mid-message"))
    return b"".join(out)


def handle(conn, args):
    rec = {"pongs": 0, "up": 0, "down": 0, "masks": set()}
    wlock = threading.Lock()
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            k = conn.recv(4096)
            if not k:
                return
            head += k
            if len(head) > 16384:
                return
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        rec["request"] = lines[0]
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        rec["headers"] = hdrs
        if args.mode == "blackhole":
            time.sleep(3600)
            return
        path = lines[0].split(" ")[1] if " " in lines[0] else ""
        if path == "/webapi/find" and lines[0].startswith("GET "):
            # Plain HTTP passes the load balancer: discovery works as it does in front of
            # any Proxy with TLS routing (PROXY.md §5).
            port = conn.getsockname()[1]
            body = json.dumps({
                "proxy": {"tls_routing_enabled": True,
                          "ssh": {"public_addr": f"127.0.0.1:{port}",
                                  "web_listen_addr": f"127.0.0.1:{port}"}},
                "cluster_name": args.cluster, "server_version": "16.4.0"}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            rec["find"] = True
            return
        if args.mode == "notfound" or path != "/webapi/connectionupgrade":
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if hdrs.get("upgrade", "").lower() != "websocket" or \
                "alpn-ping" not in hdrs.get("sec-websocket-protocol", ""):
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        key = hdrs.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        if args.mode == "badaccept":
            accept = base64.b64encode(hashlib.sha1(b"wrong" + GUID).digest()).decode()
        if args.mode == "legacy":
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: alpn-ping\r\n"
                         b"X-Teleport-Upgrade: alpn-ping\r\nConnection: Upgrade\r\n\r\n")
            time.sleep(2)
            return
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n"
                      "Sec-WebSocket-Protocol: alpn-ping\r\n\r\n").encode())
        # A ping before any data: the client must answer it while its TLS starts.
        conn.sendall(make_frame(0x9, b"teleport"))
        if args.mode == "reset":
            # Gone at once, with a TCP reset: the client's next writes fail (EPIPE).
            time.sleep(0.05)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            rec["reset"] = True
            return
        host, _, port = args.auth.rpartition(":")
        up = socket.create_connection((host, int(port)), timeout=10)
        # No Nagle on the Auth leg: a relay must not hold small TLS records back.
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up.settimeout(None)
        if rest:
            raise RuntimeError("client sent frames before the 101")
        done = threading.Event()

        def down():
            try:
                while True:
                    b = up.recv(65536)
                    if not b:
                        break
                    rec["down"] += len(b)
                    if args.mode == "tricky":
                        data = tricky_frames(b)
                    elif args.mode == "badframe":
                        data = make_frame(0x2, b, rsv=0x40)
                    else:
                        data = make_frame(0x2, b)
                    with wlock:
                        conn.sendall(data)
            except OSError:
                pass
            finally:
                with wlock:
                    try:
                        conn.sendall(make_frame(0x8, b"\x03\xe8"))
                    except OSError:
                        pass
                done.set()

        def pinger():
            while not done.wait(args.ping_interval):
                with wlock:
                    try:
                        conn.sendall(make_frame(0x9, b"teleport"))
                    except OSError:
                        return

        threading.Thread(target=down, daemon=True).start()
        threading.Thread(target=pinger, daemon=True).start()
        while True:
            op, masked, mask, data = read_frame(conn)
            rec["masks"].add(mask.hex() if masked else "unmasked")
            if op == 0xA:
                rec["pongs"] += 1
                rec.setdefault("pong_payloads", []).append(data.decode("latin-1"))
            elif op == 0x8:
                break
            elif op in (0x0, 0x2):
                rec["up"] += len(data)
                up.sendall(data)
        up.close()
    except EOFError:
        rec["eof"] = True  # the client closed the connection (no close frame needed)
    except (OSError, ssl.SSLError, RuntimeError) as e:
        rec["error"] = str(e)
    finally:
        rec["masks"] = sorted(rec["masks"])
        log_line(args.log, rec)
        try:
            conn.close()
        except OSError:
            pass


def generate_web_certs(out):
    """A web CA, another unrelated CA and the Proxy's web certificate for 127.0.0.1 /
    localhost, written into out; returns {"ca", "other_ca", "cert", "key"} paths (an
    ACME-like public certificate, played by a private CA given with auth.proxy_ca)."""
    import datetime  # noqa: PLC0415
    import ipaddress  # noqa: PLC0415
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    os.makedirs(out, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def write(name, data):
        p = os.path.join(out, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def ca(cn):
        k = ec.generate_private_key(ec.SECP256R1())
        n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - day).not_valid_after(now + 30 * day)
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .sign(k, hashes.SHA256()))
        return k, c

    ca_key, ca_cert = ca("web test CA")
    _, other_cert = ca("another web CA")
    k = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy")]))
            .issuer_name(ca_cert.subject).public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - day).not_valid_after(now + 30 * day)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key = write("proxy.key", k.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    os.chmod(key, 0o600)
    return {
        "ca": write("web-ca.crt", ca_cert.public_bytes(pem)),
        "other_ca": write("other-web-ca.crt", other_cert.public_bytes(pem)),
        "cert": write("proxy.crt", leaf.public_bytes(pem)),
        "key": key,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--auth", required=True, help="HOST:PORT of the stand-in Auth")
    ap.add_argument("--mode", default="ok",
                    choices=["ok", "notfound", "badaccept", "legacy", "blackhole", "tricky",
                             "badframe", "reset"])
    ap.add_argument("--ping-interval", type=float, default=0.05)
    ap.add_argument("--cluster", default="example.com", help="cluster_name in /webapi/find")
    ap.add_argument("--log")
    ap.add_argument("--port-file")
    ap.add_argument("--die-with-parent", action="store_true")
    args = ap.parse_args()
    if args.die_with_parent:
        raw_h2.watch_parent()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    port = ls.getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w", encoding="ascii") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"PORT {port}", flush=True)

    def serve(raw):
        try:
            raw.settimeout(10)
            conn = ctx.wrap_socket(raw, server_side=True)
            conn.settimeout(None)
        except (OSError, ssl.SSLError) as e:
            log_line(args.log, {"tls_error": str(e)})
            raw.close()
            return
        handle(conn, args)

    while True:
        raw, _ = ls.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(raw,), daemon=True).start()


if __name__ == "__main__":
    main()
