"""Where the package's data lives (templates and migrations, in a source checkout or an installed
wheel), and how a file the user names for output is written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from newsletter.errors import OutputFileError

PACKAGE_DIR = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """A folder shipped with the project: the repo's top-level one, or the wheel's copy."""
    for candidate in (PACKAGE_DIR.parent / name, PACKAGE_DIR / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name}/ folder next to the package")


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (a temporary file beside it, then a rename).

    Any OS error becomes one `OutputFileError` naming the path, so a command never leaves a
    truncated file behind nor prints a traceback for a missing folder or a read-only disk.
    """
    folder = path.parent
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as error:
        reason = error.strerror
        if not folder.is_dir():
            reason = f"the folder {folder} does not exist"
        raise OutputFileError(f"{path}: cannot write: {reason}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise OutputFileError(f"{path}: cannot write: {error.strerror}") from None


def _umask() -> int:
    # mkstemp creates files 0600; an output file should get the usual mode (0644 by default).
    mask = os.umask(0)
    os.umask(mask)
    return mask
