"""meshrules.engine."""
