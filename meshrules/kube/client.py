"""`KubeCluster`: the `Cluster` interface on the official kubernetes client — the one module that imports it.

The client is used for what it does well and what must match kubectl: loading kubeconfig
contexts (exec plugins, client certificates, in-cluster service accounts), TLS, authentication
headers and connection pooling. Requests are built from `meshrules.kube.resources` paths through
`ApiClient.param_serialize` / `call_api`, the same path the client's own dynamic client takes,
without its on-disk discovery cache. Responses are JSON dicts with the API's camelCase keys.

Every call has a connect and a read timeout. Errors become `ClusterError`s naming the cluster and
the object; kubeconfig contents and tokens are never put in a message or a log.

Lists are read in pages (`limit` and `continue`, as client-go's pager does), so a large cluster
never has to build, send and hold one huge response; every `Cluster.list` caller (informers,
snapshot, apply's live read, registration) gets that for free.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from meshrules import __version__
from meshrules.errors import ClusterError, Location
from meshrules.kube import resources as R
from meshrules.kube.cluster import (
    BAD_KUBECONFIG,
    FIELD_MANAGER,
    UNREACHABLE,
    ApiError,
    Object,
    ObjectList,
    Unreachable,
    WatchEvent,
    WatchExpired,
    api_error,
    object_location,
)
from meshrules.kube.resources import ApiResource, resource_of

# How long discovery answers (which kinds a cluster serves) are trusted: CRDs come and go rarely.
SERVED_TTL_SECONDS = 60.0
# Connections kept per cluster: a controller holds one watch per input kind (about 25) plus writers.
POOL_SIZE = 64
# Items per list page: client-go's pager default. Large enough that most kinds fit in one request,
# small enough that the API server serves a 50 000-Pod cluster without one giant response.
LIST_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect and read timeouts (seconds) of every request; watches add their server timeout."""

    connect: float = 5.0
    read: float = 30.0


