"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clustering import kinds


@pytest.fixture(autouse=True)
def _kind_registry() -> Iterator[None]:
    """Kinds a test registers (``--spec``, ``register_spec``) do not outlive it.

    The registry is process-wide, so without this a kind registered by one test changes what
    the next one sees (a bundle's kinds, the unknown-kind errors).
    """
    specs, known = dict(kinds._SPECS), dict(kinds.KINDS)
    yield
    kinds._SPECS.clear()
    kinds._SPECS.update(specs)
    kinds.KINDS.clear()
    kinds.KINDS.update(known)
