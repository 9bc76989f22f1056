"""The separation-model protocol.

A model is a small class with a ``name``, a ``sample_rate`` (Hz) and
``separate(mixtures: Tensor[batch, time], queries: list[str]) -> Tensor[batch, time]``; its
constructor takes options (``checkpoint`` path, ``device``, model-specific keywords).
"""

from __future__ import annotations

from typing import Any


class SeparationModel:
    """Base class for separation models. Subclasses set ``name`` and implement :meth:`separate`."""

    name: str = ""
    description: str = ""
    sample_rate: int = 16000
    max_seconds: float | None = None
    """Longest input (s) the model takes in one call; ``separate`` chunks longer inputs. None: any."""

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", **options: Any) -> None:
        self.checkpoint = checkpoint
        self.device = device
        self.options = options

    def separate(self, mixtures, queries: list[str]):  # pragma: no cover - abstract
        """Return the estimate of each query's source: a float tensor shaped like ``mixtures``."""
        raise NotImplementedError
