"""Loss and accuracy curves (train and validation vs epoch) as ``curves.png`` (rank 0 only)."""
from __future__ import annotations

import os

from .base import Callback


def whole_epoch_ticks(ax) -> None:
    """Ticks at whole epochs only on ``ax``'s x axis, also for a single epoch (``min_n_ticks=1``: with the
    default two, a 1-epoch run's axis fell back to ticks 0.96 ... 1.04, none of them at its one point)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def plot_curves(history: list[dict], path: str, title: str = "") -> str | None:
    """Draw loss and accuracy vs epoch into ``path`` with matplotlib's Agg backend.

    Returns the path written, or None when matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    epochs = [row["epoch"] for row in history]
    # A Figure with its own Agg canvas, not pyplot: the process's backend (a notebook's) is left alone
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, metric, label in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            key = f"{split}_{metric}"
            pts = [(e, row[key]) for e, row in zip(epochs, history) if row.get(key) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, markersize=3,
                        label="train" if split == "train" else "validation")
        ax.set_xlabel("epoch")
        whole_epoch_ticks(ax)  # epochs are whole: no 1.2, 1.4 ticks on short runs
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    from ..run_dir import replace_file

    replace_file(path, lambda tmp: fig.savefig(tmp, dpi=100), ".tmp.png")
    return path


class PlotCurves(Callback):
    """Writes ``<dir>/curves.png`` at the end of training (and every ``every`` epochs if > 0)."""

    def __init__(self, directory, title: str = "", every: int = 0):
        self.path = os.path.join(str(directory), "curves.png")
        self.title = title
        self.every = int(every)

    def on_epoch_end(self, trainer, logs):
        if trainer.is_main and self.every and int(logs["epoch"]) % self.every == 0:
            plot_curves(trainer.history, self.path, self.title)

    def on_train_end(self, trainer, logs):
        if trainer.is_main and trainer.history:
            plot_curves(trainer.history, self.path, self.title)
