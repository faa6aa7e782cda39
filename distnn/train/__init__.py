"""distnn.train: run configuration (and, built on it, the trainer, callbacks and jobs).

``load_config(name_or_path, overrides)`` gives a validated :class:`Config`
(see ``distnn.train.config`` for the schema); ``dump_config`` writes it back
as TOML.
"""
from .config import (SCHEMA, Config, ConfigError, ConfigWarning, default_config, describe_schema, dump_config,
                     list_configs, load_config, loads_config, parse_override, save_config)

__all__ = ["SCHEMA", "Config", "ConfigError", "ConfigWarning", "load_config", "loads_config", "dump_config",
           "save_config", "default_config", "describe_schema", "list_configs", "parse_override"]

# The training loop and its callbacks (distnn.train.trainer, distnn.train.callbacks).
from .callbacks import (Callback, CallbackList, EarlyStopping, LRSchedulerCallback, MetricsLogger,  # noqa: E402
                        PlotCurves, ProgressBar)
from .evaluation import classification_report, confusion_matrix, precision_recall_f1  # noqa: E402
from .trainer import Trainer, TrainState  # noqa: E402

__all__ += ["Trainer", "TrainState", "Callback", "CallbackList", "EarlyStopping", "LRSchedulerCallback",
            "MetricsLogger", "PlotCurves", "ProgressBar", "confusion_matrix", "precision_recall_f1",
            "classification_report"]
