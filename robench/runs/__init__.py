"""Storage: everything robench keeps on disk about a run, under both train/ and eval/.

run_dir.py     RunDir: the layout of a run directory; resuming from its checkpoints
record.py      RunRecord: config.json typed and versioned (the one reader of it)
checkpoint.py  safetensors checkpoints with embedded metadata, checked key by key
metrics_log.py metrics.jsonl, one line per epoch
flag_files.py  per-example evaluation flags (and kept adversarial examples), resumable
identity.py    hashes that say what a file or a protocol is (keys of stored flags)
"""

from robench.runs.flag_files import FlagFile, FlagStore, StoredFlags
from robench.runs.record import RECORD_VERSION, DataRecord, RunRecord, SuiteRef
from robench.runs.run_dir import CHECKPOINT_KINDS, RunDir, open_run_dir

__all__ = [
    "CHECKPOINT_KINDS",
    "RECORD_VERSION",
    "DataRecord",
    "FlagFile",
    "FlagStore",
    "RunDir",
    "RunRecord",
    "StoredFlags",
    "SuiteRef",
    "open_run_dir",
]
