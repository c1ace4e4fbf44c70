"""GraphHDBSCAN against reference HDBSCAN libraries: time, peak memory and agreement.

Every (method, size, dim) runs in its own subprocess (this script with ``--worker``) on the
same data, so time and peak memory are clean; the labels come back through a temp ``.npy``
and the parent scores each method with the adjusted Rand index against the exact HDBSCAN
result at that (size, dim) and against the generating blobs. Prints one JSON document.

    python benchmarks/clustering.py                          # 50k, 200k, 1M x dims 8, 32
    python benchmarks/clustering.py --quick                  # 20k x 8, cap 120 s (CI)
    python benchmarks/clustering.py --sizes 50000 200000 --dims 8 --out bench.json
    python benchmarks/clustering.py --methods ours hdbscan --cap-seconds 300

fast_hdbscan comes with ``pip install -e '.[bench]'``; a full run stops if a selected
reference is missing, ``--quick`` reports it as ``not_installed``. The ``summary`` gives this
run's ratios at 1M (else at the largest size run), the ``targets`` the goals at their own
sizes, with ``"met"`` and ``"measured"`` (unmeasured goals are not met).

Methods (all with ``min_cluster_size=50`` and the same core distance as ours, the distance to
the 10th neighbour counting the point itself; see ``MIN_SAMPLES``):

- ``ours``: ``clustering.hdbscan_graph.GraphHDBSCAN(min_samples=10, random_state=0)``.
- ``hdbscan``: ``hdbscan.HDBSCAN(min_samples=9)``, its defaults otherwise (Borůvka KD-tree
  for d <= 60 with ``approx_min_span_tree=True``, so not guaranteed exact).
- ``sklearn``: ``sklearn.cluster.HDBSCAN(min_samples=10)``: exact (Prim's MST over the whole
  data, O(n^2) time). Added automatically when no exact method is selected.
- ``fast_hdbscan`` (as of 0.3.4): ``fast_hdbscan.HDBSCAN(min_samples=9)``, its default
  ``algorithm="boruvka"``: exact KD-tree Borůvka for d <= 30; for d > 30 fast_hdbscan itself
  switches to an approximate pynndescent kNN graph (``knn_k`` default ``max(3 * min_samples,
  15)``) whatever ``algorithm`` says, so it is exact only for d <= 30.
- ``fast_hdbscan_kruskal``: ``fast_hdbscan.HDBSCAN(min_samples=9, algorithm="kruskal",
  knn_k=15)``: its approximate mode, Kruskal over an exact KD-tree kNN graph of 15 neighbours
  plus the point itself (the graph size of ours, ``n_neighbors=16``); d > 30 goes to
  pynndescent as above, with ``knn_k=15``. (``algorithm="kruskal"`` with ``knn_k=None`` is an
  exact all-pairs MST with O(n^2) memory, not a fast mode, so it is not run.)

The exact reference at each (size, dim) is ``sklearn`` if it finished, else ``fast_hdbscan``
if it finished and d <= 30; the JSON says which.

Data: a mixture of 80 Gaussian blobs plus 30% uniform noise, deterministic in ``--seed``
(numpy Generator). Per dimension the layout is fixed (seeded by seed and d, not n), so the
sizes are samples of one distribution: blob standard deviations log-uniform in [0.5, 2.5];
blob weights log-normal (sigma 0.75) clipped to [0.3, 4] times the mean, so blobs differ in
size about 13-fold; centres uniform in [0, 100]^d, each at least 3 * (sigma_i + sigma_j) from
the others (blobs may nearly touch but do not overlap); noise uniform in the centres' bounding
box widened by 3 * the largest sigma. Rows are shuffled. Ground truth: the blob, -1 for noise.

Measurement: each worker imports its library, loads the data (float32, from a temp ``.npy``
the parent wrote once per size and dim), warms up with one fit on the first 17,000 rows (the
same for every method: it takes numba's JIT of fast_hdbscan and pynndescent and the start of
hdbscan's joblib workers, used above 16,384 rows, out of the timing), then times one ``fit``.
Peak memory is ``getrusage(RUSAGE_SELF).ru_maxrss`` of the worker: ``peak_rss_mib`` for the
whole process, ``baseline_rss_mib`` before the fit (imports, data, warm-up), ``fit_rss_mib``
their difference (0 when the fit stays under the warm-up's peak). hdbscan's joblib worker
processes (its core-distance query, ``core_dist_n_jobs=4``) are not counted: they are still
alive when the fit ends, so no rusage covers them. ``cpu_seconds`` is the fit's user + system
time over the worker's threads (not hdbscan's joblib workers): next to ``seconds`` and the load
averages it shows whether other processes took the cores during a run.

``--cap-seconds`` bounds each fit, counted from the worker's start of ``fit`` (setup gets
120 s more): a fit over the cap is killed and reported as ``over_cap``; larger sizes of that
method and dim are then not run and reported as ``over_cap`` with ``"ran": false``. Over-cap
results get a power-law projection ``t = a * n^b`` fitted on the method's finished sizes at
that dim, marked ``"projected": true`` with the exponent.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("benchmarks.clustering")

MIN_CLUSTER_SIZE = 50
N_BLOBS = 80
NOISE_SHARE = 0.30
WARMUP_ROWS = 17_000  # just over hdbscan's 16,384 rows, where it starts its joblib workers
SETUP_GRACE_SECONDS = 120.0
FAST_KNN_K = 15
METHODS = ["ours", "hdbscan", "sklearn", "fast_hdbscan", "fast_hdbscan_kruskal"]
EXACT_ORDER = ["sklearn", "fast_hdbscan"]  # first one that finished (fast_hdbscan: d <= 30)
LIBRARY = {
    "ours": "faiss-cpu",
    "hdbscan": "hdbscan",
    "sklearn": "scikit-learn",
    "fast_hdbscan": "fast_hdbscan",
    "fast_hdbscan_kruskal": "fast_hdbscan",
}
MODULE = {
    "ours": "faiss",
    "hdbscan": "hdbscan",
    "sklearn": "sklearn",
    "fast_hdbscan": "fast_hdbscan",
    "fast_hdbscan_kruskal": "fast_hdbscan",
}

# Ours takes the distance to the 10th neighbour, the point itself counted (neighbour 0), as
# scikit-learn does. Each library gets the min_samples that gives that same core distance.
_NOT_SELF = (
    "counts neighbours excluding the point itself, so min_samples=9 gives the 9th other "
    "point, the 10th counting the point itself"
)
MIN_SAMPLES: dict[str, dict[str, Any]] = {
    "ours": {
        "min_samples": 10,
        "why": "clustering/hdbscan_graph.py: core = D[:, min(min_samples, k) - 1] over a FAISS "
        "search of the data against itself, the point itself in column 0",
    },
    "sklearn": {
        "min_samples": 10,
        "why": "counts the point itself, like ours. sklearn/cluster/_hdbscan/hdbscan.py: "
        "neighbors_distances, _ = nbrs.kneighbors(X, min_samples, return_distance=True); "
        "core_distances = np.ascontiguousarray(neighbors_distances[:, -1]) (querying X "
        "against itself, the point is its own first neighbour); its docstring: 'The "
        "min_samples parameter includes the point itself, whereas the implementation in "
        "scikit-learn-contrib/hdbscan does not'",
    },
    "hdbscan": {
        "min_samples": 9,
        "why": _NOT_SELF + ". hdbscan/_hdbscan_boruvka.pyx (KDTreeBoruvkaAlgorithm."
        "_compute_bounds): knn_dist, knn_indices = self.core_dist_tree.query(self.tree.data, "
        "k=self.min_samples + 1, ...); self.core_distance_arr = knn_dist[:, self.min_samples]"
        "; hdbscan/hdbscan_.py (_hdbscan_prims_kdtree, d > 60): tree.query(X, "
        "k=min_samples + 1, ...)[0][:, -1]",
    },
    "fast_hdbscan": {
        "min_samples": 9,
        "why": _NOT_SELF + ". fast_hdbscan/boruvka.py (parallel_boruvka): "
        "parallel_tree_query(tree, tree.data, k=min_samples + 1, output_rdist=True); "
        "core_distances = distances.T[-1]; fast_hdbscan/nndescent.py (d > 30): the self "
        "neighbour is stripped, core_distances = knn_distances[:, min_samples - 1]",
    },
    "fast_hdbscan_kruskal": {
        "min_samples": 9,
        "why": _NOT_SELF + ". fast_hdbscan/kruskal.py (_kruskal_mst_knn): k_query = "
        "max(knn_k, min_samples) + 1  # +1 for self; core_distances = "
        "distances[:, min_samples]",
    },
}
CALL = {
    "ours": "GraphHDBSCAN(min_cluster_size=50, min_samples=10, random_state=0)",
    "hdbscan": "hdbscan.HDBSCAN(min_cluster_size=50, min_samples=9)",
    "sklearn": "sklearn.cluster.HDBSCAN(min_cluster_size=50, min_samples=10, copy=False)",
    "fast_hdbscan": "fast_hdbscan.HDBSCAN(min_cluster_size=50, min_samples=9)",
    "fast_hdbscan_kruskal": (
        f"fast_hdbscan.HDBSCAN(min_cluster_size=50, min_samples=9, algorithm='kruskal', "
        f"knn_k={FAST_KNN_K})"
    ),
}
TARGETS = {
    "ours_seconds_1m_x_32": 30.0,
    "speedup_vs_fastest_fast_hdbscan_1m": 2.5,
    "speedup_vs_hdbscan_1m": 50.0,
    "ari_vs_exact_200k_x_8": 0.97,
    "peak_rss_gib_1m_x_32": 1.5,
}


# ----------------------------------------------------------------------------------- data


def make_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blobs plus uniform noise (see the module docstring): float32 X and the truth labels."""
    rng = np.random.default_rng([seed, d, 0])
    sigma = np.exp(rng.uniform(np.log(0.5), np.log(2.5), N_BLOBS))
    weight = rng.lognormal(0.0, 0.75, N_BLOBS)
    weight = np.clip(weight / weight.mean(), 0.3, 4.0)
    weight /= weight.sum()
    centres = np.empty((N_BLOBS, d))
    placed = 0
    for _ in range(100_000):
        c = rng.uniform(0.0, 100.0, d)
        gap = np.linalg.norm(centres[:placed] - c, axis=1)
        if np.all(gap >= 3.0 * (sigma[:placed] + sigma[placed])):
            centres[placed] = c
            placed += 1
            if placed == N_BLOBS:
                break
    if placed < N_BLOBS:
        raise RuntimeError(f"could not place {N_BLOBS} separated blobs in {d} dimensions")
    lo = centres.min(axis=0) - 3.0 * sigma.max()
    hi = centres.max(axis=0) + 3.0 * sigma.max()

    rng = np.random.default_rng([seed, d, n])
    n_noise = round(NOISE_SHARE * n)
    counts = rng.multinomial(n - n_noise, weight)
    truth = np.concatenate([np.repeat(np.arange(N_BLOBS), counts), np.full(n_noise, -1)])
    X = np.empty((n, d), dtype=np.float32)
    blob = truth[: n - n_noise]
    X[: n - n_noise] = rng.standard_normal((n - n_noise, d), dtype=np.float32)
    X[: n - n_noise] *= sigma[blob, None].astype(np.float32)
    X[: n - n_noise] += centres[blob].astype(np.float32)
    X[n - n_noise :] = rng.uniform(lo, hi, size=(n_noise, d)).astype(np.float32)
    order = rng.permutation(n)
    return X[order], truth[order].astype(np.int64)


