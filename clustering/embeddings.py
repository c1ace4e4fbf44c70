"""Text embeddings: character n-grams of usernames, names and subjects.

Hashed character n-grams (no vocabulary to persist, no model to download), TF-IDF weighted,
reduced by a seeded truncated SVD and scaled to unit length. Templated names ("anna1987",
"mark2291") and subject templates land close together even when no value repeats exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

__all__ = ["CharNgramEmbedder"]


class CharNgramEmbedder:
    """Embed short texts by their character n-grams.

    Parameters
    ----------
    n_components : int
        Output dimension.
    ngram_range : tuple of int
        Character n-gram lengths (within word boundaries).
    n_features : int
        Hashing space size.
    max_fit_rows : int
        The SVD is fitted on at most this many seeded rows (the IDF on all of them).
    random_state : int
        Seed of the SVD.

    Attributes
    ----------
    svd_ : TruncatedSVD or None
        None when the input had too few distinct texts to reduce; the output is then zeros.
    tfidf_ : TfidfTransformer
    """

    def __init__(
        self,
        n_components: int = 16,
        ngram_range: tuple[int, int] = (2, 4),
        n_features: int = 2**18,
        max_fit_rows: int = 100_000,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.ngram_range = ngram_range
        self.n_features = n_features
        self.max_fit_rows = max_fit_rows
        self.random_state = random_state

    def _hash(self, texts: Sequence[str]):  # type: ignore[no-untyped-def]
        vec = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            n_features=self.n_features,
            alternate_sign=False,
            norm=None,
            lowercase=True,
        )
        return vec.transform(texts)

    def fit(self, texts: Sequence[str]) -> CharNgramEmbedder:
        """Fit the IDF weights and the SVD on ``texts`` (n_samples,)."""
        return self._fit_counts(self._hash(texts))

    def _fit_counts(self, counts: sparse.csr_matrix) -> CharNgramEmbedder:
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(counts)
        weighted = self.tfidf_.transform(counts)
        if weighted.shape[0] > self.max_fit_rows:
            # the SVD learns a dozen directions: a seeded sample finds the same ones at a
            # fraction of the cost (the IDF above still counts every row)
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(weighted.shape[0], size=self.max_fit_rows, replace=False))
            weighted = weighted[rows]
        n_comp = min(self.n_components, weighted.shape[0] - 1, weighted.shape[1] - 1)
        if n_comp < 1 or weighted.nnz == 0:
            self.svd_ = None
        else:
            self.svd_ = TruncatedSVD(
                n_components=n_comp, algorithm="randomized", random_state=self.random_state
            ).fit(weighted)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns float32 array of shape (n_samples, n_components)."""
        return self._transform_counts(self._hash(texts))

    def _transform_counts(self, counts: sparse.csr_matrix) -> np.ndarray:
        out = np.zeros((counts.shape[0], self.n_components), dtype=np.float32)
        if self.svd_ is None:
            return out
        Z = self.svd_.transform(self.tfidf_.transform(counts))
        norms = np.linalg.norm(Z, axis=1, keepdims=True)
        Z = np.divide(Z, norms, out=np.zeros_like(Z), where=norms > 0)
        out[:, : Z.shape[1]] = Z
        return out

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        """Fit on ``texts`` and embed them, hashing them once."""
        counts = self._hash(texts)
        return self._fit_counts(counts)._transform_counts(counts)
