"""The worked examples behind `tinygrad-cnn explain`, computed by the library's own ops.

Each function runs the real ops (conv2d, maxpool2d, backward...) on a small input and returns
every intermediate value a reader wants to see: the first window of a convolution and its
element-wise products, the arg-max mask of max pooling, the chain-rule step behind each
gradient. Nothing is typed in: the numbers come from the ops at run time, and each function
checks them against a second route (the products' sum against conv2d's first output, the
transposed convolution against conv2d's backward). The CLI (`cli/explain.py`) only prints.

    forward.py   explain_conv, explain_pool, dense_count, conv_count, model_summary
    backward.py  backward_steps (the engine's own visiting order, one record per node),
                 explain_backward (the chain rule node by node on any small expression),
                 explain_conv_backward

Read next: `examples/03_conv_by_hand.py`, which does the conv example with plain loops.
"""

from tinygrad_cnn.explain.backward import (
    DEFAULT_EXPRESSION,
    DEFAULT_VALUES,
    BackwardExplanation,
    BackwardStep,
    Contribution,
    ConvBackwardExplanation,
    backward_steps,
    explain_backward,
    explain_conv_backward,
    parse_expression,
)
from tinygrad_cnn.explain.forward import (
    COURSE_IMAGE,
    COURSE_KERNEL,
    MODELS,
    POOL_MAP,
    ConvExplanation,
    LayerCount,
    PoolExplanation,
    conv_count,
    dense_count,
    explain_conv,
    explain_pool,
    model_summary,
)

__all__ = [
    "COURSE_IMAGE", "COURSE_KERNEL", "POOL_MAP", "MODELS", "DEFAULT_EXPRESSION", "DEFAULT_VALUES",
    "ConvExplanation", "PoolExplanation", "LayerCount", "BackwardStep", "Contribution",
    "BackwardExplanation", "ConvBackwardExplanation",
    "explain_conv", "explain_pool", "dense_count", "conv_count", "model_summary",
    "backward_steps", "parse_expression", "explain_backward", "explain_conv_backward",
]  # fmt: skip
