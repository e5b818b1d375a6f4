"""Names and metadata every emitted object carries (spec §4).

Names are stable and valid Kubernetes names: too long, they are cut and suffixed with a stable
hash of the full name, so two long names never collide. Every object carries the ownership label
and a `meshrules.io/parents` annotation naming what produced it; meshrules writes, updates and
deletes only objects with that label.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from meshrules.model.common import MANAGEMENT_NAMESPACE

OWNER_LABEL = "meshrules.io/owner"
PARENTS_ANNOTATION = "meshrules.io/parents"
# DNS-1123 subdomain names (most kinds) may be 253 characters; labels (Service-like names) 63.
MAX_SUBDOMAIN = 253
MAX_LABEL = 63
# Eight hex characters of SHA-256: collisions among one cluster's emitted names are negligible.
HASH_CHARS = 8

_INVALID = re.compile(r"[^a-z0-9-]+")


def stable_hash(text: str, chars: int = HASH_CHARS) -> str:
    """A short, stable hex digest of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:chars]


@lru_cache(maxsize=1 << 16)
def object_name(*parts: str, limit: int = MAX_LABEL) -> str:
    """A DNS-1123 name from ``parts`` joined with `-`; cut and hash-suffixed when over ``limit``.

    Cached: the same names are asked for once per federation edge.
    """
    raw = "-".join(p for p in parts if p)
    name = _INVALID.sub("-", raw.lower()).strip("-") or "x"
    name = re.sub(r"-{2,}", "-", name)
    if len(name) <= limit and name == raw:
        return name
    if len(name) + 1 + HASH_CHARS <= limit:
        # Characters were replaced: still suffix a hash so `a.b` and `a-b` stay distinct.
        return f"{name}-{stable_hash(raw)}"
    head = name[: limit - HASH_CHARS - 1].rstrip("-")
    return f"{head}-{stable_hash(raw)}"


def subset_name(labels: Mapping[str, str]) -> str:
    """The subset name for a label map: `<key>-<value>` joined with `-` in sorted key order."""
    return object_name(*(f"{k}-{v}" for k, v in sorted(labels.items())), limit=MAX_LABEL)


def parents_annotation(parents: Mapping[str, Iterable[str]]) -> str:
    """The `meshrules.io/parents` value: JSON kind → sorted `namespace/name` list, keys sorted.

    Built from the JSON encoding of each (cached) string: exactly what `json.dumps(…,
    sort_keys=True, separators=(",", ":"))` writes for string keys and values, without its cost
    per object; anything else goes through `json.dumps` itself.
    """
    grouped = [(k, sorted(set(v))) for k, v in sorted(parents.items()) if v]
    try:
        if not all(type(k) is str for k, _ in grouped):
            raise _NotText
        return "{" + ",".join(f"{_json_str(k)}:[{','.join(map(_json_str, names))}]" for k, names in grouped) + "}"
    except _NotText:
        return json.dumps(dict(grouped), sort_keys=True, separators=(",", ":"))


class _NotText(Exception):
    """A parents entry that is not a string: the annotation is left to `json.dumps`."""


_JSON_STRINGS: dict[str, str] = {}


def _json_str(text: str) -> str:
    """``json.dumps(text)`` (ASCII-escaped), cached: parents repeat across many objects."""
    encoded = _JSON_STRINGS.get(text)
    if encoded is None:
        if type(text) is not str:
            raise _NotText
        if len(_JSON_STRINGS) >= 1 << 18:
            _JSON_STRINGS.clear()
        encoded = _JSON_STRINGS[text] = json.dumps(text)
    return encoded


def owned_metadata(
    name: str,
    namespace: str | None,
    parents: Mapping[str, Iterable[str]],
    labels: Mapping[str, str] | None = None,
    owner: str = MANAGEMENT_NAMESPACE,
    annotation: str | None = None,
) -> dict[str, Any]:
    """Metadata of an emitted object: name, namespace, ownership label and parents annotation.

    ``annotation``, when given, is `parents_annotation` of the parents, computed by the caller.
    """
    meta: dict[str, Any] = {
        "name": name,
        "labels": {**(labels or {}), OWNER_LABEL: owner},
        "annotations": {PARENTS_ANNOTATION: parents_annotation(parents) if annotation is None else annotation},
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def is_owned(obj: Mapping[str, Any], owner: str = MANAGEMENT_NAMESPACE) -> bool:
    """Whether meshrules (of this management namespace) owns ``obj``."""
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return isinstance(labels, Mapping) and labels.get(OWNER_LABEL) == owner


# 240.0.0.0/4 is reserved (class E): never routed, so it cannot clash with a real service address.
_CLASS_E = ipaddress.IPv4Network("240.0.0.0/4")


class AddressBook:
    """Stable, collision-free virtual addresses in 240.0.0.0/4 for federated hosts.

    An address comes from a hash of the host; on collision the next candidate is probed
    deterministically (hash of `host#1`, `host#2`, …). Allocate hosts in sorted order so the
    result does not depend on input order.
    """

    def __init__(self) -> None:
        self._by_address: dict[str, str] = {}
        self._by_host: dict[str, str] = {}

    def address(self, host: str) -> str:
        """The address of ``host``, allocating it on first use."""
        if host in self._by_host:
            return self._by_host[host]
        probe = 0
        while True:
            key = host if probe == 0 else f"{host}#{probe}"
            offset = int(stable_hash(key, 16), 16) % (_CLASS_E.num_addresses - 2) + 1
            candidate = str(_CLASS_E.network_address + offset)
            if candidate not in self._by_address:
                self._by_address[candidate] = host
                self._by_host[host] = candidate
                return candidate
            probe += 1

    @classmethod
    def for_hosts(cls, hosts: Iterable[str]) -> AddressBook:
        """An address book with ``hosts`` allocated in sorted order."""
        book = cls()
        for host in sorted(set(hosts)):
            book.address(host)
        return book


def sort_objects(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Objects in a stable order: apiVersion, kind, namespace, name."""

    def key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
        meta = obj.get("metadata") or {}
        return (str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))

    return sorted(objects, key=key)
