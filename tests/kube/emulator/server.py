"""A Kubernetes API emulator on 127.0.0.1: what the real kubernetes client needs to talk to a "cluster".

One `Emulator` is one cluster: a threaded HTTP(S) server on an ephemeral loopback port in front of
a `MemoryApiServer` (objects, resourceVersions, server-side apply with managedFields, watches).
It serves discovery (`/api`, `/apis`, resource lists), GET/LIST/WATCH, POST, PUT, PATCH
(apply, merge, strategic-merge treated as merge), DELETE with preconditions and the status
subresource; checks bearer tokens (an admin token, and service-account tokens the token
controller issues); logs every request; and injects faults (`emulator.faults`).

Lists are paginated as the API server does it with etcd: `limit` gives a page and an opaque
`continue` token (base64 JSON of the snapshot's resourceVersion and the last key served); every
later page is read from that snapshot and carries its resourceVersion; `remainingItemCount` is set
unless a selector makes it unknown. A token whose snapshot the history no longer reaches answers
410 `Expired` (with a token to carry on inconsistently, as etcd's compaction does); a malformed
one 400, as the API server does.

Not modelled: RBAC (any valid token may do anything), admission, schema validation, field
selectors other than `metadata.name`, associative-list merging in apply (lists are atomic).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from meshrules.kube import resources as R
from meshrules.kube.memory import MemoryApiServer, StoreError
from meshrules.kube.resources import ApiResource, resource_of

from .faults import Faults

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Bookmarks keep idle watchers' resourceVersions fresh (as the real API server does about once a minute).
BOOKMARK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Request:
    """One request the emulator answered (or refused)."""

    method: str
    path: str
    query: Mapping[str, str]
    content_type: str
    user_agent: str
    status: int
    watch: bool = False

    @property
    def is_write(self) -> bool:
        """Whether the request writes (POST, PUT, PATCH, DELETE)."""
        return self.method in WRITE_METHODS


@dataclass
class Emulator:
    """One emulated cluster on 127.0.0.1 (ephemeral port); use as a context manager or start/stop."""

    name: str = "cluster"
    resources: tuple[ApiResource, ...] = R.ALL
    namespaces: tuple[str, ...] = ("default", "kube-system")
    tls: bool = False
    history: int = 10_000
    store: MemoryApiServer = field(init=False)
    faults: Faults = field(default_factory=Faults, init=False)
    admin_token: str = field(default_factory=lambda: "admin-" + secrets.token_urlsafe(16), init=False)
    requests: list[Request] = field(default_factory=list, init=False)
    # Called with each answered request before its answer is sent: a test changes the cluster
    # between two requests of one client call (say, between two pages of a list).
    on_answer: Callable[[Request], None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._ca_pem = ""
        self._ssl: ssl.SSLContext | None = None
        if self.tls:
            from .tls import server_context

            self._ssl, self._ca_pem = server_context()
        self.store = MemoryApiServer(resources=self.resources, history=self.history, ca_pem=self._ca_pem or _FAKE_CA)
        for ns in self.namespaces:
            self.store.create(
                R.NAMESPACE, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, "kube"
            )
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Listen on 127.0.0.1 (a fresh ephemeral port, or the previous one after `stop`)."""
        self.stopping.clear()
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.emulator = self
        if self._ssl is not None:
            server.socket = self._ssl.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (watches end)."""
        self.stopping.set()
        self.store.wake()
        server = self._server
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API server URL."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> str:
        """The CA that signed the TLS certificate (empty without TLS)."""
        return self._ca_pem

    # --- kubeconfig --------------------------------------------------------------------------

    def kubeconfig(self, context: str | None = None, token: str | None = None) -> dict[str, Any]:
        """A kubeconfig with one context (named ``context`` or the emulator's name) for this emulator."""
        ctx = context or self.name
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls:
            import base64

            cluster["certificate-authority-data"] = base64.b64encode(self._ca_pem.encode()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": ctx, "cluster": cluster}],
            "users": [{"name": ctx, "user": {"token": token or self.admin_token}}],
            "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
            "current-context": ctx,
        }

    # --- state -------------------------------------------------------------------------------

    def seed(self, objects: Iterable[Mapping[str, Any]], create_namespaces: bool = True) -> None:
        """Create objects as users and controllers would (namespaces first, then status as written)."""
        objs = sorted(objects, key=lambda o: o.get("kind") != "Namespace")
        for obj in objs:
            res = resource_of(obj)
            if res is None or not self.store.serves(res):
                continue
            meta = obj.get("metadata") or {}
            namespace = str(meta.get("namespace") or ("default" if res.namespaced else ""))
            if create_namespaces and res.namespaced and not self._has_namespace(namespace):
                self.store.create(R.NAMESPACE, "", {"metadata": {"name": namespace}}, "kubectl")
            created = self.store.create(res, namespace, obj, "kubectl")
            if res.status and obj.get("status"):
                self.store.replace(
                    res,
                    namespace,
                    created["metadata"]["name"],
                    {**created, "status": obj["status"]},
                    "controller",
                    "status",
                )

    def _has_namespace(self, name: str) -> bool:
        try:
            self.store.get(R.NAMESPACE, "", name)
        except StoreError:
            return False
        return True

    def writes(self, since: int = 0) -> list[Request]:
        """Write requests answered since request number ``since``."""
        with self._lock:
            return [r for r in self.requests[since:] if r.is_write]

    def mark(self) -> int:
        """The number of requests so far (pass it to `writes(since=…)`)."""
        with self._lock:
            return len(self.requests)

    def _log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def valid_token(self, token: str) -> bool:
        """The admin token, or a token the token controller issued and has not revoked."""
        return token == self.admin_token or token in self.store.tokens


_FAKE_CA = "-----BEGIN CERTIFICATE-----\nZW11bGF0b3IgQ0E=\n-----END CERTIFICATE-----\n"


class _Server(ThreadingHTTPServer):
    # A controller opens one watch per kind at once; the default backlog (5) drops their SYNs.
    request_queue_size = 256
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    emulator: Emulator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without this, Nagle + delayed ACK add 40 ms each.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator keeps its own request log."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # --- dispatch ------------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        emu = self.server.emulator
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        is_watch = method == "GET" and query.get("watch") in ("true", "1")
        record = {
            "method": method,
            "path": parts.path,
            "query": query,
            "content_type": self.headers.get("Content-Type", ""),
            "user_agent": self.headers.get("User-Agent", ""),
            "watch": is_watch,
        }
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not emu.valid_token(auth[len("Bearer ") :]):
            emu._log(Request(**record, status=401))
            self._send_error(StoreError(401, "Unauthorized", "Unauthorized"))
            return
        status, delay = emu.faults.match(method, parts.path, is_watch)
        if delay and emu.stopping.wait(delay):
            self.close_connection = True
            return
        if status == 0:
            emu._log(Request(**record, status=0))
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if status is not None:
            emu._log(Request(**record, status=status))
            self._send_error(
                StoreError(status, "InternalError" if status >= 500 else "Conflict", f"injected fault {status}")
            )
            return
        try:
            if is_watch:
                emu._log(Request(**record, status=200))
                self._watch(parts.path, query)
                return
            code, body = self._route(method, parts.path, query, raw)
        except StoreError as err:
            emu._log(Request(**record, status=err.status))
            self._send_error(err)
            return
        answered = Request(**record, status=code)
        emu._log(answered)
        if emu.on_answer is not None:
            emu.on_answer(answered)
        self._send_json(code, body)

    def _route(self, method: str, path: str, query: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        emu = self.server.emulator
        store = emu.store
        segments = [s for s in path.split("/") if s]
        if method == "GET":
            found = _discovery(store, segments)
            if found is not None:
                return 200, found
        target = _target(store, segments)
        if target is None:
            raise StoreError(404, "NotFound", "the server could not find the requested resource")
        res, namespace, name, sub = target
        if sub and (sub != "status" or not res.status):
            raise StoreError(404, "NotFound", "the server could not find the requested resource")
        manager = query.get("fieldManager") or emu_default_manager(self.headers.get("User-Agent", ""))
        if method == "GET":
            if name:
                return 200, store.get(res, namespace, name)
            return 200, _list(store, res, namespace, query)
        body = _parse_body(raw, self.headers.get("Content-Type", ""))
        if method == "POST" and not name:
            _check_coords(res, body, namespace, None)
            return 201, store.create(res, namespace, body, manager)
        if not name:
            raise StoreError(405, "MethodNotAllowed", f"{method} needs an object name")
        if method == "PUT":
            _check_coords(res, body, namespace, name)
            return 200, store.replace(res, namespace, name, body, manager, sub)
        if method == "PATCH":
            kind = self.headers.get("Content-Type", "").split(";")[0].strip()
            if kind == "application/apply-patch+yaml":
                if not query.get("fieldManager"):
                    raise StoreError(
                        422, "Invalid", "PatchOptions.meta.k8s.io is invalid: fieldManager: Required value"
                    )
                _check_coords(res, body, namespace, name)
                force = query.get("force") in ("true", "1")
                return 200, store.apply(res, namespace, name, body, manager, force, sub)
            if kind in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                return 200, store.merge_patch(res, namespace, name, body, manager, sub)
            raise StoreError(415, "UnsupportedMediaType", f"the patch type {kind!r} is not supported here")
        if method == "DELETE":
            return 200, store.delete(res, namespace, name, (body or {}).get("preconditions"))
        raise StoreError(405, "MethodNotAllowed", f"{method} is not supported")

    def _watch(self, path: str, query: Mapping[str, str]) -> None:
        emu = self.server.emulator
        store = emu.store
        target = _target(store, [s for s in path.split("/") if s])
        if target is None or target[2]:
            raise StoreError(404, "NotFound", "the server could not find the requested resource")
        res, namespace, _, _ = target
        selector = query.get("labelSelector", "")
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        drops = emu.faults.drops
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        rv_text = query.get("resourceVersion", "")
        try:
            if rv_text in ("", "0"):
                # No resourceVersion: the current state as ADDED events, then changes.
                items, list_rv = store.list(res, namespace, selector)
                for item in items:
                    self._chunk({"type": "ADDED", "object": item})
                after = int(list_rv)
            else:
                after = int(rv_text)
            last_sent = time.monotonic()
            stopped = lambda: emu.stopping.is_set() or emu.faults.drops != drops  # noqa: E731
            while time.monotonic() < deadline and not stopped():
                wait_until = min(deadline, time.monotonic() + BOOKMARK_SECONDS)
                events, scanned = store.wait_events(res, after, namespace, selector, wait_until, stopped)
                if stopped():
                    break
                for typ, obj in events:
                    self._chunk({"type": typ, "object": obj})
                    after = max(after, int(obj["metadata"]["resourceVersion"]))
                    last_sent = time.monotonic()
                if bookmarks and not events and time.monotonic() - last_sent >= BOOKMARK_SECONDS:
                    after = max(after, scanned)
                    self._chunk(
                        {
                            "type": "BOOKMARK",
                            "object": {
                                "kind": res.kind,
                                "apiVersion": res.api_version,
                                "metadata": {"resourceVersion": str(after)},
                            },
                        }
                    )
                    last_sent = time.monotonic()
        except StoreError as err:
            # A watch that cannot resume gets an ERROR event, not an error status.
            self._chunk({"type": "ERROR", "object": err.body()})
        except OSError:
            self.close_connection = True
            return
        if emu.stopping.is_set() or emu.faults.drops != drops:
            # Dropped: end the stream without its final chunk, as a broken connection would.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    # --- responses -----------------------------------------------------------------------------

    def _chunk(self, event: Mapping[str, Any]) -> None:
        data = json.dumps(event).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _send_error(self, err: StoreError) -> None:
        self._send_json(err.status, err.body())


def emu_default_manager(user_agent: str) -> str:
    """The field manager of a write without `fieldManager`: the user agent's program name."""
    return user_agent.split("/")[0].strip() or "unknown"


def _parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = yaml.safe_load(raw) if "yaml" in content_type else json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise StoreError(400, "BadRequest", f"cannot parse the body: {exc}") from None
    if not isinstance(body, dict):
        raise StoreError(400, "BadRequest", "the body is not an object")
    return body


def _check_coords(res: ApiResource, body: Mapping[str, Any], namespace: str, name: str | None) -> None:
    meta = body.get("metadata") or {}
    if name is not None and meta.get("name") not in (None, name):
        raise StoreError(400, "BadRequest", "the name of the object does not match the name in the URL")
    if res.namespaced and meta.get("namespace") not in (None, "", namespace):
        raise StoreError(400, "BadRequest", "the namespace of the object does not match the namespace in the URL")


# The API server's words for a continue token whose snapshot etcd has compacted away.
CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a "
    "new list without the continue parameter, or use the continue token in this response to retrieve "
    "the remainder of the results. Continuing with the provided token results in an inconsistent list "
    "- objects that were created, modified, or deleted between the time the first chunk was returned "
    "and now may show up in the list."
)


class _ContinueExpired(StoreError):
    """410 for a compacted continue token; its Status carries a token to continue inconsistently."""

    def __init__(self, token: str) -> None:
        super().__init__(410, "Expired", CONTINUE_EXPIRED)
        self.token = token

    def body(self) -> dict[str, Any]:
        out = super().body()
        out["metadata"] = {"continue": self.token}
        return out


def _list(store: MemoryApiServer, res: ApiResource, namespace: str, query: Mapping[str, str]) -> dict[str, Any]:
    """One LIST answer: every item, or with `limit` one page of a consistent snapshot."""
    selector, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
    try:
        limit = max(0, int(query.get("limit") or 0))
    except ValueError:
        raise StoreError(400, "BadRequest", f"invalid limit: {query.get('limit')!r}") from None
    token = query.get("continue", "")
    # Keys name objects within the list: `name` in one namespace or cluster-wide, else `ns/name`.
    with_ns = res.namespaced and not namespace
    if token:
        if query.get("resourceVersion"):
            raise StoreError(400, "BadRequest", "specifying resource version is not allowed when using continue")
        rv, start = _decode_continue(token, with_ns)
        if rv == -1:
            # A token handed out with a 410: carry on from the current state, inconsistently.
            items, current = store.list(res, namespace, selector)
            rv = int(current)
        else:
            try:
                items = store.list_at(res, rv, namespace, selector)
            except StoreError as err:
                if err.status == 410:
                    raise _ContinueExpired(_encode_continue(-1, start, with_ns)) from None
                raise
        items = [i for i in items if _position(i, with_ns) > start]
    else:
        items, current = store.list(res, namespace, selector)
        rv = int(current)
    items = _field_selected(items, fields)
    page, rest = (items[:limit], items[limit:]) if limit else (items, [])
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if rest:
        meta["continue"] = _encode_continue(rv, _position(page[-1], with_ns), with_ns)
        if not selector and not fields:
            # Unknown with a selector: the items left are not all matches (the API server omits it too).
            meta["remainingItemCount"] = len(rest)
    for item in page:
        # As the real API server does: list items carry no apiVersion/kind.
        item.pop("apiVersion", None)
        item.pop("kind", None)
    return {"apiVersion": res.api_version, "kind": f"{res.kind}List", "metadata": meta, "items": page}


def _position(item: Mapping[str, Any], with_ns: bool) -> tuple[str, str]:
    """Where an item sorts in a list (the store lists by namespace, then name)."""
    meta = item.get("metadata") or {}
    return (str(meta.get("namespace") or "") if with_ns else "", str(meta.get("name", "")))


def _encode_continue(rv: int, after: tuple[str, str], with_ns: bool) -> str:
    # The API server's token: base64 of {"v", "rv", "start"}, `start` the next key to read
    # (the last one served followed by NUL, so it sorts right after it).
    key = f"{after[0]}/{after[1]}" if with_ns else after[1]
    data = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": key + "\x00"}).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode_continue(token: str, with_ns: bool) -> tuple[int, tuple[str, str]]:
    """The snapshot resourceVersion and the position served last; 400 for a token the server never made."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or data.get("v") != "meta.k8s.io/v1":
            raise ValueError("not a meta.k8s.io/v1 continue token")
        rv, start = data["rv"], data["start"]
        if not isinstance(rv, int) or isinstance(rv, bool) or rv < -1 or not isinstance(start, str):
            raise ValueError("bad resource version or key")
        if not start.endswith("\x00") or start.count("/") != (1 if with_ns else 0):
            raise ValueError("continue key is not valid")
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise StoreError(400, "BadRequest", f"invalid continue token: {exc}") from None
    key = start[:-1]
    namespace, _, name = key.rpartition("/")
    return rv, (namespace, name)


def _field_selected(items: list[dict[str, Any]], selector: str) -> list[dict[str, Any]]:
    if not selector:
        return items
    wanted = dict(term.split("=", 1) for term in selector.split(",") if "=" in term)
    name = wanted.get("metadata.name")
    return [i for i in items if name is None or i["metadata"]["name"] == name]


def _target(store: MemoryApiServer, segments: list[str]) -> tuple[ApiResource, str, str, str] | None:
    """``(resource, namespace, name, subresource)`` of a resource URL."""
    if segments[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", segments[2:]
    elif len(segments) >= 3 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        return None
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and _lookup(store, group, version, rest[2]) is not None:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    res = _lookup(store, group, version, rest[0])
    if res is None:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if not res.namespaced and namespace:
        return None
    return res, namespace, name, sub


def _lookup(store: MemoryApiServer, group: str, version: str, plural: str) -> ApiResource | None:
    res = store.resource(group, plural)
    if res is None:
        return None
    return res if res.version == version else res.with_version(version) if version in _versions(store, group) else None


def _versions(store: MemoryApiServer, group: str) -> set[str]:
    return {r.version for r in store.resources if r.group == group}


def _discovery(store: MemoryApiServer, segments: list[str]) -> Any:
    """Discovery documents, or None when the path is not a discovery path."""
    if segments == ["version"]:
        return {"major": "1", "minor": "31", "gitVersion": "v1.31.0-meshrules-emulator", "platform": "linux/amd64"}
    if segments == ["api"]:
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if segments == ["apis"]:
        groups: dict[str, set[str]] = {}
        for res in store.resources:
            if res.group:
                groups.setdefault(res.group, set()).add(res.version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in sorted(vs)],
                    "preferredVersion": {"groupVersion": f"{g}/{max(vs)}", "version": max(vs)},
                }
                for g, vs in sorted(groups.items())
            ],
        }
    if segments == ["api", "v1"]:
        return _resource_list(store, "", "v1")
    if len(segments) == 3 and segments[0] == "apis":
        if segments[2] not in _versions(store, segments[1]):
            raise StoreError(404, "NotFound", "the server could not find the requested resource")
        return _resource_list(store, segments[1], segments[2])
    return None


def _resource_list(store: MemoryApiServer, group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for res in sorted(store.resources, key=lambda r: r.plural):
        if res.group != group or res.version != version:
            continue
        resources.append(
            {
                "name": res.plural,
                "singularName": res.kind.lower(),
                "namespaced": res.namespaced,
                "kind": res.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
        )
        if res.status:
            resources.append(
                {
                    "name": f"{res.plural}/status",
                    "singularName": "",
                    "namespaced": res.namespaced,
                    "kind": res.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
