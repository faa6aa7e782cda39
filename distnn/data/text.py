"""Character-level language-modelling data: a small built-in text or a user file.

The text is encoded with a character vocabulary (sorted distinct characters,
so the ids are stable), cut into contiguous train / val / test stretches (no
window crosses a split boundary, so validation text is never seen in training),
and each stretch into windows of ``seq_len + 1`` characters: ``x`` is the
first ``seq_len`` ids, ``y`` the next-character targets (the window shifted by
one). ``stride`` sets how far consecutive training windows start apart.
Validation and test windows do not overlap, and a last window ends at the
stretch's end, its targets already scored by the one before set to
:data:`IGNORED`: every held-out character after the first is scored exactly
once.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.functional.loss import IGNORE_INDEX

from .errors import DataError
from .files import check_file, read_error
from .synthetic import _positive

BUILTIN_TEXT = """\
The river starts in the hills as a thin line of water between stones. In spring the snow melts and the line
grows into a stream, and the stream runs down through the pine woods, past the old mill, and into the valley.
In the valley the river slows. It bends around the fields, it passes under the stone bridge, and it waits in
deep green pools where the fish rest in the shade. Children come to the bridge in the evening to throw small
sticks into the water and watch them race to the other side.

A network learns in much the same patient way. It starts with small random weights and no idea of the task.
Each batch of examples is a little rain: the loss measures how wrong the guesses were, the gradient says which
way is downhill, and the optimizer takes a small step. One step changes almost nothing. Ten thousand steps
carve a valley. The weights settle where the loss is low, and the network begins to see edges, then strokes,
then whole digits.

When the work is shared between many machines, each one reads its own part of the data. Every machine computes
a gradient on its shard, and then they all stop and agree: the gradients are summed, divided by the number of
machines, and handed back to everyone. Because every replica starts from the same weights and applies the same
averaged step, the replicas stay equal, like clocks that are wound together every hour.

The old miller kept a notebook by the door. In it he wrote the height of the water each morning, the weather,
and the number of sacks of grain he had ground. Over the years the notebook became a record of the valley:
wet years and dry years, early springs and late frosts. His granddaughter still reads it. She says that a
good record is worth more than a good memory, because a record does not forget and does not flatter.

Training runs keep notebooks too. A checkpoint holds the weights, the state of the optimizer, the position in
the data and the state of every random generator, so that a run stopped at midnight can continue in the
morning exactly as if nothing had happened. A careful log holds the loss and the accuracy of every epoch, so
that when the curve bends the wrong way someone can find out why.

In autumn the river carries leaves, red and yellow and brown, down from the woods. They gather against the
stones above the bridge and then break free all at once, turning slowly in the current. The fish swim deeper.
The evenings grow short, the children go home earlier, and the mill wheel turns in the dark.

Early stopping is the autumn of a training run. The validation loss stops falling, then rises a little, and
the wise trainer remembers the best weights it has seen and stops before the network learns the noise of its
own examples by heart. Patience is the number of epochs it waits for the loss to improve again. Too little
patience and a run stops on a small bump; too much and it wastes the night.

