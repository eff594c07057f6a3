"""Writing files safely: all at once (never half a file under the real name), and JSON without NaN.

Every file the project writes that someone may be reading at the same time (a checkpoint, a
history, a graph page, an ONNX model) goes through `write_atomically`: to a temporary file in
the same folder, flushed and fsynced, then renamed over the target with `os.replace` (atomic on
POSIX and Windows). A crash mid-write leaves the previous file untouched, and the next write
removes the temporary file the crashed one left. Every JSON document goes through `json_safe`
first, since JSON has no NaN or Infinity.

Read next: `checkpoint.py`, the model files written this way.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """`value` with every nan/inf float (also inside dicts, lists, numpy scalars) made None.

    JSON has no NaN or Infinity: Python's json writes them as bare words that strict
    parsers (browsers, jq, other languages) refuse. Every JSON file the project writes
    goes through here, and is then dumped with allow_nan=False.

    Example:
        >>> json_safe({"loss": float("nan"), "acc": [np.float32(0.5), float("inf")]})
        {'loss': None, 'acc': [0.5, None]}
    """
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.generic):
        return value.item()
    return value


def json_default(value: Any) -> Any:
    """What json.dumps writes for a numpy scalar or array and a Path (its `default=`).

    Example:
        >>> json_default(np.float32(0.5)), json_default(Path("m.safetensors"))
        (0.5, 'm.safetensors')
    """
    if isinstance(value, np.generic):
        return value.item()  # np.float32(0.98) -> 0.98
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def write_atomically(path: str | os.PathLike, payload: bytes) -> None:
    """Replace the file at `path` by `payload` all at once: readers see old or new, never half.

    A device or a pipe (`/dev/stdout`) is written straight through, since it cannot be replaced.

    Raises:
        OSError: naming `path` (not the temporary file): a folder there, a missing or
            read-only folder, a full disk.
    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
        >>> write_atomically(path, b"hello")
        >>> path.read_bytes()
        b'hello'
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    if path.exists() and not path.is_file():
        # a device or a pipe (/dev/null, /dev/stdout) cannot be replaced: write straight into it
        try:
            with open(path, "wb") as file:
                file.write(payload)
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(path)) from None
        return
    temporary = None
    try:
        _remove_stale_temporaries(path)
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
        with os.fdopen(descriptor, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the name points at them
        os.chmod(temporary, 0o644)  # mkstemp makes the file private (0o600)
        os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        if isinstance(error, OSError) and error.strerror is not None:
            # name the file the caller asked for, not the temporary
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX only)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files a killed save of `path` left (`.NAME.PID.xxxx.tmp`).

    A process killed between mkstemp and os.replace (SIGKILL, a power cut) cannot clean up
    after itself, so the next save does: a temporary is stale when the process that made it
    (the PID in its name) is gone. Our own process's temporaries may be another thread's
    save in progress, so they are left alone.
    """
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid_text = candidate.name[len(path.name) + 2 :].split(".")[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        if _process_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # NOTE: os.kill on Windows terminates the process: never ask there
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists but is not ours, or cannot tell: keep its file
    return True