# --------------------------------------------------------------------------------- worker


def _import_ours() -> Any:
    # Run as a script, this file's folder is sys.path[0] and this file is named
    # "clustering": drop the folder so "clustering" is the project's package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    from clustering.hdbscan_graph import GraphHDBSCAN

    return GraphHDBSCAN


def _estimator(method: str, d: int) -> tuple[Any, dict[str, Any]]:
    """A fresh estimator for ``method`` and what it will actually do at dimension ``d``."""
    ms = MIN_SAMPLES[method]["min_samples"]
    if method == "ours":
        est = _import_ours()(min_cluster_size=MIN_CLUSTER_SIZE, min_samples=ms, random_state=0)
        return est, {"n_neighbors": est.n_neighbors, "index_method": est.index_method}
    if method == "hdbscan":
        import hdbscan

        est = hdbscan.HDBSCAN(min_cluster_size=MIN_CLUSTER_SIZE, min_samples=ms)
        path = "prims_kdtree" if d > 60 else "boruvka_kdtree"
        return est, {
            "path": path,
            "exact": path == "prims_kdtree" or not est.approx_min_span_tree,
            "approx_min_span_tree": est.approx_min_span_tree,
            "core_dist_n_jobs": est.core_dist_n_jobs,
        }
    if method == "sklearn":
        from sklearn.cluster import HDBSCAN

        est = HDBSCAN(min_cluster_size=MIN_CLUSTER_SIZE, min_samples=ms, copy=False)
        return est, {"path": "kd-tree core distances + Prim's MST over all pairs", "exact": True}
    if method in ("fast_hdbscan", "fast_hdbscan_kruskal"):
        import fast_hdbscan
        import numba

        kwargs: dict[str, Any] = {}
        if method == "fast_hdbscan_kruskal":
            kwargs = {"algorithm": "kruskal", "knn_k": FAST_KNN_K}
        est = fast_hdbscan.HDBSCAN(min_cluster_size=MIN_CLUSTER_SIZE, min_samples=ms, **kwargs)
        # fast_hdbscan/hdbscan.py compute_minimum_spanning_tree: euclidean data with
        # d > 30 and no sample weights go to pynndescent, whatever `algorithm` says.
        if d > 30:
            k = est.knn_k if est.knn_k is not None else max(3 * ms, 15)
            info = {"path": f"pynndescent kNN graph (knn_k={max(k, ms)}) + Kruskal", "exact": False}
        elif est.algorithm == "kruskal":
            info = {"path": f"KD-tree kNN graph (knn_k={est.knn_k}) + Kruskal", "exact": False}
        else:
            info = {"path": "KD-tree parallel Borůvka", "exact": True}
        info.update(algorithm=est.algorithm, knn_k=est.knn_k, numba_threads=numba.get_num_threads())
        return est, info
    raise ValueError(f"unknown method {method!r}")


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process, all its threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def worker(method: str, data: Path, out_dir: Path) -> int:
    """Fit ``method`` once on the array in ``data``; write labels.npy and result.json."""
    result: dict[str, Any] = {"status": "error"}
    try:
        if method == "fast_hdbscan_kruskal":
            import inspect

            import fast_hdbscan

            if "knn_k" not in inspect.signature(fast_hdbscan.HDBSCAN).parameters:
                result = {"status": "not_supported", "error": "this fast_hdbscan has no knn_k"}
                _write_json(out_dir / "result.json", result)
                return 0
        X = np.load(data)
        d = X.shape[1]
        t0 = time.perf_counter()
        warm, _ = _estimator(method, d)
        warm.fit(X[:WARMUP_ROWS].copy())
        del warm
        warmup = time.perf_counter() - t0
        est, info = _estimator(method, d)
        if method == "ours":
            import faiss

            info["faiss_threads"] = faiss.omp_get_max_threads()
        baseline = _rss_mib()
        (out_dir / "started").touch()
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        est.fit(X)
        seconds = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        peak = _rss_mib()
        labels = np.asarray(est.labels_, dtype=np.int64)
        np.save(out_dir / "labels.npy", labels)
        result = {
            "status": "ok",
            "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu, 3),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "peak_rss_mib": round(peak, 1),
            "baseline_rss_mib": round(baseline, 1),
            "fit_rss_mib": round(peak - baseline, 1),
            "warmup_seconds": round(warmup, 3),
            "timings": (
                {k: round(v, 3) for k, v in est.timings_.items()} if method == "ours" else None
            ),
            "mode": info,
        }
    except Exception as exc:
        log.exception("%s failed", method)
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    _write_json(out_dir / "result.json", result)
    return 0 if result["status"] == "ok" else 1


