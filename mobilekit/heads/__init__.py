"""Head formats: one module each, registered by name. A head turns raw output tensors into candidates."""

from mobilekit.heads import classifier, decoded, ssd, yolo  # noqa: F401  (registration side effects)
from mobilekit.heads.base import HEADS, Candidates, Head, get_head

__all__ = ["HEADS", "Candidates", "Head", "get_head"]
