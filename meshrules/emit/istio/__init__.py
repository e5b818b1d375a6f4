"""meshrules.emit.istio."""
