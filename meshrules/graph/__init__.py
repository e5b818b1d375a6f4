"""meshrules.graph."""
