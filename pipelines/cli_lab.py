"""`campaigns lab`: JupyterLab on the repository's notebooks, pointed at a run.

``campaigns lab [--run DIR | --store PATH] [--port N] [--no-browser]`` finds the run (a run
folder, a nightly ``out_dir``'s latest night, or the store's latest published night), puts
it in ``CAMPAIGNS_RUN`` for the notebooks (:func:`pipelines.lab.resolve_run`), prints the
URL with a fresh token and replaces itself with JupyterLab (``python -m jupyterlab``), so
Ctrl-C and signals reach the server directly.

Runs standalone too: ``python -m pipelines.cli_lab --run DIR``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from pipelines.lab import ENV_VAR, LabError, default_run_dir, latest_run, run_from_store

__all__ = ["add_parser", "jupyter_command", "main", "notebook_dir", "resolve", "run"]

DEFAULT_PORT = 8888


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``lab`` sub-command to ``sub`` (an ``add_subparsers()`` result)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "lab",
        help="JupyterLab on the campaign explorer and detector lab notebooks",
        description="Start JupyterLab on the repository's notebooks/ with CAMPAIGNS_RUN set "
        "to a run folder: --run (a run folder or a nightly out_dir, whose latest night is "
        "used), --store (the store's latest published night, <store's folder>/runs/<date>), "
        "or by default ./demo-out (the notebooks make a small demo run there if it is "
        "missing). Prints the URL with its token.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--run", metavar="DIR", help="run folder, or a nightly out_dir")
    where.add_argument("--store", metavar="PATH", help="nightly store (DuckDB file)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on (default %(default)s)"
    )
    p.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser (the default without DISPLAY, WAYLAND_DISPLAY or BROWSER)",
    )
    return p


def resolve(run: str | None = None, store: str | None = None) -> Path:
    """The run folder ``campaigns lab`` opens.

    Parameters
    ----------
    run : str, optional
        A run folder or a nightly ``out_dir`` (:func:`pipelines.lab.latest_run`).
    store : str, optional
        A nightly store: its latest published night (:func:`pipelines.lab.run_from_store`).

    Returns
    -------
    Path
        Absolute. Without ``run`` and ``store``: ``./demo-out``, which need not exist yet
        (the notebooks make a small demo run there).

    Raises
    ------
    LabError
        When the given folder or store holds no run.
    """
    if run is not None and store is not None:
        raise LabError("give --run or --store, not both")
    if store is not None:
        return run_from_store(store).resolve()
    if run is not None:
        return latest_run(run).resolve()
    default = default_run_dir()
    if default.is_dir() and not any(default.iterdir()):
        return default.resolve()  # an empty folder: the notebooks make the demo in it
    return (latest_run(default) if default.exists() else default).resolve()


def notebook_dir() -> Path:
    """The repository's ``notebooks/`` folder (the package is installed editable from it).

    Raises
    ------
    LabError
        When this installation has no notebooks folder.
    """
    nb = Path(__file__).resolve().parents[1] / "notebooks"
    if not nb.is_dir():
        raise LabError(
            f"{nb}: no notebooks folder; run `campaigns lab` from a source checkout "
            "(pip install -e '.[lab]')"
        )
    return nb


def _want_browser() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"))


def jupyter_command(notebooks: Path, port: int, token: str, *, open_browser: bool) -> list[str]:
    """The JupyterLab command line: this interpreter, ``notebooks`` as root, a fixed port
    (no fallback to another one, so the printed URL is the right one), ``token``, listening
    on 127.0.0.1 only, and ``--allow-root`` when run as root (as in a container)."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={notebooks}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        "--ServerApp.ip=127.0.0.1",
    ]
    if not open_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers often run as root; Jupyter refuses otherwise
    return cmd


def run(args: argparse.Namespace) -> int:
    """Resolve the run, set ``CAMPAIGNS_RUN``, print the URL and exec JupyterLab.

    Returns an exit code only when JupyterLab does not start: 2 when the run or the
    notebooks cannot be found or the port is invalid (the message names why), 1 when
    JupyterLab is not installed. On success the process becomes JupyterLab and its exit
    code is the command's.
    """
    try:
        run_dir = resolve(args.run, args.store)
        notebooks = notebook_dir()
    except LabError as e:
        print(f"campaigns lab: error: {e}", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"campaigns lab: error: port {args.port} is not in 1-65535", file=sys.stderr)
        return 2
    try:
        import jupyterlab  # noqa: F401  (only to fail with a clear message)
    except ImportError:
        print(
            "campaigns lab: error: JupyterLab is not installed; pip install -e '.[lab]'",
            file=sys.stderr,
        )
        return 1
    token = secrets.token_hex(24)
    open_browser = _want_browser() and not args.no_browser
    env = dict(os.environ)
    env[ENV_VAR] = str(run_dir)
    made = "" if (run_dir / "run.json").is_file() else " (missing: the notebooks make a demo run)"
    base = f"http://127.0.0.1:{args.port}"
    print(f"campaigns lab: run {run_dir}{made}")
    print(f"campaigns lab: notebooks in {notebooks}")
    print(f"campaigns lab: open {base}/lab/tree/campaign_explorer.ipynb?token={token}")
    print(f"campaigns lab: or    {base}/lab?token={token}")
    sys.stdout.flush()
    sys.stderr.flush()
    cmd = jupyter_command(notebooks, args.port, token, open_browser=open_browser)
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.cli_lab``: the ``lab`` sub-command on its own."""
    parser = argparse.ArgumentParser(prog="campaigns")
    sub = parser.add_subparsers(dest="command")
    p = add_parser(sub)
    args = p.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
