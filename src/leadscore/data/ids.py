"""Lead ids as 64-bit hashes: remembering millions of ids in 8 bytes each, not as strings."""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_SORTED_PARTS = 8


def lead_hashes(ids: pd.Series) -> np.ndarray:
    """A 64-bit hash of each lead id (the same id always gives the same hash)."""
    return pd.util.hash_pandas_object(ids.astype("string"), index=False).to_numpy()


class HashSet:
    """A growing set of lead-id hashes with a vectorised membership test.

    Hashes are kept in a few sorted arrays (merged when there are more than `MAX_SORTED_PARTS`),
    so adding a batch and testing the next one stay cheap. Two different ids share a hash with
    probability about n^2 / 2^65: negligible for millions of leads.
    """

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def add(self, hashes: np.ndarray) -> None:
        self.parts.append(np.sort(hashes))
        if len(self.parts) > MAX_SORTED_PARTS:
            self.parts = [np.sort(np.concatenate(self.parts))]

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(len(hashes), bool)
        for part in self.parts:
            if len(part):
                pos = np.minimum(np.searchsorted(part, hashes), len(part) - 1)
                found |= part[pos] == hashes
        return found
