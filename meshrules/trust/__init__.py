"""meshrules.trust."""
