"""Emitters: the rule set's intent rendered into each mesh's native resources (spec §4).

`emit/istio` and `emit/linkerd` are independent (import-linter); both read an `EmitInput`, build on
the mesh-neutral route model (`emit/routes.py`) and the shared naming (`emit/naming.py`), and
return an `EmitResult`. `emit/schema` validates objects against the real CRDs.
"""

from meshrules.emit.input import EmitInput
from meshrules.emit.output import EmitResult

__all__ = ["EmitInput", "EmitResult"]
