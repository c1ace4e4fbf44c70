"""Stage timing and progress: a rich display on a terminal, one log line per stage otherwise."""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("campaigns")

__all__ = ["Stages"]


class Stages:
    """Time named stages of a run and show them.

    Parameters
    ----------
    show_progress : bool or None
        Rich progress display; default: when stderr is a terminal.
    """

    def __init__(self, show_progress: bool | None = None) -> None:
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.timings: dict[str, float] = {}
        # the process's peak resident memory when each stage ended: a high-water mark, so
        # the stage where it jumps is the one that needed the memory
        self.peak_rss_mib: dict[str, float] = {}
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Stages:
        if self.show_progress:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name``; timings of repeated names add up."""
        task = None
        if self._progress is not None:
            task = self._progress.add_task(name, total=1)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.timings[name] = round(self.timings.get(name, 0.0) + dt, 4)
            self.peak_rss_mib[name] = round(_peak_rss_mib(), 1)
            if self._progress is not None and task is not None:
                self._progress.update(task, completed=1, description=f"{name} ({dt:.1f}s)")
            else:
                log.info("stage %s: %.2fs", name, dt)


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
