"""Every notebook in notebooks/ runs top to bottom on a small demo run, and is committed
stripped (no outputs, no execution counts), opening with a markdown cell saying what it is for.

The notebooks read the run from ``CAMPAIGNS_RUN``, as under ``campaigns lab``; the kernel
inherits it from this process.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.demo import run_demo
from pipelines.lab import ENV_VAR

log = logging.getLogger(__name__)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
TIMEOUT = 300  # seconds per cell; a whole notebook takes well under a minute here
DRAWS = {"campaign_explorer", "detector_lab"}  # notebooks that must show a figure


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("notebooks") / "demo-out"
    run_demo(out, signups_per_day=3000, messages_per_day=3000)
    return out


def test_there_are_notebooks() -> None:
    names = {p.name for p in PATHS}
    assert {"campaign_explorer.ipynb", "detector_lab.ipynb"} <= names


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stripped_and_says_what_it_is_for(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells and nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.lstrip().startswith("#")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {i} has outputs"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} was run"
        assert "execution" not in cell.get("metadata", {}), f"{path.name}: cell {i} timings"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_top_to_bottom(
    path: Path, demo_run: Path, monkeypatch: pytest.MonkeyPatch, record_property: Any
) -> None:
    monkeypatch.setenv(ENV_VAR, str(demo_run))
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()  # raises CellExecutionError naming the cell on the first error
    seconds = time.perf_counter() - started
    record_property("seconds", round(seconds, 1))
    log.info("%s ran in %.1fs", path.name, seconds)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    if path.stem in DRAWS:
        assert any("image/png" in o.get("data", {}) for o in outputs), "no figure drawn"
