"""Validation of emitted objects against the real CRDs of Istio, Linkerd and Gateway API.

Place: under ``meshrules.emit``, beside the emitters it checks; the tests validate everything the
emitters write with it, and ``meshrules check`` can validate its own output the same way. It
depends on no other meshrules layer.

    crd.py      CrdRegistry: load CRDs (the bundled ones in ``crds/``, or any), pick the schema
                of an object's apiVersion and kind, validate
    openapi.py  the structural-schema walk with the API server's semantics: defaults, types,
                required, enum, formats, bounds, patterns, junctors, list keys, ObjectMeta, pruning
    cel.py      x-kubernetes-validations: compiling CEL rules once, running them as the API server
    library.py  the Kubernetes CEL extension functions (strings, lists, regex, URLs, IPs, CIDRs,
                quantities, formats), as Python functions for the Rust CEL engine
    names.py    Kubernetes name and label syntax (ObjectMeta, the `format` CEL library)

Usage::

    from meshrules.emit.schema import CrdRegistry, validate
    for violation in validate(obj):      # [] when the API server would accept obj unchanged
        print(violation)                 # spec.hosts: Required value
    CrdRegistry.bundled("linkerd").validate(route)   # with the Gateway API Linkerd installs

Each :class:`SchemaViolation` has a :class:`Category`: ``schema`` and ``cel`` are refusals,
``pruned`` is a field the API server would silently drop, ``unknown-kind`` an object no CRD serves.
"""

from meshrules.emit.schema.crd import BUNDLES, PROFILES, CrdRegistry, CrdVersion, validate
from meshrules.emit.schema.openapi import Category, SchemaViolation

__all__ = [
    "BUNDLES",
    "PROFILES",
    "Category",
    "CrdRegistry",
    "CrdVersion",
    "SchemaViolation",
    "validate",
]
