"""meshrules.discovery."""
