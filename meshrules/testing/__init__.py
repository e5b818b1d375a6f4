"""meshrules.testing."""
