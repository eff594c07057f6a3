"""Checkpoints: a model's weights and how to rebuild it, in one safetensors file.

The safetensors format is deliberately dull, which is what makes it safe (unlike pickle, reading
it never runs code):

    8 bytes       n, the header's length (little-endian unsigned 64-bit)
    n bytes       JSON: {"0.weight": {"dtype": "F32", "shape": [8, 1, 3, 3],
                                      "data_offsets": [0, 288]}, ...,
                         "__metadata__": {"model": "mnist-cnn", ...}}   (string values only)
    the rest      every tensor's raw little-endian bytes, back to back

The tensor names are the state_dict's, which are PyTorch's, so `safetensors.torch.load_file`
reads a checkpoint straight into the equivalent torch model. The metadata says which model to
build (`MODELS` maps its name to a constructor), with which arguments, and how training went.

A checkpoint is written atomically (`files.py`): to a temporary file in the same folder, flushed
and fsynced, then renamed over the target with `os.replace`. A crash mid-write leaves the
previous checkpoint untouched, never half a file under the real name.

Reading is careful: see `safetensors_header.py` for what a file must pass before any model
is built from it.

Read next: `viz/plots.py`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as _safetensors_load
from safetensors.numpy import save as _safetensors_save

from tinygrad_cnn.files import json_default, json_safe, write_atomically  # noqa: F401 (re-export)
from tinygrad_cnn.models.cnn import lenet, mnist_cnn
from tinygrad_cnn.models.unet import UNet
from tinygrad_cnn.nn import init
from tinygrad_cnn.safetensors_header import read_file, read_header

FORMAT = "tinygrad_cnn"
FORMAT_VERSION = 1

# name -> constructor(**kwargs) returning a Module; `load` rebuilds models through it
MODELS: dict[str, Callable[..., Any]] = {
    "mnist-cnn": mnist_cnn,
    "lenet": lenet,
    "unet": UNet,
}


def register_model(name: str, constructor: Callable[..., Any]) -> None:
    """Let `load` (and the command line's `--model`) build `constructor(**kwargs)` by name.

    Example:
        >>> register_model("my-lenet", lenet)
        >>> build_model("my-lenet", seed=0).config["name"]  # lenet names itself
        'lenet'
        >>> _ = MODELS.pop("my-lenet")
    """
    MODELS[name] = constructor


def build_model(name: str, **kwargs: Any) -> Any:
    """`MODELS[name](**kwargs)`, with `model.config` set so `save` can record how to rebuild it.

    Raises:
        ValueError: an unknown name (lists the known ones).
    Example:
        >>> build_model("mnist-cnn", seed=0).config["name"]
        'mnist-cnn'
    """
    if name not in MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; known: {', '.join(MODELS)}")
    model = MODELS[name](**kwargs)
    if getattr(model, "config", None) is None:
        model.config = {"name": name, "kwargs": kwargs}
    return model


# ----------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------


def save(
    model: Any,
    path: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
    history: list[dict] | None = None,
) -> Path:
    """Write `model`'s state_dict and metadata to a safetensors file, atomically.

    Args:
        model: a Module; its `config` ({"name", "kwargs"}, set by the model builders and
            `build_model`) is recorded so `load` can rebuild it.
        path: the file to write (conventionally `*.safetensors`); its folder is created.
        metadata: extra JSON-serialisable facts (dataset, seed, test accuracy...).
        history: fit's per-epoch dicts; stored whole, with a summary of the last epoch.
    Returns:
        The path written.
    Raises:
        TypeError: metadata that JSON cannot encode.
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> path = save(mnist_cnn(seed=0), folder / "model.safetensors", {"note": "untrained"})
        >>> read_metadata(path)["model"], read_metadata(path)["metadata"]
        ('mnist-cnn', {'note': 'untrained'})
    """
    config = getattr(model, "config", None) or {}
    history = list(history or [])
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model": str(config.get("name", "")),
        "model_kwargs": _to_json("save", config.get("kwargs", {})),
        "history": _to_json("save", history),
        "history_summary": _to_json(
            "save", {**history[-1], "epochs": len(history)} if history else {}
        ),
        "metadata": _to_json("save", metadata or {}),
    }
    # NOTE: np.ascontiguousarray would turn a 0-d buffer (num_batches_tracked) into shape (1,)
    state = {key: np.array(value, order="C") for key, value in model.state_dict().items()}
    payload = _safetensors_save(state, metadata=header)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, payload)
    return path


def _to_json(caller: str, value: Any) -> str:
    try:
        return json.dumps(json_safe(value), default=json_default, allow_nan=False)
    except TypeError as error:
        raise TypeError(f"{caller}: metadata must be JSON-serialisable: {error}") from None


# ----------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------


def _read(caller: str, path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and the raw string metadata of a safetensors file, with clear errors.

    The header is checked field by field against the file before any tensor is read
    (`safetensors_header.read_header`)."""
    raw = read_file(caller, path)
    _, metadata = read_header(caller, path, raw)
    return _tensors(caller, path, raw), metadata


def _tensors(caller: str, path: Any, raw: bytes) -> dict[str, np.ndarray]:
    try:
        return _safetensors_load(raw)
    except Exception as error:  # the Rust reader raises SafetensorError, a bare Exception
        raise ValueError(
            f"{caller}: {path} is not a valid safetensors file ({len(raw)} bytes; "
            f"truncated or corrupted?): {error}"
        ) from None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a checkpoint, decoded: model, model_kwargs, history, metadata, ...

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not a safetensors file, or not one written by `save`.
    Example:
        >>> import tempfile, pathlib
        >>> path = save(mnist_cnn(seed=0), pathlib.Path(tempfile.mkdtemp()) / "m.safetensors")
        >>> info = read_metadata(path)
        >>> info["format"], info["format_version"], info["model"], info["history"]
        ('tinygrad_cnn', 1, 'mnist-cnn', [])
    """
    _, raw = _read("read_metadata", path)
    return _decode_metadata("read_metadata", path, raw)


def _decode_metadata(caller: str, path: Any, raw: dict[str, str]) -> dict[str, Any]:
    if raw.get("format") != FORMAT:
        raise ValueError(
            f"{caller}: {path} is a safetensors file but not a {FORMAT} checkpoint "
            f"(its metadata has no format={FORMAT!r})"
        )
    version_text = raw.get("format_version", "0")
    if not version_text.isdigit() or len(version_text) > 6:
        raise ValueError(f"{caller}: {path} has a corrupted format_version {version_text!r:.40}")
    version = int(version_text)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{caller}: {path} has format version {version}; this version of "
            f"{FORMAT} reads up to {FORMAT_VERSION}: upgrade the package"
        )
    decoded: dict[str, Any] = {
        "format": raw["format"],
        "format_version": version,
        "model": raw.get("model", ""),
    }
    for key, kind in (("model_kwargs", dict), ("history", list), ("history_summary", dict),
                      ("metadata", dict)):  # fmt: skip
        try:
            value = json.loads(raw.get(key, "null"))
        except (json.JSONDecodeError, RecursionError) as error:
            raise ValueError(f"{caller}: {path} has corrupted metadata {key!r}: {error}") from None
        if value is not None and not isinstance(value, kind):
            raise ValueError(
                f"{caller}: {path} has corrupted metadata {key!r}: a JSON "
                f"{type(value).__name__}, expected {'an object' if kind is dict else 'a list'}"
            )
        decoded[key] = value
    return decoded


# a model's constructor arguments from a file: names and plain values, no bigger than this
MAX_KWARG = 2**31


def _check_model_kwargs(path: Any, name: str, kwargs: dict[str, Any]) -> None:
    """Refuse model_kwargs that are not plain JSON scalars of a sane size (before building)."""
    for key, value in kwargs.items():
        plain = value is None or isinstance(value, (bool, str, int, float))
        if not plain or (isinstance(value, (int, float)) and not abs(value) < MAX_KWARG):
            raise ValueError(
                f"load: {path} has model_kwargs {key}={value!r:.60} for {name!r}: expected a "
                f"number below {MAX_KWARG}, a string, true/false or null"
            )


def check_state(
    caller: str,
    expected: dict[str, np.ndarray],
    found: dict[str, np.ndarray],
    source: Any = "checkpoint",
) -> None:
    """Raise one ValueError listing every missing/unexpected key and wrong shape or dtype.

    Args:
        caller: the name the message starts with.
        expected: the model's state_dict; found: the arrays read; source: names them.
    Raises:
        ValueError: any key, shape or dtype that differs (all of them in one message).
    Example:
        >>> check_state("demo", {"w": np.zeros(2)}, {"w": np.zeros(2)})  # fits: silent
        >>> check_state("demo", {"w": np.zeros(2)}, {"w": np.zeros(3)})
        Traceback (most recent call last):
        ...
        ValueError: demo: checkpoint does not fit the model: 'w' has shape (3,), the model
        expects (2,)
    """
    problems = []
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    for key in expected:
        if key not in found:
            continue
        want, got = expected[key], found[key]
        if got.shape != want.shape:
            problems.append(f"{key!r} has shape {got.shape}, the model expects {want.shape}")
        elif got.dtype != want.dtype:
            problems.append(f"{key!r} has dtype {got.dtype}, the model expects {want.dtype}")
    if problems:
        raise ValueError(f"{caller}: {source} does not fit the model: " + "; ".join(problems))


def load_weights(model: Any, path: str | os.PathLike) -> Any:
    """Load a checkpoint's weights into an existing `model`, after checking every key,
    shape and dtype. Returns the model.

    Raises:
        FileNotFoundError, ValueError: as `load`.
    Example:
        >>> import tempfile, pathlib
        >>> path = save(mnist_cnn(seed=0), pathlib.Path(tempfile.mkdtemp()) / "m.safetensors")
        >>> model = load_weights(mnist_cnn(seed=1), path)
        >>> saved = mnist_cnn(seed=0).state_dict()
        >>> all(np.array_equal(saved[k], v) for k, v in model.state_dict().items())
        True
    """
    tensors, _ = _read("load_weights", path)
    check_state("load_weights", model.state_dict(), tensors, path)
    model.load_state_dict(tensors)
    return model


def load(path: str | os.PathLike) -> Any:
    """Rebuild the model a checkpoint was saved from and load its weights.

    Nothing in the file is trusted: its header is checked against its size first, and the
    model is built with `MODELS[name](**model_kwargs)` from the metadata only within a memory
    limit of about the file's own tensors (`nn.init.allocation_limit`), so metadata claiming a
    huge model is an error at once instead of gigabytes allocated. Then every key, shape and
    dtype of the file is checked against the model before any weight is copied. The model
    is returned in eval mode, with `model.checkpoint` holding `read_metadata`'s dict.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: a truncated, corrupted or hostile file, a file not written by `save`, an
            unknown model name, metadata that does not build a model or describes one bigger
            than the file, or weights that do not fit the model (each problem named).
    Example:
        >>> import tempfile, pathlib
        >>> path = save(mnist_cnn(seed=0), pathlib.Path(tempfile.mkdtemp()) / "m.safetensors")
        >>> model = load(path)
        >>> model.config["name"], model.training
        ('mnist-cnn', False)
    """
    raw_bytes = read_file("load", path)
    shapes, raw = read_header("load", path, raw_bytes)
    info = _decode_metadata("load", path, raw)
    name = info["model"]
    if name not in MODELS:
        raise ValueError(
            f"load: {path} holds a model named {name!r:.60}, which is not registered; "
            f"known: {', '.join(MODELS)} (see checkpoint.register_model)"
        )
    kwargs = info["model_kwargs"] or {}
    _check_model_kwargs(path, name, kwargs)
    # the model may hold what the file holds, plus slack so that a small mismatch reaches
    # check_state below, which names every key, shape and dtype that differs
    limit = sum(math.prod(shape) for shape in shapes.values()) + 2**20
    try:
        with init.allocation_limit(limit, str(path)):
            model = build_model(name, **kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"load: {path}: its metadata (model {name!r}, model_kwargs {kwargs}) does not "
            f"build a model that fits the file: {error}"
        ) from None
    tensors = _tensors("load", path, raw_bytes)
    check_state("load", model.state_dict(), tensors, path)
    model.load_state_dict(tensors)
    model.eval()
    model.checkpoint = info
    return model
