"""meshrules.model."""
