"""Data loading: official splits as in-memory arrays, seeded val splits, device-side batches."""

from robench.data.batches import BatchIterator
from robench.data.dataset import ArrayDataset, DataSplits
from robench.data.sources import SOURCES, load_source, resolve_data_root
from robench.data.splits import make_splits

__all__ = [
    "SOURCES",
    "ArrayDataset",
    "BatchIterator",
    "DataSplits",
    "load_source",
    "make_splits",
    "resolve_data_root",
]
