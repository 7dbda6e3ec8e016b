# SPDX-License-Identifier: Apache-2.0
"""backend.py - schema, data and RPC logic of the stand-in Teleport Auth server.

Shared by server.py (grpcio) and raw_h2.py (hand-made HTTP/2 answers), so both
serve the same users, roles and locks.  Pure Python, no networking here:

  Schema    compiles the project's proto/*.proto with protoc into a descriptor
            set and builds message classes from it (no generated files).
  Dataset   users / roles / locks (+ Ping answer, auth preference) from a
            fixtures directory (users/*.txtpb, roles/*.txtpb, locks/*.txtpb,
            optional ping.txtpb and auth_preference.txtpb; .bin files are
            accepted too), from the shared vectors directory, or generated
            for benchmarks.
  Backend   handle(path, request_bytes) -> Reply: Teleport's semantics for
            Ping, UsersService.GetUser/ListUsers, AuthService.GetUser/GetUsers/
            GetRole/ListRoles/GetRoles/GetLocks/GetLock, GetAuthPreference
            (ClusterConfigService and the legacy AuthService one) (API.md
            §2, §4.8, §7).
  Fault     the fault-injection spec: "unimplemented", "delay=2,count=1", ...
"""

import bisect
import os
import random
import subprocess
import tempfile
import time

from google.protobuf import descriptor_pb2, message_factory, text_format

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.path.dirname(os.path.dirname(HERE))
DEFAULT_PROTO_DIR = os.path.join(TOP_SRCDIR, "proto")
FIXTURES_DIR = os.path.join(TOP_SRCDIR, "tests", "fixtures")

GO_ZERO_SECONDS = -62135596800  # 0001-01-01T00:00:00Z, Go's zero time.Time

# gRPC status codes (numbers as on the wire).
CODES = {
    "ok": 0, "cancelled": 1, "unknown": 2, "invalid_argument": 3, "deadline_exceeded": 4,
    "not_found": 5, "already_exists": 6, "permission_denied": 7, "resource_exhausted": 8,
    "failed_precondition": 9, "aborted": 10, "out_of_range": 11, "unimplemented": 12,
    "internal": 13, "unavailable": 14, "data_loss": 15, "unauthenticated": 16,
}

PING = "/proto.AuthService/Ping"
V1_GET_USER = "/teleport.users.v1.UsersService/GetUser"
V1_LIST_USERS = "/teleport.users.v1.UsersService/ListUsers"
GET_USER = "/proto.AuthService/GetUser"
GET_USERS = "/proto.AuthService/GetUsers"
GET_ROLE = "/proto.AuthService/GetRole"
LIST_ROLES = "/proto.AuthService/ListRoles"
GET_ROLES = "/proto.AuthService/GetRoles"
GET_LOCKS = "/proto.AuthService/GetLocks"
GET_LOCK = "/proto.AuthService/GetLock"
V1_GET_AUTH_PREF = "/teleport.clusterconfig.v1.ClusterConfigService/GetAuthPreference"
GET_AUTH_PREF = "/proto.AuthService/GetAuthPreference"
GET_CA = "/teleport.trust.v1.TrustService/GetCertAuthority"
GET_CAS = "/teleport.trust.v1.TrustService/GetCertAuthorities"
WATCH_EVENTS = "/proto.AuthService/WatchEvents"  # served by watch.py (server.py only)

