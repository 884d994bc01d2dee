"""The run folder: its schema, the metrics file, snapshots, checkpoints, starting and resuming.

No framework is imported here.
"""

from reference_tasks.runfolder.folder import (
    check_resumable,
    config_differences,
    forget_progress,
    is_finished,
    read_json,
    rewind_run,
    start_run,
    write_json,
)
from reference_tasks.runfolder.metrics import MetricsWriter, read_metrics, truncate_metrics
from reference_tasks.runfolder.schema import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    HEADLINE_COLUMN,
    LEGACY_CONFIG_VALUES,
    LMN_COLUMNS,
    METRIC_COLUMNS,
    METRICS_FILE,
    N_SAMPLES_COLUMN,
    SUMMARY_FILE,
    Row,
    lmn_column,
)
from reference_tasks.runfolder.weights import (
    Checkpoint,
    load_checkpoint,
    load_snapshot,
    save_checkpoint,
    save_snapshot,
    snapshot_steps,
)

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "HEADLINE_COLUMN",
    "LEGACY_CONFIG_VALUES",
    "LMN_COLUMNS",
    "METRICS_FILE",
    "METRIC_COLUMNS",
    "N_SAMPLES_COLUMN",
    "SUMMARY_FILE",
    "Checkpoint",
    "MetricsWriter",
    "Row",
    "check_resumable",
    "config_differences",
    "forget_progress",
    "is_finished",
    "lmn_column",
    "load_checkpoint",
    "load_snapshot",
    "read_json",
    "read_metrics",
    "rewind_run",
    "save_checkpoint",
    "save_snapshot",
    "snapshot_steps",
    "start_run",
    "truncate_metrics",
    "write_json",
]
