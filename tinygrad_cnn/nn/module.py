"""Module, Parameter, Sequential, ModuleList: how a network owns its weights.

A `Module` is an object whose attributes may be `Parameter`s (tensors the optimizer trains),
other `Module`s (its children) and buffers (arrays that are state but not trained, such as
BatchNorm's running statistics). Nothing is registered by hand: the parameters are found by
walking the attributes in the order they were assigned, recursively, so

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.fc = Linear(4, 2)          # -> parameters 'fc.weight', 'fc.bias'

is all a model needs. Calling a module runs its `forward` inside `module_scope(self)`, so every
tensor it creates knows which module made it (the graph drawings box them by module); that
scope and the forward watchers are in `nn/hooks.py`, and the checks `load_state_dict` makes
before it changes anything are in `nn/state.py`.

Read next: `nn/layers.py` (and `nn/init.py` for how their weights start).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from tinygrad_cnn.nn.hooks import forward_hooks, module_scope, watch_modules  # noqa: F401
from tinygrad_cnn.nn.state import load_state_dict
from tinygrad_cnn.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer trains (requires_grad=True by default).

    Example:
        >>> p = Parameter(np.zeros((2, 3), dtype=np.float32))
        >>> p.requires_grad, p.shape
        (True, (2, 3))
    """

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model: subclass it, assign layers in `__init__`, and
    write `forward`.

    Parameters, buffers and sub-modules are discovered from the attributes, in the order
    they were first assigned (as PyTorch orders them), so `state_dict()` keys match PyTorch's
    (`0.weight`, `block.conv.bias`, `bn.running_mean`) and can be loaded into the equivalent
    PyTorch model.

    Example:
        >>> from tinygrad_cnn import nn
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = nn.Linear(4, 3)
        ...         self.out = nn.Linear(3, 2)
        ...     def forward(self, x):
        ...         return self.out(self.hidden(x).relu())
        >>> [name for name, p in Net().named_parameters()]
        ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
        >>> Net()(Tensor(np.zeros((5, 4), dtype=np.float32))).shape
        (5, 2)
    """

    # class-level defaults, so a subclass that forgets super().__init__() still works
    training: bool = True
    _buffer_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.training = True

    # --- running ------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward method")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with module_scope(self):  # tensors made inside remember this module (for viz)
            out = self.forward(*args, **kwargs)
        for hook in forward_hooks.hooks:  # usually none (nn.summary, health.py watch)
            hook(self, out)
        return out

    # --- what a module owns ---------------------------------------------------------------
    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep `value` as `self.<name>`: saved in `state_dict()` but not trained."""
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"register_buffer: {name!r} must be an np.ndarray, got {type(value).__name__}"
            )
        if name not in self._buffer_names:
            self._buffer_names = (*self._buffer_names, name)
        setattr(self, name, value)

    def _own_members(self) -> Iterator[tuple[str, Any]]:
        """(name, value) of this module's own attributes, in assignment order."""
        return iter(vars(self).items())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) of each direct sub-module, each module once."""
        seen: set[int] = set()
        for name, value in self._own_members():
            if isinstance(value, Module) and id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) of this module ('' for itself) and every descendant, once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:  # depth-first, children in assignment order
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) of every parameter, each once even if shared.

        Example:
            >>> from tinygrad_cnn import nn
            >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
            >>> [(name, p.shape) for name, p in model.named_parameters()]
            [('0.weight', (3, 2)), ('0.bias', (3,)), ('2.weight', (1, 3)), ('2.bias', (1,))]
        """
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, value in module._own_members():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def parameters(self) -> Iterator[Parameter]:
        for _, parameter in self.named_parameters():
            yield parameter

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for module_name, module in self.named_modules(prefix):
            for name in module._buffer_names:
                yield (f"{module_name}.{name}" if module_name else name), getattr(module, name)

    def buffers(self) -> Iterator[np.ndarray]:
        for _, buffer in self.named_buffers():
            yield buffer

    # --- modes and gradients --------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every descendant (Dropout drops, BatchNorm
        uses batch statistics). Returns self."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (Dropout is the identity, BatchNorm uses running statistics)."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to None."""
        for parameter in self.parameters():
            parameter.grad = None

    def to(self, dtype: Any) -> Module:
        """Cast every parameter and floating buffer to `dtype` (np.float32 or np.float64)."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"Module.to: dtype must be float32 or float64, got {dtype}")
        for parameter in self.parameters():
            parameter.data = parameter.data.astype(dtype)
            parameter.grad = None
        for module in self.modules():
            for name in module._buffer_names:
                value = getattr(module, name)
                if np.issubdtype(value.dtype, np.floating):
                    setattr(module, name, value.astype(dtype))
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # --- saving and loading ---------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed by dotted name as in PyTorch.

        Each module contributes its parameters, then its buffers, then its children's
        entries. A parameter shared by two modules appears under both names (as in PyTorch).
        The arrays are copies: training on afterwards does not change a saved state_dict.
        """
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for key, array in self._state_arrays().items():
            state[key] = array.copy()
        return state

    def _state_arrays(self) -> OrderedDict[str, np.ndarray]:
        """The live arrays behind state_dict() (no copies), in PyTorch's order."""
        arrays: OrderedDict[str, np.ndarray] = OrderedDict()

        def visit(module: Module, prefix: str) -> None:
            members = list(module._own_members())
            for name, value in members:
                if isinstance(value, Parameter):
                    arrays[prefix + name] = value.data
            for name in module._buffer_names:
                arrays[prefix + name] = getattr(module, name)
            for name, value in members:
                if isinstance(value, Module):
                    visit(value, f"{prefix}{name}.")

        visit(self, "")
        return arrays

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> tuple[list, list]:
        """Copy the values in `state` into this module's parameters and buffers, in place.

        Everything is checked before anything changes: with strict=True a missing or an
        unexpected key is an error, and a shape mismatch always is. Values may be numpy
        arrays or anything `np.asarray` accepts (such as a PyTorch state_dict's tensors);
        they are cast to the existing arrays' dtypes. Returns (missing_keys, unexpected_keys);
        the errors are listed in `nn/state.py`, which does the checking and the copying.
        """
        return load_state_dict(self, state, strict)  # all checked first (nn/state.py)

    # --- printing -------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in its repr (layers override it)."""
        return ""

    def __repr__(self) -> str:
        lines = [
            f"({name}): " + repr(child).replace("\n", "\n  ")
            for name, child in self.named_children()
        ]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def _repr_html_(self) -> str:  # Jupyter: the summary table (display.py)
        from tinygrad_cnn.display import module_html

        return module_html(self)

    def summary(self, input_shape: tuple[int, ...]) -> Any:
        """`nn.summary(self, input_shape)`: the layer table with the parameter formulas."""
        from tinygrad_cnn.nn.summary import summary  # summary imports this file

        return summary(self, input_shape)


