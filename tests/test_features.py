"""Features and embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clustering.embeddings import CharNgramEmbedder
from clustering.features import FeatureSpec, build_features, hashed_value_vectors, rarity_weights


def test_hashed_vectors_depend_only_on_value() -> None:
    a = hashed_value_vectors(pd.Series(["x", "y", "x"]), 4, "attr")
    b = hashed_value_vectors(pd.Series(["q", "x"]), 4, "attr")
    np.testing.assert_allclose(a[0], a[2])
    np.testing.assert_allclose(a[0], b[1])
    assert not np.allclose(a[0], a[1])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    c = hashed_value_vectors(pd.Series(["x"]), 4, "other")
    assert not np.allclose(a[0], c[0])


def test_rarity_weights() -> None:
    w = rarity_weights(pd.Series(["a"] * 8 + ["b", None]))
    assert w[-1] == 0.0
    assert w[8] > w[0] > 0.0


def test_shared_rare_values_pull_entities_together() -> None:
    n = 400
    rng = np.random.default_rng(0)
    ua = pd.Series([f"ua{i}" for i in rng.integers(0, 300, n)])
    ua[:30] = "rare-build"
    ents = pd.DataFrame({"ua": ua, "captcha": rng.uniform(size=n)})
    X, names = build_features(ents, FeatureSpec(categorical={"ua": 1.0}, numeric={"captcha": 0.1}))
    assert X.shape == (n, 9) and len(names) == 9
    inside = np.linalg.norm(X[0] - X[1])
    outside = np.linalg.norm(X[0] - X[200])
    assert inside < outside / 3


def test_char_ngram_embedder_groups_templates() -> None:
    texts = [f"anna{1900 + i}" for i in range(30)] + [f"zx_q{i}kv" for i in range(30)]
    Z = CharNgramEmbedder(n_components=8, random_state=0).fit_transform(texts)
    assert Z.shape == (60, 8)
    same = Z[0] @ Z[1]
    other = Z[0] @ Z[40]
    assert same > other
    again = CharNgramEmbedder(n_components=8, random_state=0).fit_transform(texts)
    np.testing.assert_array_equal(Z, again)


def test_embedder_fitted_on_a_sample_separates_templates_as_well() -> None:
    rng = np.random.default_rng(4)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    stems = ["".join(rng.choice(letters, size=int(rng.integers(4, 9)))) for _ in range(300)]
    stem = rng.integers(0, 300, size=4000)
    texts = [stems[i] + str(rng.integers(1, 999)) for i in stem]
    full = CharNgramEmbedder(n_components=8, random_state=0).fit_transform(texts)
    sampled = CharNgramEmbedder(n_components=8, max_fit_rows=1000, random_state=0)
    Z = sampled.fit_transform(texts)
    np.testing.assert_array_equal(Z, sampled.transform(texts))
    again = CharNgramEmbedder(n_components=8, max_fit_rows=1000, random_state=0)
    np.testing.assert_array_equal(Z, again.fit_transform(texts))

    def separation(E: np.ndarray) -> float:
        # share of (same-template, other-template) pairs ordered the right way
        a = rng.integers(0, len(texts), 20000)
        b = rng.integers(0, len(texts), 20000)
        d = np.linalg.norm(E[a] - E[b], axis=1)
        same = (stem[a] == stem[b]) & (a != b)
        return float((d[same][:, None] < d[~same][None, :2000]).mean())

    assert separation(Z) >= separation(full) - 0.03