# --------------------------------------------------------------------------------- parent


def _write_json(path: Path, doc: Any) -> None:
    """Write ``doc`` to ``path`` atomically (temp file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the worker's own process group (the worker and its helper processes)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _run_worker(method: str, data: Path, run_dir: Path, cap: float) -> dict[str, Any]:
    """One worker subprocess under the cap; its result dict (labels stay in run_dir)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method]
    cmd += ["--data", str(data), "--worker-dir", str(run_dir)]
    started = run_dir / "started"
    t_launch = time.time()
    # stdout goes to our stderr: stdout carries only the JSON document.
    proc = subprocess.Popen(cmd, stdout=sys.stderr.fileno(), start_new_session=True)
    try:
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            fit_started = started.exists()
            deadline = (
                started.stat().st_mtime + cap
                if fit_started
                else t_launch + cap + SETUP_GRACE_SECONDS
            )
            if time.time() > deadline:
                phase = "fit" if fit_started else "setup"
                log.warning("%s over the cap (%.0f s, %s): killing it", method, cap, phase)
                _kill_group(proc)
                return {"status": "over_cap", "cap_seconds": cap, "killed_in": phase, "ran": True}
    except BaseException:
        _kill_group(proc)
        raise
    res_file = run_dir / "result.json"
    if res_file.exists():
        result: dict[str, Any] = json.loads(res_file.read_text())
    else:
        result = {"status": "error", "error": "worker wrote no result"}
    if rc != 0 and result["status"] in ("ok", "not_supported"):
        result["status"] = "error"
    if result["status"] != "ok":
        result["returncode"] = rc
    return result


