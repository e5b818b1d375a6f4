"""The service graph: discovered state and policies in one typed graph, selectors resolved by index."""

from meshrules.graph.index import Indexed, LabelIndex, matches
from meshrules.graph.service_graph import Selection, ServiceGraph, build_graph, node_id

__all__ = ["Indexed", "LabelIndex", "Selection", "ServiceGraph", "build_graph", "matches", "node_id"]
