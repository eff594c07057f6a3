"""Pictures of what the framework computes: compute graphs (Graphviz) and training plots.

    from tinygrad_cnn.viz import draw_graph, to_dot
    draw_graph(loss, depth=1).render("graph", format="svg")
    explore(loss, "graph.html")     # the same graph in a page, with a backward stepper

graphviz (and plotting) are imported only here, never by the core. Read `graph.py` first.
"""

from tinygrad_cnn.viz.explore import explore
from tinygrad_cnn.viz.graph import (
    Graph,
    GraphvizMissingError,
    draw_graph,
    save_graph,
    to_dot,
)
from tinygrad_cnn.viz.plots import (
    plot_confusion_matrix,
    plot_feature_maps,
    plot_filters,
    plot_history,
    plot_misclassified,
)

__all__ = ["draw_graph", "to_dot", "save_graph", "Graph", "GraphvizMissingError", "explore"]
__all__ += ["plot_history", "plot_confusion_matrix", "plot_misclassified", "plot_filters",
            "plot_feature_maps"]  # fmt: skip