# path -> (request type, response type, server streaming?)
METHODS = {
    PING: ("proto.PingRequest", "proto.PingResponse", False),
    V1_GET_USER: ("teleport.users.v1.GetUserRequest", "teleport.users.v1.GetUserResponse", False),
    V1_LIST_USERS: ("teleport.users.v1.ListUsersRequest", "teleport.users.v1.ListUsersResponse", False),
    GET_USER: ("proto.GetUserRequest", "types.UserV2", False),
    GET_USERS: ("proto.GetUsersRequest", "types.UserV2", True),
    GET_ROLE: ("proto.GetRoleRequest", "types.RoleV6", False),
    LIST_ROLES: ("proto.ListRolesRequest", "proto.ListRolesResponse", False),
    GET_ROLES: ("proto.Empty", "proto.GetRolesResponse", False),
    GET_LOCKS: ("proto.GetLocksRequest", "proto.GetLocksResponse", False),
    GET_LOCK: ("proto.GetLockRequest", "types.LockV2", False),
    # GetAuthPreferenceRequest {} is wire-identical to Empty
    V1_GET_AUTH_PREF: ("proto.Empty", "types.AuthPreferenceV2", False),
    GET_AUTH_PREF: ("proto.Empty", "types.AuthPreferenceV2", False),
    GET_CA: ("teleport.trust.v1.GetCertAuthorityRequest", "types.CertAuthorityV2", False),
    GET_CAS: ("teleport.trust.v1.GetCertAuthoritiesRequest", "teleport.trust.v1.GetCertAuthoritiesResponse", False),
    WATCH_EVENTS: ("proto.Watch", "proto.Event", True),
}

# Server "profiles": which RPCs answer UNIMPLEMENTED, like real releases.
PROFILES = {
    "v16": (),                                   # everything
    "v14": (V1_GET_USER, V1_LIST_USERS, V1_GET_AUTH_PREF),  # before teleport.users.v1
    "v13": (V1_GET_USER, V1_LIST_USERS, LIST_ROLES, V1_GET_AUTH_PREF),
    "v19": (GET_ROLES,),                         # GetRoles removed
    # before teleport.trust.v1 (its Go client read CAs over the HTTP API)
    "v12": (V1_GET_USER, V1_LIST_USERS, LIST_ROLES, V1_GET_AUTH_PREF, GET_CA, GET_CAS),
}

DEFAULT_PAGE_SIZE = 1000


class SchemaError(Exception):
    pass


