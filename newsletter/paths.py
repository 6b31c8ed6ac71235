"""Where the package's data lives (templates and migrations, in a source checkout or an installed
wheel), and how a file the user names for output is written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from typing import Any

from newsletter.errors import OutputFileError

PACKAGE_DIR = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """A folder shipped with the project: the repo's top-level one, or the wheel's copy."""
    for candidate in (PACKAGE_DIR.parent / name, PACKAGE_DIR / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name}/ folder next to the package")


@contextlib.contextmanager
def output_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A stream whose content becomes the file `path` whole or not at all: written to a
    temporary file beside it, then renamed over it (`mode` "w" for UTF-8 text, "wb" for bytes).

    Any OS error becomes one `OutputFileError` naming the path, so a command never leaves a
    truncated file behind nor prints a traceback for a missing folder or a read-only disk. The
    file is readable by its owner only, as a temporary file is: exports hold personal data.
    """
    import tempfile  # here: it imports shutil, zlib and random, which most commands never use

    folder = path.parent
    binary = "b" in mode
    try:
        stream = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, renamed or removed)
            mode,
            encoding=None if binary else "utf-8",
            newline=None if binary else "",
            dir=folder,
            prefix=f".{path.name}.",
            delete=False,
        )
    except OSError as error:
        reason = error.strerror or str(error)
        if not folder.is_dir():
            reason = f"the folder {folder} does not exist"
        raise OutputFileError(f"{path}: cannot write: {reason}") from None
    temporary = Path(stream.name)
    try:
        with stream:
            yield stream
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise OutputFileError(f"{path}: cannot write: {error.strerror or error}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
