"""Similar entities: the nearest entities of a run, why they are alike, and a rule for a set.

Every run saves, per kind, what an analyst needs to search its entities later
(:func:`save_search`, called by :func:`pipelines.job.run_job`), in ``DIR/search/``:

``<kind>.faiss``
    A FAISS index over the kind's feature matrix ``X`` of shape (n_entities, n_features):
    row ``i`` is the ``i``-th entity of the run's entity table (sorted by entity id). The
    clusterer's own index is reused when it is a plain FAISS index holding ``X`` (the exact
    ``IndexFlatL2`` below 100,000 entities, else its ``IndexIVFFlat``, copied with a direct
    map so that rows can be reconstructed, and searched with ``nprobe`` at least
    :data:`SEARCH_NPROBE`). Otherwise an exact ``IndexFlatL2`` is built up to
    :data:`EXACT_UP_TO` entities, above that an ``IndexIVFFlat`` trained by the clusterer's
    seeded k-means (:class:`clustering.index.NeighborIndex`). Every saved index can give back
    its rows, so similarity search needs no copy of ``X``.
``<kind>.entities.parquet``
    One row per entity, in index order: ``entity_id``, the kind's profile attributes
    (:data:`clustering.entities.PROFILE_ATTRIBUTES`), its e-mail attributes (the address and
    its canonical mailbox, where the kind has them), ``cluster_id`` (-1 noise), ``campaign_id``
    (as in ``assignments.parquet``) and ``flagged`` (whether that campaign is flagged).
``<kind>.json``
    ``kind``, ``n``, ``d``, ``index_type``, ``index_source`` (``clusterer`` or ``built``),
    ``nprobe``, ``seed``, ``feature_names`` (one per column of ``X``), the attribute lists
    and the entity column's e-mail semantics.

Everything written is a function of the run's inputs and seed: a rerun writes the same bytes.

Then :func:`load_search` opens a run's index, :func:`resolve` turns what an analyst pasted
(ids, e-mail addresses, ``attr=value`` descriptions) into entities, :func:`similar` lists the
nearest entities of seeds with the profile attributes they share, :func:`expand` grows seeds
into a candidate campaign, and :func:`candidate_rule` induces a rule for it with the job's own
inducer and guard.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
import pandas as pd

from anomaly.atomic import atomic_write_parquet, atomic_write_text
from clustering.entities import PROFILE_ATTRIBUTES
from clustering.features import FeatureSpec
from clustering.index import NeighborIndex
from clustering.kinds import get_spec
from clustering.risk_features import features_for

if TYPE_CHECKING:
    from anomaly.rules import Rule
    from pipelines.job import KindResult

log = logging.getLogger(__name__)

__all__ = [
    "EXACT_UP_TO",
    "SEARCH_NPROBE",
    "SearchError",
    "SearchIndex",
    "candidate_rule",
    "expand",
    "load_search",
    "resolve",
    "save_search",
    "similar",
]

# Largest entity count searched exactly when the clusterer's index cannot be reused; a flat
# index over 200,000 x 130 float32 is 100 MiB and answers a query in a few milliseconds.
EXACT_UP_TO = 200_000
# IVF cells probed per analyst query: the clusterer probes 3 for its million-row self-join;
# an analyst's few queries can afford a wider look.
SEARCH_NPROBE = 16
FORMAT_VERSION = 1
# columns of the entities file that are not attributes of the entity
_BOOKKEEPING = ("entity_id", "cluster_id", "campaign_id", "flagged")
# e-mail derivations whose values are addresses a pasted address can be compared with
_EMAIL_DERIVES = ("lower", "canonical")
_SHOWN_VALUE = 32  # characters of a shared value shown in ``shared``
_SHOWN_SHARED = 4  # shared attributes shown per neighbour, rarest first


class SearchError(ValueError):
    """A search that cannot be answered; the message names the query, id or attribute."""


@dataclass
class SearchIndex:
    """One kind's saved search index (:func:`load_search`).

    Attributes
    ----------
    index : faiss.Index
        Over the feature matrix, ``ntotal == len(entities)``; L2 (squared) distances.
    entities : DataFrame of shape (n_entities, n_columns)
        Indexed by entity id (row ``i`` = index row ``i``): attributes, ``cluster_id``,
        ``campaign_id``, ``flagged``.
    meta : dict
        The ``<kind>.json`` record.
    kind : str
    run_dir : Path
    """

    index: Any
    entities: pd.DataFrame
    meta: dict[str, Any]
    kind: str
    run_dir: Path
    _holders: dict[str, pd.Series] = field(default_factory=dict, repr=False)

    @property
    def profile_attributes(self) -> list[str]:
        """Attributes compared in ``shared`` (those the entities file holds)."""
        return [a for a in self.meta.get("profile_attributes", []) if a in self.entities]

    def holders(self, attr: str) -> pd.Series:
        """Entities holding each value of ``attr`` (value -> count), cached."""
        if attr not in self._holders:
            self._holders[attr] = self.entities[attr].value_counts(dropna=True)
        return self._holders[attr]


# --------------------------------------------------------------------------------------------
# Saving (every run)


def save_search(search_dir: str | Path, kind: str, result: KindResult) -> dict[str, Any]:
    """Write ``<kind>.faiss``, ``<kind>.entities.parquet`` and ``<kind>.json`` atomically.

    Parameters
    ----------
    search_dir : path
        ``DIR/search`` of the run; created if missing.
    kind : str
    result : KindResult
        The kind's detection (:func:`pipelines.job.detect`): ``features`` X of shape
        (n_entities, n_features), ``entities`` indexed by entity id in the same order,
        ``labels`` of shape (n_entities,), ``campaigns``, ``attached`` and ``clusterer``.

    Returns
    -------
    dict
        The metadata written to ``<kind>.json``.
    """
    out = Path(search_dir)
    out.mkdir(parents=True, exist_ok=True)
    X = np.ascontiguousarray(result.features, dtype=np.float32)
    if X.ndim != 2 or len(X) != len(result.entities):
        raise ValueError(
            f"{kind}: features of shape {X.shape} do not match {len(result.entities)} entities"
        )
    n, d = X.shape
    seed = int(getattr(result.clusterer, "random_state", 0) or 0)
    index, source = _search_index(result, X, seed)
    _atomic_write_index(index, out / f"{kind}.faiss")
    spec = get_spec(kind)
    email = _email_attributes(kind, result.entities)
    profile = [a for a in PROFILE_ATTRIBUTES[kind] if a in result.entities]
    frame = _entity_frame(result, [*profile, *(a for a in email if a not in profile)])
    atomic_write_parquet(frame, out / f"{kind}.entities.parquet", index=False)
    names = _feature_names(result.entities, features_for(kind, result.entities))
    ivf = _ivf(index)
    meta = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "n": n,
        "d": d,
        "index_type": type(index).__name__,
        "index_source": source,
        "metric": "euclidean (FAISS L2 over the features; distances are its square root)",
        "nprobe": int(ivf.nprobe) if ivf is not None else None,
        "seed": seed,
        "feature_names": names if len(names) == d else None,
        "profile_attributes": profile,
        "email_attributes": email,
        "entity_column": spec.entity_column,
        "entity_is_email": _role(kind, spec.entity_column) == "email",
        "entity_lowercase": bool(spec.entity_lowercase),
    }
    atomic_write_text(out / f"{kind}.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("%s: search index %s (%s) over %d x %d saved", kind, meta["index_type"], source, n, d)
    return meta


def _search_index(result: KindResult, X: np.ndarray, seed: int) -> tuple[Any, str]:
    """The index to save and where it came from (``clusterer`` or ``built``)."""
    n, d = X.shape
    own = getattr(getattr(result.clusterer, "index_", None), "index_", None)
    if own is not None and n and own.ntotal == n and own.d == d:
        if isinstance(own, faiss.IndexFlatL2) and not isinstance(own, faiss.IndexIVF):
            if _holds(own, X):
                return own, "clusterer"
        elif isinstance(own, faiss.IndexIVFFlat):
            copy: Any = faiss.clone_index(own)  # (a copy: the clusterer's index stays as it is)
            copy.make_direct_map()
            copy.nprobe = max(int(copy.nprobe), SEARCH_NPROBE)
            if _holds(copy, X):
                return copy, "clusterer"
    if n <= EXACT_UP_TO:
        flat = faiss.IndexFlatL2(d)
        if n:
            flat.add(X)
        return flat, "built"
    built: Any = NeighborIndex(method="ivf", nprobe=SEARCH_NPROBE, random_state=seed).fit(X).index_
    built.make_direct_map()
    return built, "built"


def _holds(index: Any, X: np.ndarray, rows: int = 8) -> bool:
    """Whether ``index`` gives back the first and last rows of ``X`` (it indexes ``X``)."""
    probe = np.unique(np.r_[np.arange(min(rows, len(X))), np.arange(max(0, len(X) - rows), len(X))])
    try:
        got = index.reconstruct_batch(probe.astype(np.int64))
    except RuntimeError:
        return False
    return bool(np.array_equal(got, X[probe]))


def _ivf(index: Any) -> Any:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _atomic_write_index(index: Any, path: Path) -> None:
    """``faiss.write_index`` to a temporary sibling, fsynced, then renamed over ``path``."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~umask)
        faiss.write_index(index, str(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _role(kind: str, column: str) -> str | None:
    for c in get_spec(kind).columns:
        if c.name == column:
            return c.role
    return None


def _email_attributes(kind: str, entities: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Attributes holding an address (``lower``) or its mailbox (``canonical``) of an e-mail
    column, by name: ``{"derive": ..., "column": ...}``."""
    out = {}
    for a in get_spec(kind).attributes:
        if a.derive in _EMAIL_DERIVES and a.fallback is None and a.name in entities:
            if _role(kind, a.column) == "email":
                out[a.name] = {"derive": a.derive, "column": a.column}
    return out


def _entity_frame(result: KindResult, attributes: list[str]) -> pd.DataFrame:
    """Entity id, attributes, cluster and campaign of each entity (as assignments.parquet)."""
    ents = result.entities
    camps = result.campaigns
    labels = np.asarray(result.labels, dtype=np.int64)
    camp_of = dict(zip(camps["cluster_id"].astype(int), camps["campaign_id"], strict=True))
    campaign = np.array([camp_of.get(int(c)) for c in labels], dtype=object)
    flagged_clusters = set(camps.loc[camps["flagged"].astype(bool), "cluster_id"].astype(int))
    attached = np.asarray(result.attached, dtype=object)
    stray = np.array([a is not None for a in attached], dtype=bool) & ~np.isin(
        labels, list(flagged_clusters)
    )
    campaign[stray] = attached[stray]
    flagged_ids = set(camps.loc[camps["flagged"].astype(bool), "campaign_id"].astype(str))
    columns: dict[str, Any] = {"entity_id": pd.array(ents.index.astype(str), dtype="string")}
    for a in attributes:
        if a not in _BOOKKEEPING:
            columns[a] = ents[a].to_numpy() if ents[a].dtype == object else ents[a].array
    columns["cluster_id"] = labels
    columns["campaign_id"] = pd.array(campaign, dtype="string")
    columns["flagged"] = np.array([c is not None and c in flagged_ids for c in campaign])
    return pd.DataFrame(columns)


def _feature_names(entities: pd.DataFrame, spec: FeatureSpec) -> list[str]:
    """Names of the feature columns in :func:`clustering.features.build_features`'s order
    (the caller drops them if their count differs from the matrix's width)."""
    names: list[str] = []
    names += [f"{c}#{j}" for c in spec.categorical if c in entities for j in range(spec.block_dim)]
    names += [c for c in spec.numeric if c in entities]
    names += [f"{c}_{t}" for c in spec.cyclic if c in entities for t in ("cos", "sin")]
    names += [f"{c}_count" for c in spec.counts if c in entities]
    names += [f"{c}~{j}" for c in spec.text if c in entities for j in range(spec.text_dim)]
    return names


# --------------------------------------------------------------------------------------------
# Loading and resolving queries


def load_search(run_dir: str | Path, kind: str) -> SearchIndex:
    """Open the search index a run saved for ``kind``.

    Parameters
    ----------
    run_dir : path
        The run's output folder (``DIR``; the index is in ``DIR/search/``).
    kind : str

    Returns
    -------
    SearchIndex

    Raises
    ------
    SearchError
        The run has no search index for ``kind`` (made before runs saved one, or another
        kind), or its files do not agree with each other.
    """
    folder = Path(run_dir) / "search"
    paths = [folder / f"{kind}{ext}" for ext in (".json", ".faiss", ".entities.parquet")]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        have = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise SearchError(
            f"{run_dir}: no search index for kind {kind!r} ({missing[0]} is missing); "
            f"kinds with one: {', '.join(have) or 'none'} (runs before the search index was "
            "added need a rerun)"
        )
    meta = json.loads(paths[0].read_text(encoding="utf-8"))
    index = faiss.read_index(str(paths[1]))
    entities = pd.read_parquet(paths[2])
    if not (index.ntotal == len(entities) == meta.get("n")):
        raise SearchError(
            f"{folder}: {kind} index holds {index.ntotal} rows, entities file "
            f"{len(entities)}, metadata {meta.get('n')}: rewrite the run's search index"
        )
    entities = entities.set_index("entity_id", drop=True)
    return SearchIndex(index=index, entities=entities, meta=meta, kind=kind, run_dir=Path(run_dir))


def resolve(search: SearchIndex, queries: Sequence[str]) -> pd.DataFrame:
    """The entities each query names.

    A query is, in this order of precedence:

    - an **entity id** (lower-cased first where the kind's ids are, e.g. sender addresses);
    - ``attr=value`` **terms** separated by spaces (quote a value holding spaces:
      ``display_name_shape="Aa Aa"``), all of which must hold: a description of what the
      analyst saw, e.g. ``email_domain=mailinator.com ua_family=HeadlessChrome``. Values
      compare as text, case-insensitively; an empty value matches a missing one. The
      attributes are the columns of the entities file (profile and e-mail attributes,
      ``cluster_id``, ``campaign_id``, ``flagged``);
    - **words** separated by spaces (a description pasted as it came, e.g.
      ``mailinator.com HeadlessChrome``): every word must be the whole value of one of the
      entity's attributes, whichever (case-insensitive);
    - an **e-mail address** (holding ``@``): matched case-insensitively against the kind's
      address attributes, and against its canonical mailbox where the kind has one (so
      ``J.Doe+x@gmail.com`` finds every dot and plus variant of ``jdoe@gmail.com``);
      for a kind whose entity is an address (senders) the entity id is the address.

    Parameters
    ----------
    search : SearchIndex
    queries : sequence of str

    Returns
    -------
    DataFrame
        One row per (query, matched entity): ``query``, ``how`` (``id``, ``email``,
        ``attributes`` or ``words``), ``matched`` (entities the query matched), ``entity_id``
        and the entity's columns, in query order then entity id. A query that matched nothing keeps
        one row with ``matched`` 0 and a missing ``entity_id`` (and is logged).
        ``attrs["matched"]`` maps each query to its count.

    Raises
    ------
    SearchError
        A term names an unknown attribute (the message lists the known ones), a term is not
        ``attr=value``, or a query is empty or cannot be parsed.
    """
    ents = search.entities
    ids = ents.index
    parts = []
    counts: dict[str, int] = {}
    for query in queries:
        q = query.strip()
        if not q:
            raise SearchError("empty query: give an entity id, an e-mail address or attr=value")
        key = q.lower() if search.meta.get("entity_lowercase") else q
        if key in ids:
            how, mask = "id", np.asarray(ids == key)
        elif "=" in q:
            how, mask = "attributes", _attribute_mask(search, q)
        elif "@" in q:
            how, mask = "email", _email_mask(search, q)
        elif " " in q:
            how, mask = "words", _words_mask(search, q)
        else:
            how, mask = "id", np.zeros(len(ents), dtype=bool)
        hit = ents.loc[mask].reset_index()
        counts[query] = len(hit)
        if not len(hit):
            log.warning("query %r (%s) matched no %s entity", query, how, search.kind)
            hit = pd.DataFrame({"entity_id": pd.array([None], dtype="string")})
        hit.insert(0, "query", query)
        hit.insert(1, "how", how)
        hit.insert(2, "matched", counts[query])
        parts.append(hit)
    columns = ["query", "how", "matched", "entity_id", *ents.columns]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    out = out.reindex(columns=columns)
    out.attrs["matched"] = counts
    return out


def _attribute_mask(search: SearchIndex, query: str) -> np.ndarray:
    ents = search.entities
    try:
        terms = shlex.split(query)
    except ValueError as e:
        raise SearchError(f"query {query!r}: cannot split it into attr=value terms: {e}") from e
    mask = np.ones(len(ents), dtype=bool)
    known = sorted(ents.columns)
    for term in terms:
        attr, eq, value = term.partition("=")
        if not eq or not attr:
            raise SearchError(
                f"query {query!r}: term {term!r} is not attr=value (quote a value with spaces)"
            )
        if attr not in ents:
            raise SearchError(
                f"query {query!r}: unknown {search.kind} attribute {attr!r}; "
                f"known: {', '.join(known)}"
            )
        col = ents[attr]
        if value == "":
            mask &= col.isna().to_numpy()
        else:
            text = col.astype("string").str.lower()
            mask &= (text == value.lower()).fillna(False).to_numpy(dtype=bool)
    return mask


def _words_mask(search: SearchIndex, query: str) -> np.ndarray:
    """Entities holding every word of ``query`` as the whole value of some attribute.

    A free description pasted from a report ("mailinator.com HeadlessChrome 203.0.113.0/24"):
    each word must equal (ignoring case) one of the entity's attribute values, in any
    attribute, so nobody has to know the attributes' names first.
    """
    ents = search.entities
    words = [w.lower() for w in query.split()]
    columns = [c for c in ents.columns if c not in ("cluster_id", "flagged")]
    lowered = {c: ents[c].astype("string").str.lower() for c in columns}
    mask = np.ones(len(ents), dtype=bool)
    for word in words:
        any_col = np.zeros(len(ents), dtype=bool)
        for text in lowered.values():
            any_col |= (text == word).fillna(False).to_numpy(dtype=bool)
        mask &= any_col
    return mask


def _email_mask(search: SearchIndex, query: str) -> np.ndarray:
    ents = search.entities
    address = query.strip().lower()
    mask = np.zeros(len(ents), dtype=bool)
    if search.meta.get("entity_is_email"):
        mask |= np.asarray(ents.index.astype(str).str.lower() == address)
    for attr, how in search.meta.get("email_attributes", {}).items():
        if attr not in ents:
            continue
        target = address if how["derive"] == "lower" else _canonical(search, attr, how, query)
        if target is None:
            continue
        values = ents[attr].astype("string").str.lower()
        mask |= (values == target).fillna(False).to_numpy(dtype=bool)
    return mask


def _canonical(search: SearchIndex, attr: str, how: dict[str, str], query: str) -> str | None:
    """The attribute's own derivation applied to the pasted address (the kind's spec must be
    known: built-in, or registered from its spec file)."""
    from clustering.attributes import attributes_for

    try:
        attribute = attributes_for(search.kind)[attr]
    except (KeyError, ValueError):
        log.info("%s: kind not registered; %s not compared", search.kind, attr)
        return None
    value = attribute.compute(pd.DataFrame({how["column"]: pd.array([query], dtype="string")}))
    return None if pd.isna(value.iloc[0]) else str(value.iloc[0]).lower()


# --------------------------------------------------------------------------------------------
# Neighbours


def similar(search: SearchIndex, seeds: Sequence[str], k: int = 20) -> pd.DataFrame:
    """The ``k`` nearest entities of each seed, and what each shares with its seed.

    Neighbours come from the saved FAISS index, searched with the seeds' own vectors
    (reconstructed from the index); distances are then recomputed exactly (Euclidean, float64,
    rounded to 1e-6) and ties broken by entity id, so the answer does not depend on FAISS's
    thread count or on which other seeds were asked with it. Equal distances at the k-th
    place are resolved by searching wider until the cut is clean.

    Parameters
    ----------
    search : SearchIndex
    seeds : sequence of str
        Entity ids (duplicates are asked once). Seeds are never listed as neighbours.
    k : int
        Neighbours per seed.

    Returns
    -------
    DataFrame of shape (n_seeds * k, 8) at most
        ``seed``, ``entity_id``, ``distance``, ``rank`` (1 = nearest), ``cluster``
        (``cluster_id``, -1 noise), ``campaign_id``, ``flagged`` and ``shared``: the profile
        attributes whose value equals the seed's, rarest value first, as ``attr=value (n)``
        with ``n`` the entities holding that value (``device_id=d-81f2 (3)`` says more than
        ``ip_country=US (2210)``); the four rarest, then ``+n more``. Rows by seed (in the
        order given), then rank.

    Raises
    ------
    SearchError
        An unknown seed id, or ``k < 1``.
    """
    if k < 1:
        raise SearchError(f"k must be at least 1, got {k}")
    rows = _rows(search, seeds)
    found = _neighbours(search, rows, k, exclude=rows)
    ents = search.entities
    ids = ents.index.to_numpy()
    parts = []
    for row, (nb, dist) in zip(rows, found, strict=True):
        parts.append(
            pd.DataFrame(
                {
                    "seed": ids[row],
                    "entity_id": ids[nb],
                    "distance": dist,
                    "rank": np.arange(1, len(nb) + 1),
                    "cluster": ents["cluster_id"].to_numpy()[nb],
                    "campaign_id": ents["campaign_id"].array[nb],
                    "flagged": ents["flagged"].to_numpy()[nb],
                    "shared": _shared(search, row, nb),
                }
            )
        )
    columns = ["seed", "entity_id", "distance", "rank", "cluster", "campaign_id", "flagged"]
    if not parts:
        return pd.DataFrame(columns=[*columns, "shared"])
    return pd.concat(parts, ignore_index=True)


def expand(
    search: SearchIndex,
    seeds: Sequence[str],
    k: int = 20,
    rounds: int = 2,
    max_distance: float | None = None,
) -> pd.DataFrame:
    """Grow seeds into a candidate campaign through the mutual neighbour graph.

    Round ``h`` (1 to ``rounds``) looks at the ``k`` nearest entities of every entity added in
    round ``h - 1`` (round 0: the seeds) and adds each one, not in the set yet, that is within
    ``max_distance`` of an entity that reached it **and** has that entity among its own ``k``
    nearest (mutual neighbours). An entity reached from several is credited to the nearest
    (ties: the smaller id).

    Why mutual: in high dimensions distances crowd together (on the synthetic signups a
    campaign member's 10th fellow member and its nearest outsider are 2.7 and 2.9 apart), so
    a radius alone lets the set leak from a campaign's edge into the ordinary entities next
    to it. An ordinary entity near the edge has other ordinary entities as its own nearest,
    so it does not name the campaign member back and is not added.

    The default ``max_distance`` is the median, over the seeds, of the distance from a seed to
    its ``k``-th nearest neighbour: inside a campaign of more than ``k`` entities that is the
    campaign's own density scale, and the median keeps one outlying seed (a stray, or a benign
    entity pasted by mistake) from widening it for all. Measured on ``generate(days=1,
    seed=0, signups_per_day=3000)`` with 3 seeds, ``k=20``, 2 rounds (mean over 5 seed
    triples): purity / share of the planted campaign 1.00 / 0.95 (data-centre burst), 0.98 /
    0.98 (residential proxies), 0.96 / 0.91 (phone farm), 0.88 / 0.97 (gmail aliases), 0.76 /
    0.87 (low-and-slow); without the mutual test 0.56 / 0.97 and 0.46 / 0.87 for the last two.
    More rounds reach further and leak more (3 rounds: 0.53 and 0.37 purity for those two).
    Seeds from a crowd that looks ordinary in every field (a device pool found only by its
    clock, a marketing burst) give an ordinary crowd, which :func:`candidate_rule`'s guard
    then refuses to enforce.

    Parameters
    ----------
    search : SearchIndex
    seeds : sequence of str
        Entity ids.
    k : int
        Neighbours looked at per entity and round, and the mutual-neighbour test's depth.
    rounds : int
        Hops from the seeds (0 returns the seeds).
    max_distance : float, optional
        Euclidean radius (feature units, as in :func:`similar`).

    Returns
    -------
    DataFrame
        One row per member: ``entity_id``, ``hop`` (0 for seeds), ``via`` (the member it was
        reached from; missing for seeds), ``distance`` (to ``via``), ``cluster``,
        ``campaign_id``, ``flagged``; by hop, distance, entity id. ``attrs["max_distance"]``
        holds the radius used.

    Raises
    ------
    SearchError
        An unknown seed id, ``k < 1`` or ``rounds < 0``.
    """
    if k < 1 or rounds < 0:
        raise SearchError(f"k must be at least 1 and rounds at least 0, got k={k}, {rounds=}")
    rows = _rows(search, seeds)
    ids = search.entities.index.to_numpy().astype(str)
    if max_distance is None:
        kth = [d[-1] for _, d in _neighbours(search, rows, k, exclude=None) if len(d)]
        max_distance = float(np.median(kth)) if kth else 0.0
    hop_of = {int(r): 0 for r in rows}
    via: dict[int, int] = {}
    dist_of = {int(r): 0.0 for r in rows}
    frontier = rows
    for hop in range(1, rounds + 1):
        if not len(frontier):
            break
        reached: dict[int, list[tuple[float, str, int]]] = {}
        for src, (nb, dist) in zip(
            frontier, _neighbours(search, frontier, k, exclude=None), strict=True
        ):
            for r, dd in zip(nb.tolist(), dist.tolist(), strict=True):
                if r not in hop_of and dd <= max_distance:
                    reached.setdefault(r, []).append((dd, ids[src], int(src)))
        candidates = np.array(sorted(reached), dtype=np.int64)
        added = []
        for r, (nb, _) in zip(
            candidates, _neighbours(search, candidates, k, exclude=None), strict=True
        ):
            back = set(nb.tolist())
            named = sorted(t for t in reached[int(r)] if t[2] in back)
            if named:
                dd, _, src = named[0]
                hop_of[int(r)], via[int(r)], dist_of[int(r)] = hop, src, dd
                added.append(int(r))
        frontier = np.array(sorted(added, key=lambda r: ids[r]), dtype=np.int64)
        log.info(
            "%s: expand round %d: %d reached within %.3f, %d mutual neighbours added",
            search.kind,
            hop,
            len(candidates),
            max_distance,
            len(added),
        )
    members = np.array(list(hop_of), dtype=np.int64)
    ents = search.entities
    out = pd.DataFrame(
        {
            "entity_id": pd.array(ids[members], dtype="string"),
            "hop": [hop_of[int(r)] for r in members],
            "via": pd.array([ids[via[r]] if r in via else None for r in members], dtype="string"),
            "distance": [dist_of[int(r)] for r in members],
            "cluster": ents["cluster_id"].to_numpy()[members],
            "campaign_id": ents["campaign_id"].array[members],
            "flagged": ents["flagged"].to_numpy()[members],
        }
    )
    out = out.sort_values(["hop", "distance", "entity_id"], kind="stable", ignore_index=True)
    out.attrs["max_distance"] = max_distance
    return out


def _rows(search: SearchIndex, seeds: Sequence[str]) -> np.ndarray:
    """Index rows of ``seeds`` (first occurrence order, duplicates dropped)."""
    lower = bool(search.meta.get("entity_lowercase"))
    keys = list(dict.fromkeys(s.strip().lower() if lower else s.strip() for s in seeds))
    if not keys:
        raise SearchError("no seeds: give at least one entity id")
    rows = search.entities.index.get_indexer(pd.Index(keys, dtype=object))
    unknown = [s for s, r in zip(keys, rows, strict=True) if r < 0]
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise SearchError(
            f"{len(unknown)} seed(s) are no {search.kind} entity of this run: {shown}"
        )
    return rows.astype(np.int64)


def _vectors(search: SearchIndex, rows: np.ndarray) -> np.ndarray:
    """Feature vectors of index rows, shape (len(rows), d), float32."""
    rows = np.asarray(rows, dtype=np.int64)
    try:
        return np.asarray(search.index.reconstruct_batch(rows), dtype=np.float32)
    except RuntimeError:
        path = search.run_dir / "search" / f"{search.kind}.features.npy"
        if not path.is_file():
            raise SearchError(
                f"the {search.kind} index cannot give back its rows and {path} is missing"
            ) from None
        return np.asarray(np.load(path, mmap_mode="r")[rows], dtype=np.float32)


def _neighbours(
    search: SearchIndex, rows: np.ndarray, k: int, exclude: np.ndarray | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each row: up to ``k`` nearest other rows and their exact distances, sorted by
    (distance rounded to 1e-6, entity id). ``exclude`` rows are never returned (the row
    itself never is)."""
    n = int(search.index.ntotal)
    ids = search.entities.index.to_numpy().astype(str)
    banned = np.unique(np.asarray(exclude if exclude is not None else [], dtype=np.int64))
    V = _vectors(search, rows)
    pending = list(range(len(rows)))
    out: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0))] * len(rows)
    width = min(n, k + len(banned) + 8)
    while pending:
        D, Ivals = search.index.search(V[pending], width)
        again = []
        for j, q in enumerate(pending):
            valid = Ivals[j] >= 0
            cand, dsq = Ivals[j][valid], D[j][valid]
            keep = (cand != rows[q]) & ~np.isin(cand, banned)
            cand, dsq = cand[keep], dsq[keep]
            full = valid.all() and width < n  # more rows beyond the ones returned
            # a cut inside a run of equal distances (or too few left) needs a wider search
            if full and (len(cand) <= k or dsq[k - 1] >= D[j][-1] * (1 - 1e-5)):
                again.append(q)
                continue
            exact = np.sqrt(((_vectors(search, cand) - V[q]).astype(np.float64) ** 2).sum(1))
            exact = np.round(exact, 6)
            order = np.lexsort((ids[cand], exact))[:k]
            out[q] = (cand[order], exact[order])
        pending = again
        width = min(n, 2 * width)
    return out


def _shared(search: SearchIndex, seed: int, rows: np.ndarray) -> list[str]:
    """Per neighbour row: the profile attributes it shares with the seed, rarest first (the
    :data:`_SHOWN_SHARED` rarest, then how many more)."""
    ents = search.entities
    found: list[list[tuple[int, str, str]]] = [[] for _ in rows]
    for attr in search.profile_attributes:
        value = ents[attr].iloc[seed]
        if pd.isna(value):
            continue
        same = (ents[attr].iloc[rows] == value).fillna(False).to_numpy(dtype=bool)
        if not same.any():
            continue
        holders = int(search.holders(attr).get(value, 0))
        text = str(value)
        if len(text) > _SHOWN_VALUE:
            text = text[: _SHOWN_VALUE - 1] + "…"
        for i in np.flatnonzero(same):
            found[i].append((holders, attr, f"{attr}={text} ({holders})"))
    out = []
    for f in found:
        f.sort()
        shown = ", ".join(t for _, _, t in f[:_SHOWN_SHARED])
        more = len(f) - _SHOWN_SHARED
        out.append(shown + (f", +{more} more" if more > 0 else ""))
    return out


# --------------------------------------------------------------------------------------------
# A rule for a candidate campaign


def candidate_rule(
    run_dir: str | Path,
    kind: str,
    members: Sequence[str],
    *,
    events: pd.DataFrame | None = None,
) -> Rule | None:
    """Induce a rule for a candidate campaign as the run's job would have.

    The run's own settings (``run.json`` ``parameters["rules"]``) configure the job's
    :class:`anomaly.induction.GreedyRuleInducer` and :class:`anomaly.campaign_rules.Guard`;
    the background is every event of the run (read again from ``run.json``
    ``inputs[kind]["path"]``, its checksum compared), less the rows the run's allowlists
    exempt (``rules/bundle.json``); rows of the run's other flagged campaigns are neither
    target nor background, as in the job; earlier days recorded in ``run.json["history"]``
    are backtested and held to the blast-radius cap. The rule's status is the guard's
    (``shadow`` with ``provenance.shadow_reasons`` when it fails a bound), its id
    ``rule_id_for(kind, campaign_id_for(kind, members), attributes)``.

    Parameters
    ----------
    run_dir : path
        The run's output folder.
    kind : str
        A built-in kind, or one registered from its spec.
    members : sequence of str
        Entity ids of the candidate campaign (e.g. :func:`expand`'s ``entity_id``).
    events : DataFrame, optional
        The run's events of ``kind`` (validated), when the recorded file is not where it was.

    Returns
    -------
    Rule or None
        The best of the inducer's rules (it may find up to ``rules_per_campaign`` over
        disjoint attributes; this is the first), or None when no rule reaches the inducer's
        precision floor.

    Raises
    ------
    SearchError
        ``run.json`` or the bundle is missing, the recorded input moved or changed, or no
        member is an entity of the run.
    """
    from anomaly.campaign_rules import Guard, _to_rule, campaign_id_for
    from anomaly.induction import GreedyRuleInducer
    from anomaly.rules import evaluate
    from clustering.attributes import compute_attributes
    from clustering.entities import entity_keys
    from pipelines.job import code_version

    run = Path(run_dir)
    record = _read_json(run / "run.json", "run record")
    bundle = _read_json(run / "rules" / "bundle.json", "rule bundle")
    if kind not in record.get("inputs", {}):
        raise SearchError(
            f"{run}: the run had no {kind!r} input; it had {', '.join(record.get('inputs', {}))}"
        )
    if events is None:
        events = _read_recorded(run, kind, record["inputs"][kind], "input")
    spec = get_spec(kind)
    ids = pd.Index(
        list(dict.fromkeys(m.strip().lower() if spec.entity_lowercase else m for m in members))
    )
    if not len(ids):
        raise SearchError("no members: a candidate campaign needs at least one entity")
    allow = bundle.get("allowlists", {}).get(kind, [])
    attrs = compute_attributes(events, kind)
    keep = ~_matches(allow, attrs, evaluate)
    attrs, keys = attrs[keep], entity_keys(kind, events)[keep]
    key_text = keys.astype("string").to_numpy(dtype=object)
    positive = np.isin(key_text, ids.to_numpy(dtype=object))
    if not positive.any():
        raise SearchError(
            f"none of the {len(ids)} members is a {kind} entity of {run} (or every row of "
            "theirs is allowlisted)"
        )
    # the run's other flagged campaigns are neither target nor background, as in the job
    assignments = pd.read_parquet(run / "assignments.parquet")
    campaigns = pd.read_parquet(run / "campaigns.parquet")
    flagged = set(campaigns.loc[campaigns["flagged"] & (campaigns["kind"] == kind), "campaign_id"])
    mine = assignments[(assignments["kind"] == kind) & assignments["campaign_id"].isin(flagged)]
    ignore = np.isin(key_text, mine["entity_id"].to_numpy(dtype=object)) & ~positive
    codes, uniques = pd.factorize(keys.astype("string"), use_na_sentinel=False)
    weights = 1.0 / np.bincount(codes, minlength=len(uniques))[codes]
    params = record.get("parameters", {})
    rc = params.get("rules", {})
    inducer = GreedyRuleInducer(
        kind,
        min_recall=rc.get("min_recall", 0.9),
        n_rules=rc.get("rules_per_campaign", 3),
        max_predicates=rc.get("max_predicates", 4),
    )
    guard = Guard(
        **{
            f: rc[f]
            for f in Guard.__dataclass_fields__
            if f in rc  # enforce_*, max_*, ttl_days, action
        }
    )
    found = inducer.induce(attrs, positive, ignore, weights)
    if not found:
        log.info("%s: no rule reaches the precision floor for %d members", kind, len(ids))
        return None
    earlier = []
    for i, entry in enumerate(record.get("history", {}).get(kind, [])):
        past = compute_attributes(_read_recorded(run, kind, entry, f"history #{i + 1}"), kind)
        past = past[~_matches(allow, past, evaluate)]
        day = Path(entry["path"]).stem
        earlier.append(
            {"day": day, "rows": len(past), "hits": int(evaluate(found[0].condition, past).sum())}
        )
    kind_params = params.get(kind) or params.get("kinds", {}).get(kind, {})
    rule = _to_rule(
        kind,
        campaign_id_for(kind, ids.to_numpy()),
        found[0],
        n_rows=len(attrs),
        earlier=earlier,
        run_id=str(record.get("run_id", "")),
        created_at=datetime.fromisoformat(str(bundle["created_at"])),
        code_version=code_version(),
        parameters={"kind": kind, **kind_params, "rules": rc},
        guard=guard,
    )
    rule.provenance["candidate"] = {"source": "similar entities", "members": len(ids)}
    return rule


def _matches(entries: list[dict[str, Any]], attrs: pd.DataFrame, evaluate: Any) -> np.ndarray:
    mask = np.zeros(len(attrs), dtype=bool)
    for entry in entries:
        mask |= evaluate(entry["condition"], attrs)
    return mask


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise SearchError(f"{path} is missing: not a run folder, or the run did not finish")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SearchError(f"{path}: unreadable {what}: {e}") from e
    if not isinstance(data, dict):
        raise SearchError(f"{path}: the {what} is not a JSON object")
    return data


def _read_recorded(run: Path, kind: str, entry: dict[str, Any], what: str) -> pd.DataFrame:
    """Events a run recorded reading (``{"path", "sha256", "quarantine"?}``), checked."""
    from pipelines.readers import read_events

    recorded = Path(str(entry["path"]))
    path = recorded
    if not path.exists() and not path.is_absolute() and (run / path).exists():
        path = run / path
    if not path.exists():
        raise SearchError(
            f"the run's {kind} {what} {str(recorded)!r} (run.json) is no longer there: the run "
            "folder keeps no events; put the file back or pass the events in"
        )
    with tempfile.TemporaryDirectory() as tmp:
        quarantine = Path(tmp) / "quarantine.parquet" if entry.get("quarantine") else None
        read = read_events(path, kind, quarantine=quarantine)
    if entry.get("sha256") and read.sha256 != entry["sha256"]:
        raise SearchError(
            f"the run's {kind} {what} {str(recorded)!r} changed since the run (checksum "
            f"{read.sha256[:12]} != recorded {str(entry['sha256'])[:12]}): its rules would be "
            "measured on other events"
        )
    return read.frame
