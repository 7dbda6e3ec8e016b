# SPDX-License-Identifier: Apache-2.0
"""fake_dns.py - a tiny DNS server over UDP for the resolver tests (issue 14 F1).

FakeDNS(address, records=None, drop=False).start() listens on address:53 in a
thread of the test process:
  drop=True   reads every query and never answers (a DNS server that is down
              behind a firewall that drops, the case that hung logins);
  otherwise   answers A/AAAA queries for the names in records
              ({"name": ["127.0.0.1", "::1"]}) and NXDOMAIN for any other name.
.queries lists (name, qtype) of every query received.  .stop() closes it.
Written for these tests from RFC 1035's message format.
"""

import ipaddress
import socket
import struct
import threading


def _qname(msg, off):
    labels = []
    while off < len(msg) and msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels).lower(), off + 1


class FakeDNS:
    def __init__(self, address, records=None, drop=False, port=53, ttl=60):
        self.address, self.port, self.drop, self.ttl = address, port, drop, ttl
        self.records = {k.lower().rstrip("."): v for k, v in (records or {}).items()}
        self.queries = []
        self._sock = None
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.address, self.port))
        s.settimeout(0.1)
        self._sock = s
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if self._sock:
            self._sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                msg, peer = self._sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(msg) < 17:
                continue
            name, off = _qname(msg, 12)
            if off + 4 > len(msg):
                continue
            qtype = struct.unpack("!H", msg[off:off + 2])[0]
            self.queries.append((name, qtype))
            if self.drop:
                continue
            self._sock.sendto(self._answer(msg, off + 4, name, qtype), peer)

    def _answer(self, query, qend, name, qtype):
        qid = query[:2]
        if name not in self.records:
            return qid + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + query[12:qend]
        rrs = b""
        n = 0
        for a in self.records[name]:
            ip = ipaddress.ip_address(a)
            if (ip.version == 4 and qtype != 1) or (ip.version == 6 and qtype != 28):
                continue
            rrs += struct.pack("!HHHIH", 0xC00C, qtype, 1, self.ttl, len(ip.packed)) + ip.packed
            n += 1
        return qid + struct.pack("!HHHHH", 0x8180, 1, n, 0, 0) + query[12:qend] + rrs
