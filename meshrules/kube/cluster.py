"""The cluster interface every live operation goes through, and the errors it raises.

Like an httpx transport, a cluster is an interface with two implementations: `KubeCluster`
(`meshrules.kube.client`, the official kubernetes client over HTTP) and `FakeCluster`
(`meshrules.kube.fake`, in memory, for unit tests). Registration, snapshot, apply and the
controller are written against `Cluster` only, so each can be tested without a network.

Objects cross this interface in wire form: plain dicts with the API's camelCase keys, exactly as
the API server sends them (what `ApiClient().sanitize_for_serialization` gives for typed models).
Every write uses field manager `meshrules`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from meshrules.errors import ClusterError, Location
from meshrules.kube.resources import ApiResource

Object = dict[str, Any]
FIELD_MANAGER = "meshrules"

# Error codes of live operation (MR08xx).
UNREACHABLE = "MR0801"
API_FAILED = "MR0802"
CONFLICT = "MR0803"
FORBIDDEN = "MR0804"
BAD_KUBECONFIG = "MR0805"
NOT_OWNED = "MR0806"
WATCH_EXPIRED = "MR0807"


@dataclass(frozen=True, slots=True)
class ObjectList:
    """The items of a list call and the resourceVersion to watch from."""

    items: tuple[Object, ...]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event: `ADDED`, `MODIFIED`, `DELETED` or `BOOKMARK`, with the object."""

    type: str
    object: Object

    @property
    def resource_version(self) -> str:
        """The resourceVersion this event brings the watcher to."""
        meta = self.object.get("metadata") or {}
        return str(meta.get("resourceVersion", ""))


class WatchStream(Protocol):
    """An open watch: iterate its events; `close()` (from any thread) ends the iteration."""

    def __iter__(self) -> Iterator[WatchEvent]:
        """The events, until the server ends the watch, its timeout passes or it is closed."""
        ...

    def close(self) -> None:
        """Stop the watch; safe to call from another thread and more than once."""
        ...


class Cluster(Protocol):
    """One Kubernetes API server, as meshrules uses it.

    Every call is bounded in time and raises `ClusterError` (or a subclass below) for anything
    but the documented outcomes. Reads of a kind the cluster does not serve raise `ApiError`
    with status 404; `served()` says which kinds exist.
    """

    @property
    def name(self) -> str:
        """The cluster's name in messages (the registered name, or the kubeconfig context)."""
        ...

    def served(self) -> Mapping[tuple[str, str], str]:
        """`(group, kind)` → version, for the kinds of `meshrules.kube.resources.ALL` this server serves.

        The version is the registry's when the server serves it, else the group's preferred one.
        """
        ...

    def get(self, resource: ApiResource, name: str, namespace: str = "") -> Object | None:
        """The object, or None when it does not exist."""
        ...

    def list(self, resource: ApiResource, namespace: str = "", label_selector: str = "") -> ObjectList:
        """Every object of ``resource`` (in ``namespace``, or all), with the list's resourceVersion."""
        ...

    def watch(
        self,
        resource: ApiResource,
        resource_version: str,
        namespace: str = "",
        label_selector: str = "",
        timeout_seconds: float = 60.0,
    ) -> WatchStream:
        """Changes after ``resource_version``; raises `WatchExpired` when that is too old to resume."""
        ...

    def create(self, obj: Mapping[str, Any]) -> Object:
        """Create ``obj``; raises `ConflictError` when it exists already."""
        ...

    def replace(self, obj: Mapping[str, Any]) -> Object:
        """Replace ``obj`` (PUT); its `metadata.resourceVersion`, when set, must still be current."""
        ...

    def apply(self, obj: Mapping[str, Any], *, force: bool = False, subresource: str = "") -> Object:
        """Server-side apply ``obj`` with field manager `meshrules` (``subresource`` `status` for statuses).

        A `metadata.resourceVersion` in ``obj`` is a precondition. Without ``force``, a field another
        manager owns with a different value raises `ConflictError`.
        """
        ...

    def delete(self, resource: ApiResource, name: str, namespace: str = "", *, resource_version: str = "") -> bool:
        """Delete the object; False when it was already gone; ``resource_version`` is a precondition."""
        ...


@dataclass
class ApiError(ClusterError):
    """The API server answered with an error status."""

    status: int = 0
    reason: str = ""


@dataclass
class ConflictError(ApiError):
    """409: the object exists, changed since it was read, or a field belongs to another manager."""


@dataclass
class WatchExpired(ApiError):
    """410: the resourceVersion to resume a watch from is gone; list again."""


@dataclass
class Unreachable(ClusterError):
    """The API server could not be reached or did not answer in time."""


def object_location(cluster: str, resource: ApiResource | None, namespace: str = "", name: str = "") -> Location:
    """Where a live object is, for messages: `cluster: Kind namespace/name`."""
    return Location(cluster=cluster, kind=resource.kind if resource else "", namespace=namespace, name=name)


_HINTS = {
    400: "the API server rejected the request as malformed; this is likely a bug in meshrules",
    401: "the credentials were rejected; check the kubeconfig context (meshrules never prints its contents)",
    403: "the identity lacks an RBAC permission; compare its role with deploy/ and `meshrules cluster register`",
    404: "the kind or object does not exist; are the CRDs installed on this cluster?",
    409: "the object changed or is managed by someone else; meshrules reads it again and retries",
    410: "the watch fell too far behind; meshrules lists again",
    422: "the API server refused the object; check the CRD versions against what meshrules emits",
    429: "the API server is throttling requests; meshrules backs off and retries",
}


def api_error(
    status: int,
    reason: str,
    message: str,
    *,
    cluster: str,
    verb: str,
    resource: ApiResource | None,
    namespace: str = "",
    name: str = "",
) -> ApiError:
    """The error for an API answer of ``status``: one line naming the object, with an actionable hint."""
    hint = _HINTS.get(status, "the API server failed; meshrules retries with back-off" if status >= 500 else "")
    code = (
        CONFLICT
        if status == 409
        else WATCH_EXPIRED
        if status == 410
        else FORBIDDEN
        if status in (401, 403)
        else API_FAILED
    )
    cls: type[ApiError] = ConflictError if status == 409 else WatchExpired if status == 410 else ApiError
    detail = message.strip().splitlines()[0] if message.strip() else reason or f"status {status}"
    return cls(
        f"{verb} failed with {status}: {detail}",
        code=code,
        location=object_location(cluster, resource, namespace, name),
        hint=hint,
        status=status,
        reason=reason,
    )