class KubeCluster:
    """A live cluster reached through the kubernetes client."""

    def __init__(self, name: str, api_client: Any, timeouts: Timeouts = Timeouts(), identity: str = "") -> None:
        self._name = name
        self._api = api_client
        self.timeouts = timeouts
        configuration = api_client.configuration
        # A stale pooled connection is retried once; a request that reached the server is not.
        configuration.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
        # One connection per concurrent watch and writer; the default (5 per CPU) discards connections.
        configuration.connection_pool_maxsize = POOL_SIZE
        api_client.rest_client = k8s_client.rest.RESTClientObject(configuration)
        api_client.user_agent = f"meshrules/{__version__}" + (f" ({identity})" if identity else "")
        self._served: tuple[float, dict[tuple[str, str], str]] | None = None
        self.served_ttl = SERVED_TTL_SECONDS
        self.page_size = LIST_PAGE_SIZE  # 0: one unpaginated list
        self._lock = threading.Lock()

    # --- construction --------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls,
        context: str | None = None,
        kubeconfig: str | Path | None = None,
        *,
        name: str | None = None,
        timeouts: Timeouts = Timeouts(),
        identity: str = "",
    ) -> KubeCluster:
        """A cluster from a kubeconfig file's context (the current one when None).

        Without a kubeconfig file (none given, `$KUBECONFIG` unset, no `~/.kube/config`), the
        in-cluster service account is used, as a controller running in a pod needs.
        """
        configuration = k8s_client.Configuration()
        where = str(kubeconfig) if kubeconfig else "the default kubeconfig"
        try:
            if kubeconfig is None and not _default_kubeconfig_exists():
                k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=str(kubeconfig) if kubeconfig else None,
                    context=context,
                    client_configuration=configuration,
                    # Never write the user's kubeconfig back (token refreshes stay in memory).
                    persist_config=False,
                )
        except (k8s_config.ConfigException, OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise _config_error(context, where, exc) from None
        return cls(name or context or "current-context", k8s_client.ApiClient(configuration), timeouts, identity)

    @classmethod
    def from_kubeconfig_text(
        cls, text: str, *, name: str, timeouts: Timeouts = Timeouts(), identity: str = ""
    ) -> KubeCluster:
        """A cluster from kubeconfig text (a registered cluster's Secret); its current context."""
        configuration = k8s_client.Configuration()
        try:
            data = yaml.safe_load(text)
            k8s_config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
                data, client_configuration=configuration, persist_config=False
            )
        except (k8s_config.ConfigException, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _config_error(None, f"the kubeconfig Secret of cluster `{name}`", exc) from None
        return cls(name, k8s_client.ApiClient(configuration), timeouts, identity)

    @property
    def name(self) -> str:
        """The cluster name used in messages."""
        return self._name

    @property
    def server(self) -> str:
        """The API server URL."""
        return str(self._api.configuration.host)

    def ca_pem(self) -> str | None:
        """The CA bundle this client trusts for the API server, if one is configured."""
        path = self._api.configuration.ssl_ca_cert
        if path:
            try:
                return Path(path).read_text(encoding="utf-8")
            except OSError:
                return None
        return None

    def close(self) -> None:
        """Release pooled connections."""
        self._api.rest_client.pool_manager.clear()

    # --- discovery ---------------------------------------------------------------------------

    def served(self) -> dict[tuple[str, str], str]:
        """`(group, kind)` → version of the registry's kinds this server serves (cached for a minute)."""
        with self._lock:
            if self._served is not None and time.monotonic() - self._served[0] < self.served_ttl:
                return dict(self._served[1])
        found: dict[tuple[str, str], str] = {}
        wanted = {(r.group, r.kind): r for r in R.ALL}
        core = self._json("GET", "/api/v1", verb="discover")
        for item in core.get("resources", ()):
            if ("", item.get("kind")) in wanted and "/" not in item.get("name", ""):
                found[("", item["kind"])] = "v1"
        groups = self._json("GET", "/apis", verb="discover")
        our_groups = {g for g, _ in wanted if g}
        for group in groups.get("groups", ()):
            gname = group.get("name")
            if gname not in our_groups:
                continue
            versions = [v.get("version") for v in group.get("versions", ())]
            preferred = (group.get("preferredVersion") or {}).get("version") or (versions[0] if versions else None)
            for version in versions:
                listing = self._json("GET", f"/apis/{gname}/{version}", verb="discover")
                for item in listing.get("resources", ()):
                    res = wanted.get((gname, item.get("kind")))
                    if res is None or "/" in item.get("name", ""):
                        continue
                    current = found.get((gname, res.kind))
                    if version == res.version or current is None or (current != res.version and version == preferred):
                        found[(gname, res.kind)] = version
        with self._lock:
            self._served = (time.monotonic(), found)
        return dict(found)

    # --- reads -------------------------------------------------------------------------------

    def get(self, resource: ApiResource, name: str, namespace: str = "") -> Object | None:
        """The object, or None when it does not exist."""
        try:
            return _with_type(
                resource,
                self._json("GET", resource.path(namespace, name), verb="get", res=resource, ns=namespace, name=name),
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def list(self, resource: ApiResource, namespace: str = "", label_selector: str = "") -> ObjectList:
        """Every matching object, with the list's resourceVersion (list items get apiVersion and kind back).

        Read in pages of `page_size`. Should the snapshot the pages come from be compacted away
        mid-list (410 on a `continue`), the list is read again in one request, as client-go's pager
        falls back to a full list: a consistent answer matters more than the size of one response.
        """
        selector = [("labelSelector", label_selector)] if label_selector else []
        limit = [("limit", str(self.page_size))] if self.page_size > 0 else []
        items: builtins.list[Object] = []
        resource_version = ""
        token = ""
        while True:
            query = [*selector, *limit, *([("continue", token)] if token else [])]
            try:
                body = self._json("GET", resource.path(namespace), query, verb="list", res=resource, ns=namespace)
            except WatchExpired:
                if not token:
                    raise
                body = self._json("GET", resource.path(namespace), selector, verb="list", res=resource, ns=namespace)
                return ObjectList(_items(resource, body), _list_rv(body))
            items.extend(_items(resource, body))
            # INVARIANT: every page of one list is read from the first page's snapshot and carries
            # its resourceVersion; a watch from it misses nothing written during the paging.
            resource_version = resource_version or _list_rv(body)
            token = str((body.get("metadata") or {}).get("continue") or "")
            if not token:
                return ObjectList(tuple(items), resource_version)

    def watch(
        self,
        resource: ApiResource,
        resource_version: str,
        namespace: str = "",
        label_selector: str = "",
        timeout_seconds: float = 60.0,
    ) -> KubeWatch:
        """A watch from ``resource_version``; the server ends it after ``timeout_seconds``."""
        query: list[tuple[str, str]] = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(max(1, int(timeout_seconds)))),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        return KubeWatch(self, resource, namespace, query, timeout_seconds)

    # --- writes ------------------------------------------------------------------------------

    def create(self, obj: Mapping[str, Any]) -> Object:
        """POST ``obj``; 409 when it exists."""
        res, namespace, name = _coords(obj)
        return self._json(
            "POST",
            res.path(namespace),
            [("fieldManager", FIELD_MANAGER)],
            body=dict(obj),
            verb="create",
            res=res,
            ns=namespace,
            name=name,
        )

    def replace(self, obj: Mapping[str, Any]) -> Object:
        """PUT ``obj``; 409 when its resourceVersion is stale."""
        res, namespace, name = _coords(obj)
        return self._json(
            "PUT",
            res.path(namespace, name),
            [("fieldManager", FIELD_MANAGER)],
            body=dict(obj),
            verb="replace",
            res=res,
            ns=namespace,
            name=name,
        )

    def apply(self, obj: Mapping[str, Any], *, force: bool = False, subresource: str = "") -> Object:
        """Server-side apply (`application/apply-patch+yaml`) as field manager `meshrules`."""
        res, namespace, name = _coords(obj)
        query = [("fieldManager", FIELD_MANAGER)] + ([("force", "true")] if force else [])
        return self._json(
            "PATCH",
            res.path(namespace, name, subresource),
            query,
            body=dict(obj),
            content_type="application/apply-patch+yaml",
            verb="apply" if not subresource else f"apply {subresource}",
            res=res,
            ns=namespace,
            name=name,
        )

    def delete(self, resource: ApiResource, name: str, namespace: str = "", *, resource_version: str = "") -> bool:
        """DELETE; False when it was already gone."""
        options: Object = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        if resource_version:
            options["preconditions"] = {"resourceVersion": resource_version}
        try:
            self._json(
                "DELETE",
                resource.path(namespace, name),
                body=options,
                verb="delete",
                res=resource,
                ns=namespace,
                name=name,
            )
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        return True

    # --- transport -----------------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        query: builtins.list[tuple[str, str]] | None = None,
        *,
        body: Any = None,
        content_type: str = "application/json",
        verb: str,
        res: ApiResource | None = None,
        ns: str = "",
        name: str = "",
    ) -> Object:
        response = self._send(
            method, path, query, body, content_type, (self.timeouts.connect, self.timeouts.read), verb, res, ns, name
        )
        try:
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(verb, res, ns, name, exc) from None
        finally:
            response.response.release_conn()
        if not 200 <= response.status < 300:
            raise self._status_error(response.status, data, verb, res, ns, name)
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            raise ClusterError(
                f"{verb} returned a body that is not JSON",
                code=UNREACHABLE,
                location=object_location(self._name, res, ns, name),
                hint="is the server URL of this context really a Kubernetes API server?",
            ) from None
        return parsed if isinstance(parsed, dict) else {}

    def _send(
        self,
        method: str,
        path: str,
        query: builtins.list[tuple[str, str]] | None,
        body: Any,
        content_type: str,
        timeout: tuple[float, float],
        verb: str,
        res: ApiResource | None,
        ns: str,
        name: str,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            method, url, headers, body, _ = self._api.param_serialize(
                method, path, query_params=query or [], header_params=headers, body=body, auth_settings=["BearerToken"]
            )
            return self._api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(verb, res, ns, name, exc) from None
        except k8s_client.exceptions.ApiException as exc:  # TLS failures come back as status 0
            raise ClusterError(
                f"{verb} failed: {exc.reason or 'TLS error'}".splitlines()[0],
                code=UNREACHABLE,
                location=object_location(self._name, res, ns, name),
                hint="check the server certificate against the kubeconfig's certificate authority",
            ) from None

    def _unreachable(self, verb: str, res: ApiResource | None, ns: str, name: str, exc: BaseException) -> Unreachable:
        timed_out = isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError) or "timed out" in str(exc).lower()
        why = "timed out" if timed_out else "could not reach the API server"
        return Unreachable(
            f"{verb} {why} ({self.server})",
            code=UNREACHABLE,
            location=object_location(self._name, res, ns, name),
            hint=(
                f"the API server did not answer within {self.timeouts.read:g}s; meshrules retries with back-off"
                if timed_out
                else "check that the API server is up and reachable from here"
            ),
        )

    def _status_error(
        self, status: int, data: bytes, verb: str, res: ApiResource | None, ns: str, name: str
    ) -> ApiError:
        message, reason = "", ""
        try:
            parsed = json.loads(data)
            if isinstance(parsed, dict):
                message, reason = str(parsed.get("message", "")), str(parsed.get("reason", ""))
        except ValueError:
            message = ""
        return api_error(status, reason, message, cluster=self._name, verb=verb, resource=res, namespace=ns, name=name)


