"""Classification metrics from a confusion matrix: accuracy, per-class precision/recall/F1.

Everything here starts from counts (a confusion matrix is a table of counts),
so per-rank matrices simply add up across ranks: no mean of means.
"""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class i predicted as class j (int64)."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"confusion_matrix: y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} holds labels outside [0, {num_classes - 1}]")
    cm = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return cm.reshape(num_classes, num_classes).astype(np.int64)


def precision_recall_f1(cm) -> dict:
    """Per-class precision, recall, F1 and support from a confusion matrix.

    A class never predicted has precision 0 (scikit-learn's ``zero_division=0``);
    a class with no samples has recall 0.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def accuracy_from_cm(cm) -> float:
    cm = np.asarray(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def format_confusion_matrix(cm, class_names=None) -> str:
    """The matrix as aligned text, rows = true class, columns = predicted class."""
    cm = np.asarray(cm)
    k = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    width = max(max(len(n) for n in names), len(str(int(cm.max()) if cm.size else 0)), 4)
    head = " " * (width + 2) + " ".join(n.rjust(width) for n in names) + "   <- predicted"
    rows = [f"{names[i].rjust(width)}  " + " ".join(str(int(v)).rjust(width) for v in cm[i]) for i in range(k)]
    return "\n".join([head] + rows)


def classification_report(cm, class_names=None, digits: int = 4) -> str:
    """Per-class precision/recall/F1/support plus macro and weighted averages, as text."""
    cm = np.asarray(cm)
    m = precision_recall_f1(cm)
    names = [str(c) for c in (class_names if class_names is not None else range(cm.shape[0]))]
    width = max(12, max(len(n) for n in names))
    lines = [f"{'class':>{width}} {'precision':>10} {'recall':>10} {'f1':>10} {'support':>9}"]
    for i, n in enumerate(names):
        lines.append(f"{n:>{width}} {m['precision'][i]:>10.{digits}f} {m['recall'][i]:>10.{digits}f} "
                     f"{m['f1'][i]:>10.{digits}f} {int(m['support'][i]):>9d}")
    support = m["support"]
    total = int(support.sum())
    for label, w in (("macro avg", np.ones_like(support, dtype=np.float64)), ("weighted avg", support.astype(np.float64))):
        ws = w.sum() if w.sum() else 1.0
        lines.append(f"{label:>{width}} {float((m['precision'] * w).sum() / ws):>10.{digits}f} "
                     f"{float((m['recall'] * w).sum() / ws):>10.{digits}f} {float((m['f1'] * w).sum() / ws):>10.{digits}f} "
                     f"{total:>9d}")
    return "\n".join(lines)
