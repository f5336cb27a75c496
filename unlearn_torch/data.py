"""Retain and evaluation data as index-addressable batches on a device.

``retain`` is either a pair ``(X, y)`` of tensors with the same first dimension, or a
:class:`torch.utils.data.Dataset` whose items are ``(input, target)`` pairs (collated with
torch's default collate). Batches are selected by index, so the interpreter can draw a fresh
batch at every step from a keyed generator.
"""

from __future__ import annotations

import hashlib

import torch

from unlearn_theory.errors import InvalidParameterError

__all__ = ["IndexedData", "as_indexed", "ids_sha256"]


class IndexedData:
    """``get(idx) -> (inputs, targets)`` on ``device`` for a 1-D LongTensor of indices."""

    def __init__(self, name: str, data, device):
        self.device = torch.device(device)
        self._tensors = None
        self._dataset = None
        if (
            isinstance(data, (tuple, list))
            and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)
        ):
            X, y = data
            if X.shape[0] != y.shape[0]:
                raise InvalidParameterError(
                    name, (tuple(X.shape), tuple(y.shape)), "inputs and targets differ in length"
                )
            self._tensors = (X.to(self.device), y.to(self.device))
            self.n = int(X.shape[0])
        elif isinstance(data, torch.utils.data.TensorDataset) and len(data.tensors) == 2:
            X, y = data.tensors
            self._tensors = (X.to(self.device), y.to(self.device))
            self.n = int(X.shape[0])
        elif isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
            self._dataset = data
            self.n = len(data)
        else:
            raise InvalidParameterError(
                name, type(data).__name__, "must be a pair (X, y) of tensors or a torch Dataset"
            )
        if self.n == 0:
            raise InvalidParameterError(name, "empty", "has no examples")

    def get(self, idx: torch.Tensor):
        if self._tensors is not None:
            X, y = self._tensors
            idx = idx.to(X.device)
            return X.index_select(0, idx), y.index_select(0, idx)
        from torch.utils.data import default_collate

        items = [self._dataset[int(i)] for i in idx.tolist()]
        X, y = default_collate(items)
        return X.to(self.device), y.to(self.device)

    def get_range(self, start: int, stop: int):
        """Examples start..stop-1 (views, no copy, for tensor data)."""
        if self._tensors is not None:
            X, y = self._tensors
            return X[start:stop], y[start:stop]
        return self.get(torch.arange(start, stop))

    def chunks(self, chunk_size: int):
        """Consecutive index chunks covering the data once."""
        for start in range(0, self.n, chunk_size):
            yield torch.arange(start, min(start + chunk_size, self.n))


def as_indexed(name: str, data, device) -> IndexedData:
    return data if isinstance(data, IndexedData) else IndexedData(name, data, device)


def ids_sha256(ids) -> str | None:
    """SHA-256 of the sorted ids, one decimal (or str) id per line; None when ids is None."""
    if ids is None:
        return None
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    try:
        items = sorted(int(i) for i in ids)
    except (TypeError, ValueError):
        items = sorted(str(i) for i in ids)
    text = "\n".join(str(i) for i in items)
    return hashlib.sha256(text.encode()).hexdigest()