class KubeWatch:
    """One watch request, streamed line by line; `close()` from another thread unblocks the read."""

    def __init__(
        self, cluster: KubeCluster, resource: ApiResource, namespace: str, query: list[tuple[str, str]], timeout: float
    ) -> None:
        self._cluster = cluster
        self._res = resource
        self._namespace = namespace
        self._query = query
        self._timeout = timeout
        self._response: Any = None
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[WatchEvent]:
        cluster = self._cluster
        timeout = (cluster.timeouts.connect, self._timeout + cluster.timeouts.read)
        response = cluster._send(
            "GET",
            self._res.path(self._namespace),
            self._query,
            None,
            "application/json",
            timeout,
            "watch",
            self._res,
            self._namespace,
            "",
        )
        self._response = response
        if self._closed.is_set():
            self._release()
            return
        try:
            if not 200 <= response.status < 300:
                raise cluster._status_error(response.status, response.read(), "watch", self._res, self._namespace, "")
            yield from self._events(response)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if not self._closed.is_set():
                raise cluster._unreachable("watch", self._res, self._namespace, "", exc) from None
        finally:
            self._release()

    def _events(self, response: Any) -> Iterator[WatchEvent]:
        buffer = b""
        for chunk in response.response.stream(amt=None, decode_content=True):
            if self._closed.is_set():
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                event = self._event(line)
                if event is not None:
                    yield event
        if buffer.strip() and not self._closed.is_set():
            event = self._event(buffer)
            if event is not None:
                yield event

    def _event(self, line: bytes) -> WatchEvent | None:
        if not line.strip():
            return None
        try:
            raw = json.loads(line)
        except ValueError:
            return None
        obj = raw.get("object") or {}
        if raw.get("type") == "ERROR":
            raise self._cluster._status_error(
                int(obj.get("code", 500)), json.dumps(obj).encode(), "watch", self._res, self._namespace, ""
            )
        return WatchEvent(str(raw.get("type")), _with_type(self._res, obj))

    def close(self) -> None:
        """End the watch now (from any thread): shut the socket down so a blocked read returns."""
        self._closed.set()
        response = self._response
        if response is None:
            return
        # Not connected (yet or any more) raises: then nothing is blocked on it.
        with contextlib.suppress(OSError, ValueError, AttributeError, urllib3.exceptions.HTTPError):
            response.response.shutdown()

    def _release(self) -> None:
        response = self._response
        if response is None:
            return
        try:
            if self._closed.is_set():
                response.response.close()
            else:
                response.response.release_conn()
        except (OSError, urllib3.exceptions.HTTPError):
            pass