class Schema:
    """Message classes built from proto/*.proto via `protoc --descriptor_set_out`."""

    def __init__(self, proto_dir=None):
        proto_dir = proto_dir or os.environ.get("TU_PROTO_DIR") or DEFAULT_PROTO_DIR
        files = sorted(f for f in os.listdir(proto_dir) if f.endswith(".proto"))
        if not files:
            raise SchemaError(f"{proto_dir}: no .proto files")
        with tempfile.TemporaryDirectory(prefix="fake-auth-proto-") as tmp:
            out = os.path.join(tmp, "fds.pb")
            r = subprocess.run(["protoc", "-I", proto_dir, "--include_imports",
                                "--descriptor_set_out=" + out] + files,
                               cwd=proto_dir, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise SchemaError(f"protoc failed on {proto_dir}: {r.stderr.strip()}")
            fds = descriptor_pb2.FileDescriptorSet()
            with open(out, "rb") as f:
                fds.ParseFromString(f.read())
        self.proto_dir = proto_dir
        self.classes = message_factory.GetMessages(fds.file)
        missing = [t for m in METHODS.values() for t in m[:2] if t not in self.classes]
        if missing:
            raise SchemaError(f"{proto_dir}: message types missing: {', '.join(sorted(set(missing)))}")

    def new(self, full_name):
        return self.classes[full_name]()

    def parse(self, full_name, data):
        m = self.new(full_name)
        m.ParseFromString(data)
        return m


def _has_field(msg, name):
    return name in msg.DESCRIPTOR.fields_by_name


def _touch(msg, path, zero_time=False):
    """Sets presence on msg.<path> (dotted) like gogo's non-nullable fields; returns it or None."""
    cur = msg
    for part in path.split("."):
        if not _has_field(cur, part):
            return None
        cur = getattr(cur, part)
    if zero_time:
        # Only a field that was never set gets Go's zero time.
        parent_path, _, last = path.rpartition(".")
        parent = msg
        for part in filter(None, parent_path.split(".")):
            parent = getattr(parent, part)
        if not parent.HasField(last):
            cur.seconds = GO_ZERO_SECONDS
    cur.SetInParent()
    return cur


def gogo_fill(kind, msg):
    """Makes msg look like what Teleport's gogo-protobuf marshaller sends (FIELDS.md)."""
    for p in ("Metadata", "Spec"):
        _touch(msg, p)
    if _has_field(msg.Metadata, "Namespace") and not msg.Metadata.Namespace:
        msg.Metadata.Namespace = "default"
    if kind == "user":
        msg.Kind = msg.Kind or "user"
        msg.Version = msg.Version or "v2"
        _touch(msg, "Status")
        _touch(msg, "Spec.Traits")
        _touch(msg, "Spec.Status")
        _touch(msg, "Spec.Status.LockedTime", zero_time=True)
        _touch(msg, "Spec.Status.LockExpires", zero_time=True)
        _touch(msg, "Spec.Expires", zero_time=True)
    elif kind == "role":
        msg.Kind = msg.Kind or "role"
        msg.Version = msg.Version or "v7"
        for side in ("Allow", "Deny"):
            cond = _touch(msg, "Spec." + side)
            _touch(msg, f"Spec.{side}.NodeLabels")
            if cond is not None and _has_field(cond, "Namespaces") and not cond.Namespaces:
                cond.Namespaces.append("default")
        _touch(msg, "Spec.Options")
    elif kind == "lock":
        msg.Kind = msg.Kind or "lock"
        msg.Version = msg.Version or "v2"
        _touch(msg, "Spec.Target")
        _touch(msg, "Spec.CreatedAt", zero_time=True)
    return msg


def ts_seconds(ts_msg):
    """Seconds of a Timestamp field, None when unset or Go zero time."""
    if ts_msg is None or ts_msg.seconds <= GO_ZERO_SECONDS:
        return None
    return ts_msg.seconds + ts_msg.nanos / 1e9


class DatasetError(Exception):
    pass


class Dataset:
    """Users, roles and locks keyed by name, plus an optional Ping template."""

    def __init__(self, schema):
        self.schema = schema
        self.users, self.roles, self.locks = {}, {}, {}
        self.ping = None
        self.auth_pref = None  # types.AuthPreferenceV2; None = the server's default
        self.source = "empty"

    # -- loading --
    def _load_file(self, path, full_name):
        m = self.schema.new(full_name)
        try:
            if path.endswith(".bin"):
                with open(path, "rb") as f:
                    m.ParseFromString(f.read())
            else:
                with open(path, encoding="utf-8") as f:
                    text_format.Parse(f.read(), m, allow_unknown_field=True)
        except (text_format.ParseError, OSError, Exception) as e:  # noqa: B014
            raise DatasetError(f"{path}: {e}") from e
        return m

    def _add(self, kind, msg, where):
        table = {"user": self.users, "role": self.roles, "lock": self.locks}[kind]
        gogo_fill(kind, msg)
        name = msg.Metadata.Name
        if not name:
            raise DatasetError(f"{where}: {kind} has no Metadata.Name")
        if name in table:
            raise DatasetError(f"{where}: duplicate {kind} {name!r}")
        table[name] = msg

    def load_dir(self, path):
        if not os.path.isdir(path):
            raise DatasetError(f"{path}: dataset directory not found")
        for sub, kind, full in (("users", "user", "types.UserV2"), ("roles", "role", "types.RoleV6"),
                                ("locks", "lock", "types.LockV2")):
            d = os.path.join(path, sub)
            if not os.path.isdir(d):
                continue
            for fn in sorted(os.listdir(d)):
                if fn.endswith((".txtpb", ".bin")):
                    p = os.path.join(d, fn)
                    self._add(kind, self._load_file(p, full), p)
        for fn in ("ping.txtpb", "ping.bin"):
            p = os.path.join(path, fn)
            if os.path.exists(p):
                self.ping = self._load_file(p, "proto.PingResponse")
        for fn in ("auth_preference.txtpb", "auth_preference.bin"):
            p = os.path.join(path, fn)
            if os.path.exists(p):
                self.auth_pref = self._load_file(p, "types.AuthPreferenceV2")
        self.source = path
        return self

    def load_vectors(self, path):
        """user_*.bin, role_*.bin, lock_*.bin and ping_response.bin of the shared vectors."""
        if not os.path.isdir(path):
            raise DatasetError(f"{path}: vectors directory not found")
        for fn in sorted(os.listdir(path)):
            p = os.path.join(path, fn)
            for prefix, kind, full in (("user_", "user", "types.UserV2"), ("role_", "role", "types.RoleV6"),
                                       ("lock_", "lock", "types.LockV2")):
                if fn.startswith(prefix) and fn.endswith(".bin"):
                    self._add(kind, self._load_file(p, full), p)
        p = os.path.join(path, "ping_response.bin")
        if os.path.exists(p):
            self.ping = self._load_file(p, "proto.PingResponse")
        self.source = path
        return self

    def generate(self, n_users, n_roles, seed=1):
        """Deterministic bulk data for benchmarks: roles role-NNNN, users userNNNNN@example.com."""
        rnd = random.Random(seed)
        s = self.schema
        for i in range(n_roles):
            r = s.new("types.RoleV6")
            r.Metadata.Name = f"role-{i:04d}"
            allow = r.Spec.Allow
            allow.Logins.append("{{internal.logins}}")
            if i % 3 == 0:
                allow.Logins.append(f"svc{i:04d}")
            env = ["dev"] if i % 2 == 0 else ["prod"]
            allow.NodeLabels.Values["env"].Values.extend(env)
            if _has_field(allow, "HostGroups"):
                allow.HostGroups.extend([f"grp{i % 50:02d}", "developers"])
            if _has_field(r.Spec.Options, "CreateHostUserMode"):
                r.Spec.Options.CreateHostUserMode = 3 if i % 4 != 3 else 4
            self._add("role", r, "generated")
        role_names = sorted(self.roles)
        for i in range(n_users):
            u = s.new("types.UserV2")
            u.Metadata.Name = f"user{i:05d}@example.com"
            if role_names:
                u.Spec.Roles.extend(sorted(set(rnd.sample(role_names, min(len(role_names), 1 + i % 3)))))
            u.Spec.Traits.Values["logins"].Values.append(f"u{i:05d}")
            self._add("user", u, "generated")
        self.source = f"generated:{n_users}x{n_roles}"
        return self


def load_dataset(schema, dataset=None, vectors=None, generate=None):
    """dataset: a name under tests/fixtures or a directory; vectors: a directory;
    generate: (n_users, n_roles).  Several sources merge (names must not clash)."""
    ds = Dataset(schema)
    srcs = []
    if dataset:
        path = dataset if os.path.isdir(dataset) else os.path.join(FIXTURES_DIR, dataset)
        ds.load_dir(path)
        srcs.append(path)
    if vectors:
        ds.load_vectors(vectors)
        srcs.append(vectors)
    if generate:
        ds.generate(*generate)
        srcs.append(ds.source)
    ds.source = " + ".join(srcs) or "empty"
    return ds


# ---------------------------------------------------------------- faults

class FaultError(ValueError):
    pass


class Fault:
    """One fault spec: comma-separated tokens.

      <status>          answer with that gRPC status (unimplemented, permission_denied,
                        unavailable, not_found, resource_exhausted, internal, unknown, ...)
      delay=<seconds>   sleep before answering (can be combined with the others)
      malformed         answer OK with garbage bytes as the message
      oversize=<bytes>  answer OK with a valid message padded to <bytes> bytes
      count=<n>         only the first n (affected) calls of this path are affected
      after=<n>         the first n calls of this path are answered normally
      partial=<n>       (server streams) send the first n messages, then fail with
                        the status given (default unavailable)
      message=<text>    grpc-message for a status fault (no commas)
    """

    def __init__(self, spec):
        self.spec = spec
        self.status = None
        self.delay = 0.0
        self.malformed = False
        self.oversize = None
        self.count = None
        self.after = 0
        self.partial = None
        self.message = None
        self.used = 0
        self.seen = 0
        for tok in filter(None, (t.strip() for t in spec.split(","))):
            key, eq, val = tok.partition("=")
            key = key.lower()
            try:
                if key in CODES and not eq:
                    self.status = key
                elif key == "delay":
                    self.delay = float(val)
                elif key == "malformed" and not eq:
                    self.malformed = True
                elif key == "oversize":
                    self.oversize = int(val)
                elif key == "count":
                    self.count = int(val)
                elif key == "after":
                    self.after = int(val)
                elif key == "partial":
                    self.partial = int(val)
                elif key == "message":
                    self.message = val
                else:
                    raise FaultError(f"fault {spec!r}: unknown token {tok!r}")
            except ValueError as e:
                raise FaultError(f"fault {spec!r}: bad value in {tok!r}") from e

    def take(self):
        """True if this call is affected (after= skips, count= limits)."""
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.count is not None and self.used >= self.count:
            return False
        self.used += 1
        return True

    def __repr__(self):
        return f"Fault({self.spec!r})"


def parse_fault_arg(arg):
    """'PATH=SPEC' (PATH may be '*') -> (path, Fault).  Splits at the first '='
    after the path, which itself contains no '='."""
    path, eq, spec = arg.partition("=")
    if not eq or not path:
        raise FaultError(f"--fault {arg!r}: expected PATH=SPEC")
    if path != "*" and not path.startswith("/"):
        raise FaultError(f"--fault {arg!r}: path must look like /pkg.Service/Method or be *")
    return path, Fault(spec)


def malformed_bytes():
    # A length-delimited field 1 whose length (2^35-ish varint) runs past the end.
    return b"\x0a\xff\xff\xff\xff\x0f\x01\x02"


def pad_message(payload, size):
    """Appends an unknown field 1000 (LEN) so the message is exactly `size` bytes
    (when size leaves room for the 2-byte tag and the length varint; else unchanged)."""
    tag = b"\xc2\x3e"  # field 1000, wire type 2
    room = size - len(payload) - len(tag)
    for vlen in range(1, 6):
        body = room - vlen
        if body >= 0 and len(_varint(body)) == vlen:
            return payload + tag + _varint(body) + b"\x00" * body
    return payload


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# ---------------------------------------------------------------- RPC logic

class Reply:
    """code (int), message (str), payloads (list of bytes; several for a stream)."""

    def __init__(self, code=0, message="", payloads=None):
        self.code, self.message, self.payloads = code, message, payloads or []

    @property
    def code_name(self):
        for k, v in CODES.items():
            if v == self.code:
                return k.upper()
        return str(self.code)


# What a fresh cluster has: a user CA (public half only; its private key was thrown away, so no
# certificate matches it).  Tests serve their own with --ssh-user-ca / ssh_user_ca.
DEFAULT_SSH_USER_CA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_user_ca.pub")


def load_ssh_user_ca(path):
    """OpenSSH public key lines ("[options] <type> <base64> [comment]", '#' comments) -> list of
    "<type> <base64>".  None (no user CA: GetCertAuthority answers NOT_FOUND) for "none" or "";
    the default CA for None; DatasetError when the file has no key."""
    if path is None:
        path = DEFAULT_SSH_USER_CA
    if path in ("", "none"):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise DatasetError(f"ssh_user_ca {path}: {e.strerror}") from e
    keys = []
    for ln in lines:
        words = ln.split()
        if not words or words[0].startswith("#"):
            continue
        for i, w in enumerate(words[:-1]):   # skip authorized_keys options such as cert-authority
            if w.startswith(("ssh-", "ecdsa-", "sk-")):
                keys.append(f"{w} {words[i + 1]}")
                break
    if not keys:
        raise DatasetError(f"ssh_user_ca {path}: no OpenSSH public key in it")
    return keys


def _err(code, msg):
    return Reply(CODES[code], msg)


def _page(names, start, size):
    """Names (sorted) from `start` (first name >= start), at most size; returns (page, next_key)."""
    i = bisect.bisect_left(names, start) if start else 0
    page = names[i:i + size]
    nxt = names[i + size] if len(names) > i + size else ""
    return page, nxt


def _keywords_match(name, keywords):
    return all(k.lower() in name.lower() for k in keywords)


class Backend:
    def __init__(self, schema, dataset, cluster="example.com", server_version="16.4.0",
                 max_page_size=DEFAULT_PAGE_SIZE, hide_expired=False, clock=time.time):
        self.schema = schema
        self.ds = dataset
        self.cluster = cluster
        self.server_version = server_version
        self.max_page_size = max_page_size
        self.hide_expired = hide_expired
        self.clock = clock
        self._sorted_users = self._sorted_roles = None  # reset by put()/delete() (WatchEvents tests)
        self._ser_cache = {}
        # The cluster's SSH user CA: "<type> <base64>" public keys (load_ssh_user_ca); None = the
        # cluster has none to show (GetCertAuthority answers NOT_FOUND).
        self.ssh_user_ca = None

    # -- changes (watch.py: a PUT or DELETE event changes what the lists answer too) --
    def put(self, kind, msg):
        table = {"user": self.ds.users, "role": self.ds.roles, "lock": self.ds.locks}[kind]
        table[msg.Metadata.Name] = msg
        self._ser_cache.pop((kind, msg.Metadata.Name), None)
        self._sorted_users = self._sorted_roles = None

    def delete(self, kind, name):
        table = {"user": self.ds.users, "role": self.ds.roles, "lock": self.ds.locks}[kind]
        table.pop(name, None)
        self._ser_cache.pop((kind, name), None)
        self._sorted_users = self._sorted_roles = None

    # -- helpers --
    def _ser(self, msg):
        return msg.SerializeToString()

    def _bytes(self, kind, name):
        """Serialized resource, cached (the dataset never changes under a Backend)."""
        key = (kind, name)
        b = self._ser_cache.get(key)
        if b is None:
            table = self.ds.users if kind == "user" else self.ds.roles
            b = self._ser_cache[key] = table[name].SerializeToString()
        return b

    def _repeated(self, kind, names, token=""):
        """A response whose field 1 repeats the named resources and field 2 is
        the next-page token: built from cached bytes (wire-identical to
        protobuf's own serializer, fast for 100k users)."""
        out = bytearray()
        for n in names:
            b = self._bytes(kind, n)
            out += b"\x0a" + _varint(len(b)) + b
        if token:
            t = token.encode()
            out += b"\x12" + _varint(len(t)) + t
        return bytes(out)

    def _visible_users(self):
        if self._sorted_users is None:
            self._sorted_users = sorted(self.ds.users)
            self._sorted_roles = sorted(self.ds.roles)
        names = self._sorted_users
        if self.hide_expired:
            names = [n for n in names if not self._expired(self.ds.users[n])]
        return names

    def _expired(self, u):
        exp = ts_seconds(u.Metadata.Expires) if u.Metadata.HasField("Expires") else None
        return exp is not None and exp <= self.clock()

    def _user_or_err(self, name):
        if not name:
            return None, _err("invalid_argument", "missing username")
        u = self.ds.users.get(name)
        if u is None or (self.hide_expired and self._expired(u)):
            return None, _err("not_found", f'user "{name}" is not found')
        return u, None

    def ping(self, peer=""):
        p = self.schema.new("proto.PingResponse")
        if self.ds.ping is not None:
            p.CopyFrom(self.ds.ping)
        if not p.ClusterName:
            p.ClusterName = self.cluster
        if not p.ServerVersion or self.server_version:
            p.ServerVersion = self.server_version or p.ServerVersion
        if not p.ProxyPublicAddr:
            p.ProxyPublicAddr = f"proxy.{p.ClusterName}:443"
        if peer:
            p.RemoteAddr = peer
        f = p.ServerFeatures
        for name in ("Kubernetes", "App", "DB", "Desktop", "AdvancedAccessWorkflows"):
            if _has_field(f, name):
                setattr(f, name, True)
        return p

    def auth_pref(self):
        """The dataset's auth preference, else what a fresh cluster has (local, otp, no MFA)."""
        p = self.schema.new("types.AuthPreferenceV2")
        if self.ds.auth_pref is not None:
            p.CopyFrom(self.ds.auth_pref)
        p.Kind = p.Kind or "cluster_auth_preference"
        p.Version = p.Version or "v2"
        p.Metadata.Name = p.Metadata.Name or "cluster-auth-preference"
        p.Spec.Type = p.Spec.Type or "local"
        return p

    def user_ca(self):
        """types.CertAuthorityV2 of type user for this cluster, public keys only (as with include_key
        false): the first key active, the others additional trusted keys (a rotation)."""
        ca = self.schema.new("types.CertAuthorityV2")
        ca.Kind = "cert_authority"
        ca.SubKind = "user"
        ca.Version = "v2"
        ca.Metadata.Name = self.cluster
        ca.Spec.Type = "user"
        ca.Spec.ClusterName = self.cluster
        for i, key in enumerate(self.ssh_user_ca or ()):
            ks = ca.Spec.ActiveKeys if i == 0 else ca.Spec.AdditionalTrustedKeys
            ks.SSH.add().PublicKey = (key + "\n").encode()
        return ca

    # -- dispatch --
    def handle(self, path, req_bytes, peer=""):
        """Returns a Reply for one call.  Unknown path -> UNIMPLEMENTED like grpc-go."""
        if path not in METHODS:
            svc, _, meth = path.strip("/").partition("/")
            return _err("unimplemented", f"unknown method {meth} for service {svc}")
        req_type, _, _ = METHODS[path]
        try:
            req = self.schema.parse(req_type, req_bytes)
        except Exception as e:  # protobuf DecodeError
            return _err("internal", f"grpc: error unmarshalling request: {e}")
        s = self.schema
        if path == PING:
            return Reply(payloads=[self._ser(self.ping(peer))])
        if path == V1_GET_USER:
            if req.with_secrets:
                return _err("permission_denied", "access denied")
            if req.current_user:
                return _err("not_found", "current user is a builtin role, not a user")
            u, e = self._user_or_err(req.name)
            if e:
                return e
            r = s.new("teleport.users.v1.GetUserResponse")
            r.user.CopyFrom(u)
            return Reply(payloads=[self._ser(r)])
        if path == GET_USER:
            if req.WithSecrets:
                return _err("permission_denied", "access denied")
            u, e = self._user_or_err(req.Name)
            return e or Reply(payloads=[self._ser(u)])
        if path == V1_LIST_USERS:
            if req.with_secrets:
                return _err("permission_denied", "access denied")
            if req.page_size < 0:
                return _err("invalid_argument", "negative page size")
            size = min(req.page_size or self.max_page_size, self.max_page_size)
            names = self._visible_users()
            if req.HasField("filter") and req.filter.SearchKeywords:
                names = [n for n in names if _keywords_match(n, req.filter.SearchKeywords)]
            page, nxt = _page(names, req.page_token, size)
            return Reply(payloads=[self._repeated("user", page, nxt)])
        if path == GET_USERS:
            if req.WithSecrets:
                return _err("permission_denied", "access denied")
            return Reply(payloads=[self._bytes("user", n) for n in self._visible_users()])
        if path == GET_ROLE:
            if not req.Name:
                return _err("invalid_argument", "missing role name")
            r = self.ds.roles.get(req.Name)
            if r is None:
                return _err("not_found", f'role "{req.Name}" is not found')
            return Reply(payloads=[self._ser(r)])
        if path == LIST_ROLES:
            if req.Limit < 0:
                return _err("invalid_argument", "negative limit")
            size = min(req.Limit or self.max_page_size, self.max_page_size)
            self._visible_users()  # fills the sorted-name caches
            names = self._sorted_roles
            if req.HasField("Filter"):
                if req.Filter.SearchKeywords:
                    names = [n for n in names if _keywords_match(n, req.Filter.SearchKeywords)]
                if req.Filter.SkipSystemRoles:
                    names = [n for n in names
                             if self.ds.roles[n].Metadata.Labels.get("teleport.internal/resource-type") != "system"]
            page, nxt = _page(names, req.StartKey, size)
            return Reply(payloads=[self._repeated("role", page, nxt)])
        if path == GET_ROLES:
            return Reply(payloads=[self._repeated("role", sorted(self.ds.roles))])
        if path == GET_LOCK:
            if not req.Name:
                return _err("invalid_argument", "missing lock name")
            lk = self.ds.locks.get(req.Name)
            if lk is None:
                return _err("not_found", f'lock "{req.Name}" is not found')
            return Reply(payloads=[self._ser(lk)])
        if path == GET_LOCKS:
            r = s.new("proto.GetLocksResponse")
            for n in sorted(self.ds.locks):
                lk = self.ds.locks[n]
                if req.InForceOnly and not self.lock_in_force(lk):
                    continue
                if req.Targets and not any(self.target_matches(t, lk.Spec.Target) for t in req.Targets):
                    continue
                r.Locks.add().CopyFrom(lk)
            return Reply(payloads=[self._ser(r)])
        if path in (V1_GET_AUTH_PREF, GET_AUTH_PREF):
            return Reply(payloads=[self._ser(self.auth_pref())])
        if path == GET_CA:
            if req.include_key:
                # The Node role holds cert_authority readnosecrets only.
                return _err("permission_denied", "access denied to perform action \"read\" on \"cert_authority\"")
            if req.type != "user" or req.domain != self.cluster or self.ssh_user_ca is None:
                return _err("not_found", f"key \"/authorities/{req.type}/{req.domain}\" is not found")
            return Reply(payloads=[self._ser(self.user_ca())])
        if path == GET_CAS:
            if req.include_key:
                return _err("permission_denied", "access denied to perform action \"read\" on \"cert_authority\"")
            r = s.new("teleport.trust.v1.GetCertAuthoritiesResponse")
            if req.type == "user" and self.ssh_user_ca is not None:
                r.cert_authorities_v2.add().CopyFrom(self.user_ca())
            return Reply(payloads=[self._ser(r)])
        return _err("unimplemented", f"method {path} not implemented by the fake")

    def lock_in_force(self, lock):
        if not lock.Spec.HasField("Expires"):
            return True
        exp = ts_seconds(lock.Spec.Expires)
        return exp is None or self.clock() < exp

    def caller_lock(self, peer_cn):
        """The first lock in force on the calling host identity (CN <uuid>.<cluster>), or None."""
        ids = {peer_cn, peer_cn.split(".", 1)[0]}
        for n in sorted(self.ds.locks):
            lk = self.ds.locks[n]
            t = lk.Spec.Target
            hosts = {getattr(t, f) for f in ("ServerID", "Node") if _has_field(t, f)} - {""}
            if hosts & ids and self.lock_in_force(lk):
                return lk
        return None

    @staticmethod
    def target_matches(query, target):
        """Teleport's LockTarget.Match: query non-empty and every non-empty field equal."""
        fields = [f.name for f in query.DESCRIPTOR.fields if f.type == f.TYPE_STRING]
        set_fields = [f for f in fields if getattr(query, f)]
        if not set_fields:
            return False
        return all(getattr(query, f) == getattr(target, f) for f in set_fields)
