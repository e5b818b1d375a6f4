"""meshrules.dsl."""
