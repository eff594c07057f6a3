"""Pictures of what the framework computes: compute graphs (Graphviz) and training plots.

    from tinygrad_cnn.viz import draw_graph, to_dot
    draw_graph(loss, depth=1).render("graph", format="svg")

graphviz (and plotting) are imported only here, never by the core. Read `graph.py` first.
"""

from tinygrad_cnn.viz.graph import (
    Graph,
    GraphvizMissingError,
    draw_graph,
    save_graph,
    to_dot,
)

__all__ = ["draw_graph", "to_dot", "save_graph", "Graph", "GraphvizMissingError"]