In winter the river freezes at the edges. The middle keeps moving, dark and quick under a skin of ice, and
the sound of it is quieter but never stops. Snow covers the fields and the bridge and the roof of the mill.
Then the days grow longer again, the ice cracks, and the thin line of water in the hills begins to grow.
"""


def encode(text: str, vocab: list[str] | None = None):
    """(ids int64, vocab) for ``text``; the vocab is the sorted distinct characters."""
    vocab = sorted(set(text)) if vocab is None else list(vocab)
    index = {c: i for i, c in enumerate(vocab)}
    missing = sorted(set(text) - set(index))
    if missing:
        raise DataError(f"text has characters outside the vocabulary: {''.join(missing)!r}")
    return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text)), vocab


def decode(ids, vocab) -> str:
    return "".join(vocab[int(i)] for i in np.asarray(ids).reshape(-1))


#: a target that is not scored: cross-entropy's default ``ignore_index``, which the trainer's losses
#: and metrics leave out
IGNORED = IGNORE_INDEX


def windows(ids: np.ndarray, seq_len: int, stride: int, cover_end: bool = False):
    """(x (N, seq_len), y (N, seq_len)) next-character windows over ``ids``.

    ``cover_end``: when the windows leave characters at the end unscored, add one window ending at
    the end, whose targets the previous window scored already set to :data:`IGNORED` (evaluation
    windows: every target once).
    """
    if len(ids) < seq_len + 1:
        return np.zeros((0, seq_len), np.int64), np.zeros((0, seq_len), np.int64)
    starts = np.arange(0, len(ids) - seq_len, stride)
    last_target = starts[-1] + seq_len  # the last character the windows score
    tail = cover_end and last_target < len(ids) - 1
    if tail:
        starts = np.append(starts, len(ids) - seq_len - 1)
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    w = ids[idx]
    x, y = w[:, :-1].copy(), w[:, 1:].copy()
    if tail:  # target j of the tail window is character starts[-1] + 1 + j
        y[-1, :last_target - starts[-1]] = IGNORED
    return x, y


def load_text(path=None) -> str:
    if path is None:
        return BUILTIN_TEXT
    source = f"text file {str(path)!r}"
    check_file(path, source)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise DataError(f"{source} is not UTF-8: {e}") from None
    except OSError as e:
        raise read_error(source, e) from None
    if len(text) < 100:
        raise DataError(f"text file {str(path)!r} is too short for language modelling ({len(text)} characters)")
    return text


def char_lm_splits(text: str, seq_len: int = 64, stride: int | None = None, val_fraction: float = 0.1,
                   test_fraction: float = 0.1):
    """{split: (x, y)} of contiguous text stretches, plus the vocabulary.

    The val and test stretches hold ``round(n * fraction)`` characters (at
    least one for a fraction > 0), training the rest. A requested val/test
    stretch too short for one window of ``seq_len + 1`` characters is a
    DataError: silently dropping it would surface only after an epoch, as a
    missing ``val_loss``. A fraction of 0 gives an empty split.
    """
    seq_len = _positive("seq_len", seq_len)
    stride = max(1, seq_len // 4) if stride is None else _positive("stride", stride)
    for label, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise DataError(f"{label} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")
    ids, vocab = encode(text)
    n = len(ids)
    # round() (not the ceil of the stratified split) keeps the stretches of existing runs unchanged;
    # a tiny positive fraction still asks for a split, so it gets at least one character.
    n_test, n_val = (max(1, int(round(n * f))) if f > 0 else 0 for f in (test_fraction, val_fraction))
    n_train = n - n_val - n_test
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
    fractions = {"val": val_fraction, "test": test_fraction}
    out = {}
    for split, (a, b) in bounds.items():
        # Evaluation windows never overlap, and the last one reaches the end: every held-out character
        # is scored once.
        x, y = windows(ids[a:b], seq_len, stride) if split == "train" else \
            windows(ids[a:b], seq_len, seq_len, cover_end=True)
        if split == "train" and len(x) == 0:
            raise DataError(f"text of {n} characters is too short for seq_len {seq_len}"
                            + (f" (the training stretch is {max(b - a, 0)} characters)" if a < b < n else ""))
        if split != "train" and fractions[split] > 0 and len(x) == 0:
            length = f"{b - a} character" + ("s" if b - a != 1 else "")
            need = math.ceil((seq_len + 1) / n * 1000) / 1000  # rounds to >= seq_len + 1 characters
            raise DataError(f"the {split} split is {length} ({split}_fraction {fractions[split]} of {n}), shorter "
                            f"than one window of seq_len + 1 = {seq_len + 1} characters: raise {split}_fraction "
                            f"to at least {need:g}, lower seq_len, or set {split}_fraction = 0 for no {split} split")
        out[split] = (x, y)
    return out, vocab
