"""Atomic file writes: readers see the old file or the new one, never a half-written one.

Every write goes to a temporary file in the target's directory (same file system, so the
rename is atomic), is flushed and fsynced, then renamed over the target with ``os.replace``.
On failure the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "atomic_write_bytes",
    "atomic_write_files",
    "atomic_write_parquet",
    "atomic_write_text",
]


def _umask() -> int:
    """The process umask, read from /proc where possible (os.umask can only set it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; not every platform or file system allows it (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stage(path: Path, write: Callable[[Path], object]) -> Path:
    """Write a temporary sibling of ``path`` with ``write(tmp)``, fsynced; return its path.

    The temporary file gets the target's permissions (or the umask's default for new files)
    rather than ``mkstemp``'s 0600. It is removed if anything fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def _commit(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create parent directories; return the path."""
    target = Path(path)
    _commit(_stage(target, lambda tmp: tmp.write_bytes(data)), target)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 by default, newlines untranslated)."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_parquet(df: pd.DataFrame, path: str | os.PathLike[str], **kwargs: object) -> Path:
    """Write ``df`` as Parquet to ``path`` atomically; ``kwargs`` go to ``DataFrame.to_parquet``."""
    target = Path(path)

    def write(tmp: Path) -> None:
        df.to_parquet(tmp, **kwargs)  # type: ignore[arg-type]

    _commit(_stage(target, write), target)
    return target


def _writer(data: bytes) -> Callable[[Path], object]:
    return lambda tmp: tmp.write_bytes(data)


def atomic_write_files(files: Mapping[str | os.PathLike[str], bytes]) -> list[Path]:
    """Replace several small files together, in the given order.

    All contents are written to temporary files first; only then are they renamed, in order,
    so a failure while writing changes nothing. Put the file readers key on (e.g. a bundle's
    JSON) last. If a rename fails, the files already replaced are restored from their previous
    contents (held in memory: meant for small files) and the remaining temporary files are
    removed before the error propagates.

    Returns
    -------
    list of Path
        The targets, in order.
    """
    targets = [Path(p) for p in files]
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in zip(targets, files.values(), strict=True):
            staged.append((_stage(target, _writer(data)), target))
    except BaseException:
        _discard(tmp for tmp, _ in staged)
        raise
    previous = {t: (t.read_bytes() if t.exists() else None) for t in targets}
    done: list[Path] = []
    try:
        for i, (tmp, target) in enumerate(staged):
            try:
                os.replace(tmp, target)
            except BaseException:
                _discard(t for t, _ in staged[i:])
                raise
            done.append(target)
    except BaseException:
        _restore(done, previous)
        raise
    for directory in {t.parent for t in targets}:
        _fsync_dir(directory)
    return targets


def _discard(tmps: Iterable[Path]) -> None:
    for tmp in tmps:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _restore(done: list[Path], previous: Mapping[Path, bytes | None]) -> None:
    """Put back what the already-renamed targets held (best effort, logged on failure)."""
    for target in reversed(done):
        old = previous[target]
        try:
            if old is None:
                target.unlink(missing_ok=True)
            else:
                atomic_write_bytes(target, old)
        except OSError:
            log.exception("could not restore %s after a failed multi-file write", target)
