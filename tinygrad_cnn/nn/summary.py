"""`summary(model, input_shape)`: each layer's output shape and parameter count, with the
formula that gives the count.

    dense layer, m inputs, n neurons:                    n·(m+1)        100·(400+1) = 40,100
    conv layer, m filters k_x×k_y over n channels:       m·(n·k_x·k_y+1)   8·(1·3·3+1) = 80
        (with groups g, each filter sees n/g channels:   m·(n/g·k_x·k_y+1))
    BatchNorm over C channels:  2·C trainable (scale, shift) + 2·C non-trainable (running stats)

It runs one forward pass on zeros (in eval mode, without recording a graph) and notes what
each layer returned. `str(summary)` is a plain-text table; `tinygrad_cnn.console` prints it
with rich on a terminal.

Read next: `optim.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinygrad_cnn.nn.hooks import watch_modules
from tinygrad_cnn.nn.layers import BatchNorm2d, Conv2d, ConvTranspose2d, Linear
from tinygrad_cnn.nn.module import Module, Parameter
from tinygrad_cnn.tensor import Tensor, no_grad


@dataclass
class SummaryRow:
    """One layer: its dotted name, class name, output shape (None for the batch axis),
    parameter count and formula. `non_trainable` counts running statistics and frozen
    parameters.

    Example:
        >>> from tinygrad_cnn import nn
        >>> row = nn.summary(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (4,)).rows[1]
        >>> row.type, row.output_shape, row.params, row.formula
        ('Linear', (None, 2), 10, '2·(4+1) = 10')
    """

    name: str
    type: str
    output_shape: tuple | list | None
    params: int
    formula: str
    non_trainable: int = 0
    calls: int = 1  # how many times the forward pass ran it (a shared layer: several)


@dataclass
class Summary:
    """The result of `summary()`: `rows`, and the totals of trainable and non-trainable
    parameters (each shared parameter counted once). Printing it draws the table.

    Example:
        >>> from tinygrad_cnn import nn
        >>> s = nn.summary(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (4,))
        >>> len(s.rows), s.trainable_params, s.total_params
        (2, 10, 10)
    """

    model_name: str
    input_shape: tuple[int, ...]
    rows: list[SummaryRow] = field(default_factory=list)
    trainable_params: int = 0
    non_trainable_params: int = 0

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    def table(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows of cells as strings): what both renderers show."""
        header = ["Layer", "Type", "Output shape", "Params", "Formula"]
        cells = [
            [
                row.name + (f" (x{row.calls})" if row.calls > 1 else ""),
                row.type,
                _shape_text(row.output_shape),
                f"{row.params:,}",
                row.formula,
            ]
            for row in self.rows
        ]
        return header, cells

    def totals_text(self) -> list[str]:
        """The totals, then a line for each layer the forward pass ran more than once."""
        shared = [
            f"{row.name} runs {row.calls} times (one layer, shared): its output shape is the "
            f"first call's" + (f", and its {row.params:,} parameters count once" * bool(row.params))
            for row in self.rows
            if row.calls > 1
        ]
        return [
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            *shared,
        ]

    def __str__(self) -> str:
        header, cells = self.table()
        widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

        def render(line: list[str]) -> str:
            parts = [
                text.rjust(w) if i == 3 else text.ljust(w)
                for i, (text, w) in enumerate(zip(line, widths))
            ]
            return "  ".join(parts).rstrip()

        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        title = f"{self.model_name}, input {_shape_text((None, *self.input_shape))}"
        lines = [title, rule, render(header), rule, *[render(line) for line in cells], rule]
        return "\n".join(lines + self.totals_text())

    def __repr__(self) -> str:
        return str(self)


def _shape_text(shape: tuple | list | None) -> str:
    if shape is None:
        return "-"
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


def _output_shape(output: object) -> tuple | list | None:
    """The shape of what a layer returned, with None for the batch axis."""
    if isinstance(output, Tensor):
        return (None, *output.shape[1:]) if output.ndim else ()
    if isinstance(output, (tuple, list)):
        return [_output_shape(item) for item in output]
    return None


