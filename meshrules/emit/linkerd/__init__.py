"""meshrules.emit.linkerd."""
