"""One request (or TCP connection) as the simulator sees it, independent of any mesh.

The mesh evaluators in ``meshrules.sim.istio`` (and, later, Linkerd) read this value; the query
layer (`why`, `matrix`) builds it from a caller workload and a target. It is frozen and hashable so
that answers can be cached per request, and it holds only plain data: every field is what a proxy
at the destination could observe about the request, in the form the proxy observes it.

Conventions:

* ``source_principal`` is the peer's SPIFFE identity without ``spiffe://``
  (``cluster.local/ns/shop/sa/web``); ``None`` means the connection is plaintext (no peer
  certificate), which is different from an empty identity.
* header names are lower case (HTTP header names are case-insensitive); a header sent several times
  is one value joined with ``,`` (what Envoy's header matchers see).
* JWT claims are flattened to ``(path, value)`` pairs: nested objects become paths
  (``("nested1", "nested2")``), a value is a string or a tuple of strings; non-string leaves are
  dropped because no Istio string matcher can match them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

Protocol: TypeAlias = Literal["http", "tcp"]
ClaimValue: TypeAlias = str | tuple[str, ...]
MetadataValue: TypeAlias = str | tuple[str, ...]

__all__ = ["ClaimValue", "MetadataValue", "Protocol", "Request", "flatten_claims"]


@dataclass(frozen=True, slots=True)
class Request:
    """A request arriving at a destination workload, with everything its proxy can match on.

    Build one with :meth:`http` or :meth:`tcp`, which accept plain mappings and normalise them;
    the constructor takes the normalised tuples directly.
    """

    protocol: Protocol = "http"
    # --- source -------------------------------------------------------------------------------
    source_principal: str | None = None
    # The caller's namespace as the simulator knows it. Istio itself never reads it: its
    # `namespaces` matchers look inside `source_principal` (see meshrules.sim.istio.authz).
    source_namespace: str | None = None
    source_ip: str | None = None  # the downstream peer address (Envoy "direct remote")
    remote_ip: str | None = None  # the original client (X-Forwarded-For / PROXY); None: source_ip
    # --- end user (a validated JWT's payload) -------------------------------------------------
    claims: tuple[tuple[tuple[str, ...], ClaimValue], ...] = ()
    # --- destination --------------------------------------------------------------------------
    destination_namespace: str = ""
    destination_labels: tuple[tuple[str, str], ...] = ()
    destination_ip: str | None = None
    destination_port: int = 0
    sni: str | None = None
    # --- HTTP (ignored for tcp) ---------------------------------------------------------------
    host: str | None = None  # :authority
    method: str = "GET"
    path: str = "/"  # as sent, with the query string
    headers: tuple[tuple[str, str], ...] = ()
    # --- proxy-internal state ------------------------------------------------------------------
    # Envoy dynamic metadata set by other filters: (filter name, ((key, value), ...)). Only
    # Istio's `experimental.envoy.filters.*` conditions read it.
    metadata: tuple[tuple[str, tuple[tuple[str, MetadataValue], ...]], ...] = ()

    # ------------------------------------------------------------------------------------------
    @classmethod
    def http(
        cls,
        *,
        source_principal: str | None = None,
        source_namespace: str | None = None,
        source_ip: str | None = None,
        remote_ip: str | None = None,
        request_principal: str | None = None,
        claims: Mapping[str, Any] | None = None,
        destination_namespace: str = "",
        destination_labels: Mapping[str, str] | None = None,
        destination_ip: str | None = None,
        destination_port: int = 80,
        sni: str | None = None,
        host: str | None = None,
        method: str = "GET",
        path: str = "/",
        headers: Mapping[str, str | Iterable[str]] | None = None,
        metadata: Mapping[str, Mapping[str, MetadataValue]] | None = None,
    ) -> Request:
        """An HTTP request; ``request_principal`` (``iss/sub``) fills the ``iss`` and ``sub`` claims."""
        return cls(
            protocol="http",
            source_principal=source_principal,
            source_namespace=source_namespace,
            source_ip=source_ip,
            remote_ip=remote_ip,
            claims=_claims(claims, request_principal),
            destination_namespace=destination_namespace,
            destination_labels=tuple(sorted((destination_labels or {}).items())),
            destination_ip=destination_ip,
            destination_port=destination_port,
            sni=sni,
            host=host,
            method=method,
            path=path,
            headers=_headers(headers or {}),
            metadata=_metadata(metadata or {}),
        )

    @classmethod
    def tcp(
        cls,
        *,
        source_principal: str | None = None,
        source_namespace: str | None = None,
        source_ip: str | None = None,
        remote_ip: str | None = None,
        destination_namespace: str = "",
        destination_labels: Mapping[str, str] | None = None,
        destination_ip: str | None = None,
        destination_port: int = 0,
        sni: str | None = None,
        metadata: Mapping[str, Mapping[str, MetadataValue]] | None = None,
    ) -> Request:
        """A TCP connection: no HTTP attributes, no end-user credential."""
        return cls(
            protocol="tcp",
            source_principal=source_principal,
            source_namespace=source_namespace,
            source_ip=source_ip,
            remote_ip=remote_ip,
            destination_namespace=destination_namespace,
            destination_labels=tuple(sorted((destination_labels or {}).items())),
            destination_ip=destination_ip,
            destination_port=destination_port,
            sni=sni,
            metadata=_metadata(metadata or {}),
        )

    # ------------------------------------------------------------------------------------------
    @property
    def client_ip(self) -> str | None:
        """The original client address: ``remote_ip`` when known, else the peer address."""
        return self.remote_ip if self.remote_ip is not None else self.source_ip

    @property
    def request_principal(self) -> str | None:
        """``iss/sub`` of the end-user credential, or None when the request carries none."""
        iss, sub = self.claim(("iss",)), self.claim(("sub",))
        if isinstance(iss, str) and isinstance(sub, str):
            return f"{iss}/{sub}"
        return None

    def claim(self, path: tuple[str, ...]) -> ClaimValue | None:
        """The JWT claim at ``path`` (``("groups",)``, ``("nested1", "nested2")``), or None."""
        for key, value in self.claims:
            if key == path:
                return value
        return None

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None when absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    def metadata_value(self, filter_name: str, key: str) -> MetadataValue | None:
        """Dynamic metadata ``key`` written by filter ``filter_name``, or None."""
        for name, entries in self.metadata:
            if name == filter_name:
                for k, v in entries:
                    if k == key:
                        return v
        return None

    @property
    def labels(self) -> dict[str, str]:
        """The destination workload's labels as a dict."""
        return dict(self.destination_labels)