def _ari(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    from sklearn.metrics import adjusted_rand_score

    if a is None or b is None:
        return None
    return round(float(adjusted_rand_score(a, b)), 4)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in (
        "numpy",
        "scipy",
        "scikit-learn",
        "hdbscan",
        "fast_hdbscan",
        "faiss-cpu",
        "numba",
        "pynndescent",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _machine(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    try:
        import faiss

        faiss_threads: int | None = faiss.omp_get_max_threads()
    except ImportError:
        faiss_threads = None
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024**2, 1)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": mem,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "faiss_omp_threads": faiss_threads,
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "thread_env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")
            if k in os.environ
        },
        "versions": _versions(),
    }


def _project(results: list[dict[str, Any]]) -> None:
    """Power-law projection t = a * n^b for each over-cap result, from the same method and dim."""
    for r in results:
        if r["status"] != "over_cap":
            continue
        pts = sorted(
            (q["n"], q["seconds"])
            for q in results
            if q["method"] == r["method"] and q["d"] == r["d"] and q["status"] == "ok"
        )
        if len({n for n, _ in pts}) < 2:
            r.update(projected=False, projection_note="needs two finished sizes at this dim")
            continue
        b, log_a = np.polyfit(np.log([n for n, _ in pts]), np.log([t for _, t in pts]), 1)
        r.update(
            projected=True,
            projected_seconds=round(float(math.exp(log_a) * r["n"] ** b), 1),
            fit_exponent=round(float(b), 3),
            fit_sizes=[n for n, _ in pts],
        )