class Sequential(Module):
    """Layers applied one after the other; the children are named '0', '1', ...

    Example:
        >>> from tinygrad_cnn import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> len(model), type(model[1]).__name__, model(Tensor(np.ones((3, 4)))).shape
        (3, 'ReLU', (3, 2))
        >>> model
        Sequential(
          (0): Linear(in_features=4, out_features=8, bias=True)
          (1): ReLU()
          (2): Linear(in_features=8, out_features=2, bias=True)
        )
    """

    def __init__(self, *layers: Module):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (dict, OrderedDict)):
            named = list(layers[0].items())  # Sequential(OrderedDict(conv=..., relu=...))
        else:
            named = [(str(i), layer) for i, layer in enumerate(layers)]
        for name, layer in named:
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential: item {name} must be a Module, got {type(layer).__name__}"
                )
            setattr(self, name, layer)

    def _layers(self) -> list[Module]:
        return [value for _, value in self._own_members() if isinstance(value, Module)]

    def __getitem__(self, index: int | slice) -> Module:
        layers = self._layers()
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def __len__(self) -> int:
        return len(self._layers())

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers())

    def append(self, layer: Module) -> Sequential:
        setattr(self, str(len(self)), layer)
        return self

    def forward(self, x: Any) -> Any:
        for layer in self._layers():
            x = layer(x)
        return x


class ModuleList(Module):
    """A list of modules whose parameters belong to the owner (a plain Python list hides
    them). Children are named '0', '1', ...; it has no forward of its own.

    Example:
        >>> from tinygrad_cnn import nn
        >>> blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
        >>> len(blocks), len(list(blocks.parameters()))
        (3, 6)
    """

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        for module in modules or ():
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: items must be Modules, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def _items(self) -> list[Module]:
        return [value for _, value in self._own_members() if isinstance(value, Module)]

    def __getitem__(self, index: int) -> Module:
        return self._items()[index]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items())