def _items(resource: ApiResource, body: Mapping[str, Any]) -> tuple[Object, ...]:
    return tuple(_with_type(resource, item) for item in body.get("items") or ())


def _list_rv(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion", ""))


def _with_type(resource: ApiResource, obj: Object) -> Object:
    """List items and watch objects come without apiVersion/kind; put them back."""
    if "kind" not in obj:
        obj["kind"] = resource.kind
    if "apiVersion" not in obj:
        obj["apiVersion"] = resource.api_version
    return obj


def _coords(obj: Mapping[str, Any]) -> tuple[ApiResource, str, str]:
    res = resource_of(obj)
    if res is None:
        raise ClusterError(
            f"meshrules does not know the kind `{obj.get('apiVersion')} {obj.get('kind')}`",
            code=BAD_KUBECONFIG,
            hint="this is a bug in meshrules: every kind it writes is in meshrules.kube.resources",
        )
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or ("default" if res.namespaced else ""))
    return res, namespace, str(meta.get("name", ""))


def _default_kubeconfig_exists() -> bool:
    import os

    env = os.environ.get("KUBECONFIG")
    if env:
        return any(Path(p).expanduser().exists() for p in env.split(os.pathsep) if p)
    return Path(k8s_config.KUBE_CONFIG_DEFAULT_LOCATION).expanduser().exists()


def _config_error(context: str | None, where: str, exc: BaseException) -> ClusterError:
    # Only the first line of the loader's message: it names keys and contexts, never their values.
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    what = f"context `{context}` of {where}" if context else where
    return ClusterError(
        f"cannot load {what}: {detail}",
        code=BAD_KUBECONFIG,
        location=Location(cluster=context or ""),
        hint="check `kubectl config get-contexts` (meshrules never prints kubeconfig contents)",
    )
