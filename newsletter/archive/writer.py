"""The writer: the only code that touches the output folder.

Everything is written into a fresh temporary folder next to OUT; `commit` then swaps it into
place (an atomic exchange where the OS offers one, else two renames a moment apart) and removes
the old site. If anything fails before that, the temporary folder is removed and the old site
is untouched. A marker file identifies folders we built, so a mistyped OUT (a home folder, the
project root) is never replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from newsletter.errors import ArchiveError

MARKER = ".newsletter-archive"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class Writer:
    """Write files into a temporary build folder, then swap it in with `commit()`.

    Use as a context manager: leaving the block without `commit()` (or with an exception)
    discards the build.
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out).absolute()
        self.tmp: Path | None = None
        self._folders: set[Path] = set()
        self.written: list[str] = []
        self.committed = False

    def __enter__(self) -> Writer:
        check_replaceable(self.out)
        for folder in self.out.parents:
            if folder.exists():
                if not folder.is_dir():
                    raise ArchiveError(f"{self.out}: {folder} is a file, not a folder")
                break
        with self._os_errors("create the site folder"):
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(
                tempfile.mkdtemp(prefix=f".{self.out.name}.build-", dir=self.out.parent)
            ).resolve()
            self.tmp.chmod(0o755)
        return self

    @contextlib.contextmanager
    def _os_errors(self, what: str) -> Iterator[None]:
        """An OSError (no space, no permission, a read-only or pseudo file system such as
        /proc) as one ArchiveError naming OUT; the `with` block then discards the build."""
        try:
            yield
        except OSError as error:
            reason = error.strerror or str(error)
            where = f" ({error.filename})" if error.filename not in (None, str(self.out)) else ""
            raise ArchiveError(f"{self.out}: cannot {what}: {reason}{where}") from error

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.tmp is not None and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _target(self, relative: str) -> Path:
        if self.tmp is None:
            raise RuntimeError("Writer used outside its `with` block")
        # normpath, not resolve(): the build folder is ours (resolved once, holding no links),
        # so ".." is the only way out, and this saves path lookups on every one of ~1,000 files.
        path = Path(os.path.normpath(self.tmp / relative))
        if not path.is_relative_to(self.tmp):
            raise ArchiveError(f"refusing to write outside the site folder: {relative!r}")
        if path.parent not in self._folders:  # one mkdir per folder, not one per file
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(path.parent)
        return path

    def write(self, relative: str, data: str | bytes) -> None:
        """Write one file (text is UTF-8) at `relative` inside the build."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        with self._os_errors(f"write {relative}"):
            self._target(relative).write_bytes(data)
        self.written.append(relative)

    def copy(self, relative: str, source: Path) -> None:
        """Copy a file (a theme's static asset) into the build."""
        with self._os_errors(f"write {relative}"):
            shutil.copyfile(source, self._target(relative))
        self.written.append(relative)

    def commit(self, before_swap: Callable[[Path], None] | None = None) -> None:
        """Run `before_swap(build_folder)` (e.g. the search indexer), then swap the build in."""
        if self.tmp is None:
            raise RuntimeError("Writer used outside its `with` block")
        if before_swap is not None:
            before_swap(self.tmp)
        with self._os_errors("put the new site in place"):
            self._swap()
        self.tmp = None
        self.committed = True

    def _swap(self) -> None:
        assert self.tmp is not None
        (self.tmp / MARKER).write_text("built by `newsletter archive build`\n", encoding="utf-8")
        check_replaceable(self.out)
        if not self.out.exists():
            os.rename(self.tmp, self.out)
        elif _exchange(self.tmp, self.out):
            shutil.rmtree(self.tmp, ignore_errors=True)  # now holds the old site
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.parent))
            old.rmdir()
            os.rename(self.out, old)
            try:
                os.rename(self.tmp, self.out)
            except OSError:
                os.rename(old, self.out)
                raise
            shutil.rmtree(old, ignore_errors=True)


def check_replaceable(out: Path) -> None:
    """ArchiveError unless OUT is absent, empty, or a site this tool built."""
    if not out.exists():
        return
    if not out.is_dir() or out.is_symlink():
        raise ArchiveError(f"{out}: exists and is not a folder")
    if (out / MARKER).exists():
        return
    with contextlib.suppress(StopIteration):
        next(out.iterdir())
        raise ArchiveError(
            f"{out}: not empty and not a site built by newsletter (no {MARKER} file); "
            "refusing to replace it: choose another folder or empty this one"
        )


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux renameat2(RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0
