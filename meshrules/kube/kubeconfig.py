"""Kubeconfigs for registered clusters: built from a service-account token, stored in a Secret.

Pure functions over text and dicts. Nothing here logs or formats a kubeconfig's contents into a
message: a kubeconfig holds a bearer token.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import yaml

from meshrules.errors import ClusterError, Location
from meshrules.kube.cluster import BAD_KUBECONFIG

KUBECONFIG_SECRET_TYPE = "meshrules.io/kubeconfig"
KUBECONFIG_KEY = "kubeconfig"


def build_kubeconfig(cluster: str, server: str, token: str, ca_pem: str | None, namespace: str) -> str:
    """A kubeconfig with one context, ``cluster``: the server, the CA inlined, the token."""
    cluster_entry: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster_entry["certificate-authority-data"] = _b64(ca_pem)
    user = f"meshrules-{cluster}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": cluster_entry}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user, "namespace": namespace}}],
        "current-context": cluster,
    }
    return str(yaml.safe_dump(config, sort_keys=True))


def secret_data(secret: Mapping[str, Any], key: str) -> str | None:
    """The decoded text of ``key`` in a Secret's `data` (or `stringData`), or None."""
    data = secret.get("data") or {}
    if key in data:
        try:
            return base64.b64decode(str(data[key]), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    string_data = secret.get("stringData") or {}
    value = string_data.get(key)
    return str(value) if value is not None else None


def kubeconfig_from_secret(secret: Mapping[str, Any], cluster: str) -> str:
    """The kubeconfig text a registration stored; a clear error (never the content) when unusable."""
    text = secret_data(secret, KUBECONFIG_KEY)
    if not text or secret.get("type") != KUBECONFIG_SECRET_TYPE:
        meta = secret.get("metadata") or {}
        raise ClusterError(
            f"Secret `{meta.get('name')}` holds no usable kubeconfig for cluster `{cluster}`",
            code=BAD_KUBECONFIG,
            location=Location(kind="Secret", namespace=str(meta.get("namespace", "")), name=str(meta.get("name", ""))),
            hint=f"register the cluster again: `meshrules cluster register {cluster} --remote-context …`",
        )
    return text


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