def _seconds(r: dict[str, Any] | None) -> tuple[float | None, str]:
    """A result's seconds: measured, projected, or the cap as a lower bound."""
    if r is None:
        return None, "not run"
    if r["status"] == "ok":
        return r["seconds"], "measured"
    # a run killed at the cap took at least the cap: a projection below it is no estimate
    if (
        r["status"] == "over_cap"
        and r.get("projected")
        and r["projected_seconds"] > r.get("cap_seconds", 0)
    ):
        return r["projected_seconds"], "projected"
    if r["status"] == "over_cap":
        return r["cap_seconds"], "lower_bound"
    return None, r["status"]


def _summary(
    results: list[dict[str, Any]], sizes: list[int], dims: list[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    def get(method: str, n: int, d: int) -> dict[str, Any] | None:
        return next(
            (r for r in results if r["method"] == method and r["n"] == n and r["d"] == d), None
        )

    big = 1_000_000 if 1_000_000 in sizes else max(sizes)
    summary: dict[str, Any] = {"note": "all ratios from this run", "at_n": big}

    ours32 = get("ours", 1_000_000, 32)
    summary["ours_1m_x_32"] = (
        {
            "status": ours32["status"],
            "seconds": ours32.get("seconds"),
            "peak_rss_mib": ours32.get("peak_rss_mib"),
            "fit_rss_mib": ours32.get("fit_rss_mib"),
        }
        if ours32
        else None
    )

    def speedup(others: list[str], d: int) -> dict[str, Any] | None:
        ours = get("ours", big, d)
        if ours is None or ours["status"] != "ok":
            return None
        best: tuple[float, str, str] | None = None
        for m in others:
            t, how = _seconds(get(m, big, d))
            if t is not None and (best is None or t < best[0]):
                best = (t, m, how)
        if best is None:
            return None
        return {
            "n": big,
            "d": d,
            "method": best[1],
            "their_seconds": best[0],
            "their_seconds_are": best[2],
            "projected": best[2] == "projected",
            "our_seconds": ours["seconds"],
            "speedup": round(best[0] / ours["seconds"], 2),
            "speedup_is_lower_bound": best[2] == "lower_bound",
        }

    fast_modes = ["fast_hdbscan", "fast_hdbscan_kruskal"]
    summary["speedup_vs_fastest_fast_hdbscan"] = {f"d={d}": speedup(fast_modes, d) for d in dims}
    summary["speedup_vs_hdbscan"] = {f"d={d}": speedup(["hdbscan"], d) for d in dims}
    ari = get("ours", 200_000, 8)
    summary["ari_vs_exact_200k_x_8"] = (
        {"ari": ari.get("ari_vs_exact"), "exact_reference": ari.get("exact_reference")}
        if ari
        else None
    )

    # Targets: only at their own sizes; unmeasured targets are "met": false, "measured": false.
    def target(value: float | None, ok: bool, limit: str, note: str = "") -> dict[str, Any]:
        out = {"target": limit, "value": value, "met": bool(value is not None and ok)}
        out["measured"] = value is not None
        if note:
            out["note"] = note
        return out

    t32 = ours32.get("seconds") if ours32 else None
    m32 = ours32.get("peak_rss_mib") if ours32 else None
    targets: dict[str, Any] = {
        "ours_seconds_1m_x_32": target(
            t32, t32 is not None and t32 <= TARGETS["ours_seconds_1m_x_32"], "<= 30 s"
        ),
        "peak_rss_1m_x_32": target(
            m32,
            m32 is not None and m32 < TARGETS["peak_rss_gib_1m_x_32"] * 1024,
            "< 1.5 GiB (1536 MiB), whole worker process",
        ),
    }
    for key, modes, limit in (
        ("speedup_vs_fastest_fast_hdbscan_1m", fast_modes, "speedup_vs_fastest_fast_hdbscan_1m"),
        ("speedup_vs_hdbscan_1m", ["hdbscan"], "speedup_vs_hdbscan_1m"),
    ):
        per_dim = {f"d={d}": speedup(modes, d) if big == 1_000_000 else None for d in dims}
        values = [v["speedup"] for v in per_dim.values() if v is not None]
        measured = big == 1_000_000 and len(values) == len(dims) and values
        low = min(values) if measured else None
        projected = any(v["projected"] for v in per_dim.values() if v is not None)
        targets[key] = target(
            low,
            low is not None and low >= TARGETS[limit],
            f">= {TARGETS[limit]}x at 1M, every dim (value: the smallest)",
            "uses projected reference seconds" if projected else "",
        )
    a = ari.get("ari_vs_exact") if ari else None
    targets["ari_vs_exact_200k_x_8"] = target(
        a, a is not None and a >= TARGETS["ari_vs_exact_200k_x_8"], ">= 0.97"
    )
    return summary, targets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    p.add_argument("--dims", type=int, nargs="+", default=[8, 32])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    p.add_argument("--cap-seconds", type=float, default=600.0, help="per fit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="also write the JSON here (atomically)")
    p.add_argument("--quick", action="store_true", help="20k x 8, cap 120 s (CI)")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    log.setLevel(logging.INFO)
    if args.worker:
        return worker(args.worker, args.data, args.worker_dir)

    load_at_start = os.getloadavg()
    if args.quick:
        args.sizes, args.dims, args.cap_seconds = [20_000], [8], 120.0
    sizes, dims = sorted(set(args.sizes)), sorted(set(args.dims))
    methods = [m for m in METHODS if m in args.methods]
    added: list[str] = []
    if not any(m in methods for m in EXACT_ORDER):
        methods.append("sklearn")
        added.append("sklearn")
    missing = [m for m in methods if importlib.util.find_spec(MODULE[m]) is None]
    if missing and not args.quick:
        p.error(f"not installed: {missing} (pip install -e '.[bench]')")

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-clustering-") as tmp:
        for d in dims:
            over_cap_at: dict[str, int] = {}
            for n in sizes:
                X, truth = make_data(n, d, args.seed)
                data = Path(tmp) / f"X_{n}_{d}.npy"
                np.save(data, X)
                del X
                labels: dict[str, np.ndarray] = {}
                group: list[dict[str, Any]] = []
                for m in methods:
                    r: dict[str, Any] = {"method": m, "n": n, "d": d}
                    if m in missing:
                        r["status"] = "not_installed"
                    elif m in over_cap_at:
                        r.update(
                            status="over_cap",
                            cap_seconds=args.cap_seconds,
                            ran=False,
                            note=f"not run: over the cap at n={over_cap_at[m]} already",
                        )
                    else:
                        log.info("%s n=%d d=%d", m, n, d)
                        run_dir = Path(tmp) / f"{m}_{n}_{d}"
                        r.update(_run_worker(m, data, run_dir, args.cap_seconds))
                        if r["status"] == "ok":
                            labels[m] = np.load(run_dir / "labels.npy")
                            lab = labels[m]
                            r["n_clusters"] = int(np.unique(lab[lab >= 0]).size)
                            r["noise_share"] = round(float(np.mean(lab < 0)), 4)
                            log.info("%s n=%d d=%d: %.2f s", m, n, d, r["seconds"])
                        elif r["status"] == "over_cap":
                            over_cap_at[m] = n
                    group.append(r)
                exact = next(
                    (
                        m
                        for m in EXACT_ORDER
                        if m in labels
                        and next(g for g in group if g["method"] == m)["mode"]["exact"]
                    ),
                    None,
                )
                for r in group:
                    r["exact_reference"] = exact
                    r["ari_vs_exact"] = _ari(labels.get(r["method"]), labels.get(exact or ""))
                    r["ari_vs_truth"] = _ari(labels.get(r["method"]), truth)
                results.extend(group)
                data.unlink()

    _project(results)
    summary, targets = _summary(results, sizes, dims)
    doc = {
        "benchmark": "clustering",
        "machine": _machine(load_at_start),
        "parameters": {
            "sizes": sizes,
            "dims": dims,
            "methods": methods,
            "exact_reference_added": added,
            "quick": args.quick,
            "cap_seconds": args.cap_seconds,
            "seed": args.seed,
            "min_cluster_size": MIN_CLUSTER_SIZE,
            "core_distance": "distance to the 10th neighbour, the point itself counted",
            "per_method": {
                m: {"call": CALL[m], **MIN_SAMPLES[m], "library": LIBRARY[m]} for m in methods
            },
            "exact_reference_order": EXACT_ORDER,
            "data": {
                "blobs": N_BLOBS,
                "noise_share": NOISE_SHARE,
                "blob_sigma": "log-uniform [0.5, 2.5]",
                "blob_weight": "log-normal(0, 0.75), clipped to [0.3, 4] x mean",
                "centres": "uniform [0, 100]^d, pairwise >= 3 (sigma_i + sigma_j)",
                "noise": "uniform in the centres' box widened by 3 x max sigma",
                "dtype": "float32",
            },
            "warmup_rows": WARMUP_ROWS,
        },
        "results": results,
        "summary": summary,
        "targets": targets,
    }
    if args.out:
        _write_json(args.out, doc)
    json.dump(doc, sys.stdout, indent=2, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
