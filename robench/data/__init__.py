"""Data loading: official splits as in-memory arrays, seeded val splits, device-side batches."""

from robench.data.batches import BatchIterator
from robench.data.dataset import ArrayDataset, DataSplits
from robench.data.sources import SOURCES, load_source, resolve_data_root
from robench.data.splits import load_test, make_splits

__all__ = [
    "SOURCES",
    "ArrayDataset",
    "BatchIterator",
    "DataSplits",
    "load_source",
    "load_test",
    "make_splits",
    "resolve_data_root",
]