def formula(module: Module) -> str:
    """The course's formula for the number of parameters `module` itself holds.

    Example:
        >>> from tinygrad_cnn import nn
        >>> formula(nn.Linear(400, 100)), formula(nn.Conv2d(1, 8, 3))
        ('100·(400+1) = 40,100', '8·(1·3·3+1) = 80')
    """
    own = [value for _, value in module._own_members() if isinstance(value, Parameter)]
    count = sum(p.size for p in own)
    has_bias = getattr(module, "bias", None) is not None
    plus_one = "+1" if has_bias else ""
    if isinstance(module, Linear):
        n, m = module.out_features, module.in_features
        text = f"{n}·({m}+1)" if has_bias else f"{n}·{m}"
    elif isinstance(module, (Conv2d, ConvTranspose2d)):
        m, n, groups = module.out_channels, module.in_channels, module.groups
        kh, kw = module.kernel_size
        channels = f"{n}/{groups}" if groups != 1 else f"{n}"
        text = f"{m}·({channels}·{kh}·{kw}{plus_one})"
    elif isinstance(module, BatchNorm2d):
        C = module.num_features
        return f"2·{C} = {2 * C:,} (+2·{C} = {2 * C:,} non-trainable)"
    elif own:
        text = " + ".join("·".join(str(n) for n in p.shape) or "1" for p in own)
    else:
        return ""
    return f"{text} = {count:,}"


def summary(model: Module, input_shape: tuple[int, ...]) -> Summary:
    """Run `model` once on zeros of shape (1, *input_shape) and tabulate its layers.

    Rows are the layers without sub-layers (and any module holding parameters of its own),
    in the order the forward pass called them. The model's train/eval modes and running
    statistics are left as they were.

    Args:
        model: any Module. input_shape: ONE sample's shape, without the batch axis,
            e.g. (1, 28, 28) for an MNIST image.
    Raises:
        ValueError: input_shape is not a tuple of positive ints, or the forward pass fails on
            it (the message says which shape was tried).
    Example:
        >>> from tinygrad_cnn import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(784, 1000), nn.ReLU())
        >>> print(nn.summary(model, (1, 28, 28)))
        Sequential, input (None, 1, 28, 28)
        -------------------------------------------------------------
        Layer  Type     Output shape   Params  Formula
        -------------------------------------------------------------
        0      Flatten  (None, 784)         0
        1      Linear   (None, 1000)  785,000  1000·(784+1) = 785,000
        2      ReLU     (None, 1000)        0
        -------------------------------------------------------------
        Total params: 785,000
        Trainable params: 785,000
        Non-trainable params: 0
    """
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    input_shape = tuple(input_shape)
    if not all(isinstance(n, (int, np.integer)) and n > 0 for n in input_shape):
        raise ValueError(
            f"summary: input_shape must be a tuple of positive ints, got {input_shape!r}"
        )
    names = {id(m): name for name, m in model.named_modules()}
    outputs: dict[int, tuple[Module, object]] = {}  # first output of each module, call order
    calls: dict[int, int] = {}  # how many times each module ran

    def record(module: Module, output: object) -> None:
        calls[id(module)] = calls.get(id(module), 0) + 1
        if id(module) in names and id(module) not in outputs:
            outputs[id(module)] = (module, _output_shape(output))

    parameters = list(model.parameters())
    dtype = parameters[0].dtype if parameters else np.float32
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with no_grad(), watch_modules(record):
            model(Tensor(np.zeros((1, *input_shape), dtype=dtype)))
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"summary: the forward pass on zeros of shape {(1, *input_shape)} "
            f"failed (input_shape is one sample's shape, without the batch "
            f"axis): {error}"
        ) from error
    finally:
        for m, mode in modes:
            m.training = mode

    result = Summary(type(model).__name__, input_shape)
    called = [m for m, _ in outputs.values()]
    unused = [m for m in model.modules() if id(m) not in outputs]
    for module in called + unused:
        own = [v for _, v in module._own_members() if isinstance(v, Parameter)]
        if next(module.children(), None) is not None and not own:
            continue  # a container: its layers have their own rows
        buffers = sum(
            getattr(module, name).size
            for name in module._buffer_names
            if np.issubdtype(getattr(module, name).dtype, np.floating)
        )
        frozen = sum(p.size for p in own if not p.requires_grad)
        shape = outputs[id(module)][1] if id(module) in outputs else None
        result.rows.append(
            SummaryRow(
                names[id(module)] or type(module).__name__,
                type(module).__name__,
                shape,
                sum(p.size for p in own),
                formula(module),
                buffers + frozen,
                calls.get(id(module), 0),
            )
        )
    result.trainable_params = sum(p.size for p in parameters if p.requires_grad)
    result.non_trainable_params = sum(p.size for p in parameters if not p.requires_grad) + sum(
        b.size for b in model.buffers() if np.issubdtype(b.dtype, np.floating)
    )
    return result
