"""MNIST and Fashion-MNIST from their original gzipped IDX files: found, downloaded, verified.

Where the files are looked for (the first that applies is THE data folder):

1. the `root` argument;
2. the environment variable `TINYGRAD_CNN_DATA`, a folder holding `mnist/` and
   `fashion-mnist/` with the original file names (e.g. `mnist/train-images-idx3-ubyte.gz`);
3. the user cache `~/.cache/tinygrad_cnn` (or `$XDG_CACHE_HOME/tinygrad_cnn`).

In the data folder a file is found as `<folder>/<dataset>/<file>` or `<folder>/<file>`. A missing
file is downloaded into `<folder>/<dataset>/` from the dataset's public mirrors (to a temporary
file, renamed into place only once complete), and every file is checked against its SHA-256
before it is parsed. Parsed arrays are cached for the life of the process.

A folder named by `root` or `TINYGRAD_CNN_DATA` must exist: a typo is an error naming it, and
creates nothing. Folders are made only once a mirror has answered, so a failed download leaves
no trace; and all the download attempts together give up after `CONNECT_BUDGET` seconds.
Read next: `shapes.py` (the synthetic offline dataset) and `loader.py` (batches).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_cnn.data.idx import read_idx

ENV_VAR = "TINYGRAD_CNN_DATA"

FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
MNIST_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))

# file names per split, and the SHA-256 of each original gzipped file
# (the values torchvision pins; see the data README)
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SOURCES = {
    "mnist": {
        "mirrors": (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        "sha256": {  # keyed by file name without "-idx?-ubyte.gz"
            "train-images": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    },
    "fashion-mnist": {
        "mirrors": (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        "sha256": {  # keyed by file name without "-idx?-ubyte.gz"
            "train-images": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    },
}  # fmt: skip
SPLIT_SIZES = {"train": 60000, "test": 10000}
# seconds: the longest wait for one mirror to answer, and for all of them together
CONNECT_TIMEOUT = 8.0
CONNECT_BUDGET = 20.0

Progress = Callable[[int, int], None]  # (bytes done, total bytes or 0 when unknown)

# (dataset, split, images path, labels path, their (size, mtime) stamps) -> (images, labels)
_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def data_folder(root: str | os.PathLike | None = None) -> Path:
    """The data folder: `root` if given, else `$TINYGRAD_CNN_DATA`, else the user cache.

    Example:
        >>> data_folder("/srv/data").as_posix()
        '/srv/data'
        >>> import pathlib
        >>> data_folder("~/data") == pathlib.Path.home() / "data"
        True
    """
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "tinygrad_cnn"


def stderr_progress(done: int, total: int) -> None:
    """The default download progress: one line on stderr, rewritten in place.

    Example:
        >>> import contextlib, io
        >>> line = io.StringIO()
        >>> with contextlib.redirect_stderr(line):
        ...     stderr_progress(2**20, 2**21)
        >>> line.getvalue()
        '\\r  [###############               ]    1.0 / 2.0 MiB'
    """
    if total:
        bar = "#" * (30 * done // total)
        line = f"\r  [{bar:<30}] {done / 2**20:6.1f} / {total / 2**20:.1f} MiB"
    else:
        line = f"\r  {done / 2**20:6.1f} MiB"
    print(line, end="\n" if total and done >= total else "", file=sys.stderr, flush=True)


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of the file at `path` as 64 hex digits, read in 1 MiB blocks.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "abc.txt"
        >>> _ = path.write_bytes(b"abc")
        >>> sha256_of(path)
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    sha256: str,
    progress: Progress | None = stderr_progress,
    timeout: float = CONNECT_TIMEOUT,
):
    """Fetch `url` to `dest` through a temporary file in the same folder, check its SHA-256,
    then rename it into place (atomic: `dest` is either absent or complete). `dest`'s folder is
    made only once the server has answered; `timeout` bounds the wait for an answer and for
    each block of data.

    Raises:
        OSError: the network or the disk failed (urllib's errors are OSErrors).
        ValueError: the downloaded bytes have the wrong SHA-256 (nothing is kept).
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> source = folder / "source.bin"
        >>> _ = source.write_bytes(b"abc")
        >>> download(source.as_uri(), folder / "copy.bin", sha256_of(source), progress=None)
        >>> (folder / "copy.bin").read_bytes()
        b'abc'
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:
        dest.parent.mkdir(parents=True, exist_ok=True)  # only now: the server answered
        _download_body(response, url, dest, sha256, progress)


def _download_body(response: Any, url: str, dest: Path, sha256: str, progress: Progress | None):
    """The rest of `download`: the answer's bytes to a temporary file, checked, renamed."""
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise ValueError(f"download: {url} has SHA-256 {digest.hexdigest()}, expected {sha256}")
        os.replace(tmp_name, dest)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


def _expected_sha256(dataset: str, name: str) -> str:
    return SOURCES[dataset]["sha256"][name.split("-idx")[0]]


def _locate(
    dataset: str, names: tuple[str, ...], folder: Path, caller: str, allow_download: bool
) -> list[Path]:
    """Find (or download) the files `names` of `dataset` in `folder` (checksums come later)."""
    paths, failures = [], {}  # failures: error message -> mirror hosts that gave it
    deadline = time.monotonic() + CONNECT_BUDGET  # for all the attempts together
    for name in names:
        candidates = [folder / dataset / name, folder / name]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None and allow_download and not _offline(failures):
            found = _download_from_mirrors(dataset, name, candidates[0], caller, failures, deadline)
        paths.append(found)
    if all(path is not None for path in paths):
        return paths
    missing = ", ".join(f"{dataset}/{name}" for name, path in zip(names, paths) if path is None)
    if not allow_download:
        why = "downloading is switched off (download=False)"
    else:
        why = "downloading failed: " + "; ".join(
            f"{error} ({', '.join(dict.fromkeys(hosts))})" for error, hosts in failures.items()
        )
    raise FileNotFoundError(
        f"{caller}: missing {missing} in the data folder {folder} (searched {folder / dataset} "
        f"and {folder}); {why}. The data folder is the root argument if given, else "
        f"${ENV_VAR} (a folder holding mnist/ and fashion-mnist/ with the original gzipped IDX "
        f"files), else ~/.cache/tinygrad_cnn: put the files there or set {ENV_VAR}"
    )


def _offline(failures: dict[str, list[str]]) -> bool:
    """True once every mirror tried has failed to connect: further files would fail alike."""
    return bool(failures) and all(error.startswith("cannot connect") for error in failures)


def _download_from_mirrors(
    dataset: str,
    name: str,
    dest: Path,
    caller: str,
    failures: dict[str, list[str]],
    deadline: float,
) -> Path | None:
    for mirror in SOURCES[dataset]["mirrors"]:
        url = mirror + name
        left = deadline - time.monotonic()
        if left <= 0:
            message = f"cannot connect: gave up after {CONNECT_BUDGET:g} s"
            failures.setdefault(message, []).append(urllib.parse.urlsplit(url).netloc)
            continue
        print(f"{caller}: downloading {url}", file=sys.stderr)
        try:
            download(url, dest, _expected_sha256(dataset, name), timeout=min(CONNECT_TIMEOUT, left))
            return dest
        except (OSError, ValueError) as error:
            failures.setdefault(_describe(error), []).append(urllib.parse.urlsplit(url).netloc)
    return None


def _describe(error: Exception) -> str:
    """One short line for a failed download; connection failures all start 'cannot connect'."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return f"cannot connect: {getattr(reason, 'strerror', None) or reason}"
    if isinstance(error, (ConnectionError, TimeoutError)):
        return f"cannot connect: {error}"
    return str(error)  # a checksum mismatch, or the disk (permissions, space)


def _check_chosen_folder(folder: Path, root: Any, caller: str) -> None:
    """A folder the user named (root, $TINYGRAD_CNN_DATA) must exist: a typo is not a new
    place to download into. Only the default cache folder is made when first needed."""
    if root is None and not os.environ.get(ENV_VAR):
        return
    if not folder.is_dir():
        source = "the root argument" if root is not None else f"${ENV_VAR}"
        what = "is not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(
            f"{caller}: the data folder {folder} ({source}) {what}; nothing was created. "
            f"Point it at a folder holding mnist/ and fashion-mnist/ with the original gzipped "
            f"IDX files, or unset {ENV_VAR} to use ~/.cache/tinygrad_cnn"
        )


def _verify(path: Path, expected: str, caller: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(
            f"{caller}: {path} has SHA-256 {actual}, expected {expected}: the file is corrupted "
            "or not the original; delete it (it will be downloaded again) or replace it"
        )


def load_dataset(
    dataset: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of 'mnist' or 'fashion-mnist' (see `load_mnist`).

    Shapes:
        images: (N, 28, 28) uint8; labels: (N,) int64; N = 60000 (train) or 10000 (test).
    Raises:
        ValueError: an unknown dataset or split, or a file with the wrong SHA-256.
        FileNotFoundError: a file is missing and cannot be downloaded.
    Example:
        >>> images, labels = load_dataset("fashion-mnist", "test")  # doctest: +SKIP
        >>> images.shape, labels.shape  # doctest: +SKIP
        ((10000, 28, 28), (10000,))
        >>> load_dataset("cifar10")
        Traceback (most recent call last):
        ...
        ValueError: load_dataset: unknown dataset 'cifar10'; choose from ['mnist', 'fashion-mnist']
    """
    caller = "load_" + dataset.replace("-", "_")
    if dataset not in SOURCES:
        raise ValueError(f"load_dataset: unknown dataset {dataset!r}; choose from {list(SOURCES)}")
    if split not in SPLIT_FILES:
        raise ValueError(f"{caller}: split must be 'train' or 'test', got {split!r}")
    folder = data_folder(root)
    _check_chosen_folder(folder, root, caller)
    paths = _locate(dataset, SPLIT_FILES[split], folder, caller, download)
    stamps = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    key = (dataset, split, *(str(p.resolve()) for p in paths), stamps)
    if key not in _cache:
        for path in paths:
            _verify(path, _expected_sha256(dataset, path.name), caller)
        images, labels = read_idx(paths[0]), read_idx(paths[1]).astype(np.int64)
        n = SPLIT_SIZES[split]
        if images.shape != (n, 28, 28) or labels.shape != (n,) or images.dtype != np.uint8:
            raise ValueError(
                f"{caller}: expected images (N, 28, 28) uint8 and labels (N,) with N = {n}, "
                f"got {images.shape} {images.dtype} and {labels.shape}"
            )
        images.flags.writeable = False  # shared by every caller through the cache
        labels.flags.writeable = False
        _cache[key] = (images, labels)
    return _cache[key]


def load_mnist(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST handwritten digits (LeCun, Cortes, Burges), 60,000 train and 10,000 test.

    Args:
        split: 'train' or 'test'.
        root: the data folder; default `$TINYGRAD_CNN_DATA`, else `~/.cache/tinygrad_cnn`.
        download: fetch missing files from the public mirrors.
    Shapes:
        images: (N, 28, 28) uint8 in 0..255; labels: (N,) int64 in 0..9. Both are read-only
        (they are cached and shared); copy them before changing them.
    Raises:
        ValueError: a bad split, or a file whose SHA-256 is not the original's.
        FileNotFoundError: a file is missing and cannot be downloaded; the message names the
            files, the folders searched and `TINYGRAD_CNN_DATA`.
    Example:
        >>> images, labels = load_mnist("test")  # doctest: +SKIP
        >>> images.shape, images.dtype, labels[:5]  # doctest: +SKIP
        ((10000, 28, 28), dtype('uint8'), array([7, 2, 1, 0, 4]))
    """
    return load_dataset("mnist", split, root, download)


def load_fashion_mnist(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Xiao, Rasul, Vollgraf): 28x28 clothing images in 10 classes, named in
    `FASHION_CLASSES`; 6,000 train and 1,000 test images per class. Same arguments, shapes and
    errors as `load_mnist`.

    Shapes:
        images: (N, 28, 28) uint8 in 0..255; labels: (N,) int64 in 0..9 (read-only).
    Example:
        >>> images, labels = load_fashion_mnist("test")  # doctest: +SKIP
        >>> FASHION_CLASSES[labels[0]]  # doctest: +SKIP
        'Ankle boot'
    """
    return load_dataset("fashion-mnist", split, root, download)
