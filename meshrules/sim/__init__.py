"""meshrules.sim."""
