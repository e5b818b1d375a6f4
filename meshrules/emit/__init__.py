"""meshrules.emit."""
