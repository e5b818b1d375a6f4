"""meshrules.kube."""
