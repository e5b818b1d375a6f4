"""meshrules.emit.istio: the Istio resources of an `EmitInput` (spec §4); see `emitter.py`."""

from meshrules.emit.istio.emitter import emit_istio

__all__ = ["emit_istio"]
