"""Trainer callbacks: early stopping, LR scheduling, progress, metrics files, plots."""
from .base import Callback, CallbackList
from .early_stopping import EarlyStopping
from .lr_callback import LRSchedulerCallback
from .metrics_logger import CSV_COLUMNS, MetricsLogger, read_metrics_csv
from .plots import PlotCurves, plot_curves
from .progress import ProgressBar

__all__ = ["Callback", "CallbackList", "EarlyStopping", "LRSchedulerCallback", "MetricsLogger", "PlotCurves",
           "ProgressBar", "plot_curves", "read_metrics_csv", "CSV_COLUMNS"]
