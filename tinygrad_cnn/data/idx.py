"""The IDX file format of MNIST and Fashion-MNIST, read (and written) with numpy alone.

An IDX file is a 4-byte magic number, one big-endian int32 per dimension, then the data:

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
                0x0E float64 (multi-byte elements are big-endian)
    byte  3     ndim
    then        ndim sizes as big-endian int32, then prod(sizes) elements in C order

So MNIST images start with 0x00000803 = 2051 and sizes (N, 28, 28); labels start with
0x00000801 = 2049 and size (N,). Files are often gzipped; `read_idx` accepts both.
Every header field is checked, so a corrupted or truncated file is a clear error, never
silent garbage. Read next: `datasets.py`, which finds, downloads and verifies the real files.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

# element type code (byte 2 of the magic number) -> big-endian numpy dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the (already decompressed) bytes of an IDX file into an array.

    Args:
        raw: the whole file's bytes.
        name: what to call the data in error messages (usually the file path).
    Shapes:
        out: the sizes stored in the header, in the native byte order of this machine.
    Raises:
        ValueError: the magic number is wrong, the element type is unknown, the header is cut
            short, a size is zero-dimensional or negative, or the body is shorter or longer
            than the header promises.
    Example:
        >>> raw = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
        >>> parse_idx(raw)
        array([[1, 2, 3],
               [4, 5, 6]], dtype=uint8)
    """
    if len(raw) < 4:
        raise ValueError(f"read_idx: {name} has {len(raw)} bytes, too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"read_idx: {name} has the wrong magic number 0x{raw[:4].hex()}: an IDX file "
            "starts with two zero bytes (e.g. 0x00000803 = 2051 for images, "
            "0x00000801 = 2049 for labels)"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise ValueError(
            f"read_idx: {name} has unknown element type 0x{type_code:02X} in its magic number "
            f"0x{raw[:4].hex()}; known types: {known}"
        )
    if ndim == 0:
        raise ValueError(f"read_idx: {name} declares 0 dimensions in its magic number")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"read_idx: {name} is truncated inside its header: {ndim} dimensions need "
            f"{header_size} header bytes, the file has {len(raw)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    if any(s < 0 for s in shape):
        raise ValueError(f"read_idx: {name} has a negative size in its header: {shape}")
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    body = len(raw) - header_size
    if body != expected:
        problem = "truncated" if body < expected else "too long"
        raise ValueError(
            f"read_idx: {name} is {problem}: its header promises shape {shape} of "
            f"{dtype.name} = {expected} data bytes, the file holds {body}"
        )
    data = np.frombuffer(raw, dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a writable native-order copy


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped (detected by its first two bytes) or raw.

    Args:
        path: the file, e.g. `train-images-idx3-ubyte.gz`.
    Shapes:
        out: the sizes stored in the header, e.g. (60000, 28, 28) uint8 for MNIST images.
    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the gzip stream is corrupted or cut short, or the IDX content is invalid
            (see `parse_idx`).
    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.idx.gz"
        >>> write_idx(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
        >>> read_idx(path).shape
        (2, 3)
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"read_idx: {path} is a corrupted gzip file ({error})") from None
    return parse_idx(raw, str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write `array` as an IDX file, gzipped when `path` ends in `.gz`.

    Raises:
        TypeError: the array's dtype has no IDX element type.
        ValueError: the array is zero-dimensional.
    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.idx"
        >>> write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
        >>> path.read_bytes()[:4].hex(), read_idx(path)
        ('00000801', array([5, 0, 4], dtype=uint8))
    """
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise TypeError(f"write_idx: no IDX element type for dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError("write_idx: cannot write a zero-dimensional array")
    code = codes[dtype]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    raw = header + np.ascontiguousarray(array, IDX_DTYPES[code]).tobytes()
    if str(path).endswith(".gz"):
        raw = gzip.compress(raw)
    with open(path, "wb") as f:
        f.write(raw)
