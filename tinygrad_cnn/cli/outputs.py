"""Checking where a command will write, before it does any work.

An unwritable run folder found after an epoch of training costs that epoch; found after the
data loaded, it costs the wait. So `train`, `demo`, `evaluate --plots` and `lr-find` call
`check_output_folder` first. It creates nothing (a failed start must not leave an empty
folder): it finds the nearest part of the path that exists, checks that it is a folder, and
proves it writable by creating and removing a temporary file there (permission bits do not
tell the whole story: root ignores them, a read-only mount does not show in them).

Read next: `cli/runs.py` (the run that writes into the folder).
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def check_output_folder(path: str | Path | None, option: str = "--out") -> None:
    """Refuse, with one line naming the path, a folder that could not be made or written.

    None (the command picks a default under the current folder) checks the current folder.

    Raises:
        ValueError: the path is an existing file, lies under a file, or is not writable.
    """
    folder = Path(path) if path is not None else Path.cwd()
    shown = f"{option} {folder}" if path is not None else f"the current folder {folder}"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{shown}: is an existing file, not a folder")
    existing = folder
    while not existing.exists():  # the part that exists; the rest will be created
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{shown}: {existing} is a file, so no folder can be made under it")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(f"{shown}: cannot write in {existing} ({reason.lower()})") from None