def flatten_claims(claims: Mapping[str, Any]) -> tuple[tuple[tuple[str, ...], ClaimValue], ...]:
    """Flatten a JWT payload into sorted ``(path, value)`` leaves; non-string leaves are dropped."""
    out: list[tuple[tuple[str, ...], ClaimValue]] = []

    def walk(prefix: tuple[str, ...], value: Any) -> None:
        if isinstance(value, str):
            out.append((prefix, value))
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk((*prefix, str(k)), v)
        elif isinstance(value, list | tuple):
            out.append((prefix, tuple(v for v in value if isinstance(v, str))))

    for key, value in claims.items():
        walk((str(key),), value)
    return tuple(sorted(out, key=lambda kv: kv[0]))


def _claims(
    claims: Mapping[str, Any] | None, request_principal: str | None
) -> tuple[tuple[tuple[str, ...], ClaimValue], ...]:
    merged: dict[str, Any] = dict(claims or {})
    if request_principal is not None:
        # The issuer may be a URL, so split at the last "/" as Istio does.
        iss, _, sub = request_principal.rpartition("/")
        merged.setdefault("iss", iss)
        merged.setdefault("sub", sub)
    return flatten_claims(merged)


def _headers(headers: Mapping[str, str | Iterable[str]]) -> tuple[tuple[str, str], ...]:
    joined: dict[str, list[str]] = {}
    for name, value in headers.items():
        values = [value] if isinstance(value, str) else list(value)
        joined.setdefault(name.lower(), []).extend(values)
    return tuple(sorted((name, ",".join(values)) for name, values in joined.items()))


def _metadata(
    metadata: Mapping[str, Mapping[str, MetadataValue]],
) -> tuple[tuple[str, tuple[tuple[str, MetadataValue], ...]], ...]:
    return tuple(
        sorted((name, tuple(sorted((k, v if isinstance(v, str) else tuple(v)) for k, v in entries.items())))
               for name, entries in metadata.items())
    )
