"""meshrules: one declarative API over multi-cluster Istio and Linkerd meshes."""

__version__ = "0.1.0"

__all__ = ["__version__"]
