"""Reading a safetensors file without trusting it: every field of the header is checked first.

A checkpoint may come from anywhere, so nothing it claims is believed until it is checked
against the file itself (see `checkpoint.py` for the layout):

    the header length   at most the bytes that follow it (and at most 100 MiB, as the format says)
    the header          a JSON object; "__metadata__" maps strings to strings
    each tensor         a known dtype, a shape of non-negative ints, and data_offsets [begin, end]
                        inside the data, with end - begin = prod(shape) * the dtype's size
    the data            covered exactly, with no gap, no overlap and nothing left over

Only then are the bytes handed to the safetensors reader, and only then may a model be built
from the metadata (`checkpoint.load` also holds its size to the file's:
`nn.init.allocation_limit`).
Every problem is one ValueError naming the file and the field.

Read next: `checkpoint.py`.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

MAX_HEADER_BYTES = 100 * 2**20  # the format's own limit
# the safetensors dtypes numpy can hold, with their numpy equivalents
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "F16": np.dtype(np.float16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "F32": np.dtype(np.float32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F64": np.dtype(np.float64),
}


def read_header(
    caller: str, path: str | os.PathLike, raw: bytes
) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Check the header of the safetensors bytes `raw` against the file's size and return
    ({tensor name: shape}, {metadata key: string value}).

    Raises:
        ValueError: the first problem found, as one line naming `path` (truncated file, header
            length beyond the file, bad JSON, unknown dtype, a bad shape, offsets out of
            range, overlapping or leaving gaps, metadata that is not strings).
    Example:
        >>> header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
        >>> raw = struct.pack("<Q", len(header)) + header.encode() + bytes(8)
        >>> read_header("load", "w.safetensors", raw)
        ({'w': (2,)}, {})
        >>> read_header("load", "w.safetensors", raw[:-1])
        Traceback (most recent call last):
        ...
        ValueError: load: w.safetensors is not a valid safetensors file (76 bytes; truncated or corrupted?): tensor 'w' has data_offsets [0, 8] beyond the 7 bytes of data
    """  # noqa: E501

    def bad(problem: str) -> ValueError:
        return ValueError(
            f"{caller}: {path} is not a valid safetensors file ({len(raw)} bytes; "
            f"truncated or corrupted?): {problem}"
        )

    if len(raw) < 8:
        raise bad("shorter than the 8-byte header length")
    (length,) = struct.unpack("<Q", raw[:8])
    if length > len(raw) - 8 or length > MAX_HEADER_BYTES:
        raise bad(f"its header claims {length} bytes, but only {len(raw) - 8} follow")
    try:
        header = json.loads(raw[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad(f"its header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise bad(f"its header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise bad("its __metadata__ is not an object of strings")
    data_size = len(raw) - 8 - length
    shapes, spans = {}, []
    for name, entry in header.items():
        shapes[name] = _check_entry(name, entry, data_size, bad)
        spans.append((*entry["data_offsets"], name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise bad(f"tensor {name!r} starts at byte {begin}, expected {position}")
        position = end
    if position != data_size:
        raise bad(f"its tensors fill {position} bytes of data, the file holds {data_size}")
    return shapes, metadata


def _check_entry(name: str, entry: Any, data_size: int, bad) -> tuple[int, ...]:
    """The shape of one header entry, after checking its dtype, shape and offsets."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise bad(f"tensor {name!r} is not {{dtype, shape, data_offsets}}: {entry!r:.80}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise bad(f"tensor {name!r} has dtype {dtype!r}; readable: {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise bad(f"tensor {name!r} has shape {shape!r:.80}, not a list of sizes >= 0")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise bad(f"tensor {name!r} has data_offsets {offsets!r:.80}, not [begin, end]")
    if offsets[1] > data_size:
        raise bad(
            f"tensor {name!r} has data_offsets {offsets} beyond the {data_size} bytes of data"
        )
    nbytes = math.prod(shape) * DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise bad(
            f"tensor {name!r} of shape {tuple(shape)} {dtype} needs {nbytes} bytes, its "
            f"data_offsets {offsets} span {offsets[1] - offsets[0]}"
        )
    return tuple(shape)


def read_file(caller: str, path: str | os.PathLike) -> bytes:
    """The bytes of the file at `path`.

    Raises:
        FileNotFoundError: no file there. ValueError: a folder or something else unreadable.
    Example:
        >>> read_file("load", "/no/such/file.safetensors")
        Traceback (most recent call last):
        ...
        FileNotFoundError: load: no checkpoint file at /no/such/file.safetensors
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{caller}: no checkpoint file at {path}")
    if not path.is_file():
        raise ValueError(f"{caller}: {path} is not a file")
    return path.read_bytes()
