"""Seeded fuzz: a damaged checkpoint is never loaded.

A small run (``distnn train``: the digits MLP, 5 epochs, a checkpoint every epoch, the history in
chunks of 2 records so that checkpoints share hard-linked chunk files as they share ``model.json``
and ``config.toml``) is copied afresh for each case (hard links kept), then one random thing in it is
damaged (two in a fifth of the cases): a file of the newest checkpoint (``manifest.json`` and the
hard-linked ones included: damaging one damages every checkpoint that links it), another checkpoint's,
the ``latest``/``best`` pointers, a checkpoint directory itself, or the run directory's own files.
The damage is one of: truncated at a random offset, a flipped bit, replaced with garbage, emptied,
deleted, replaced with a directory, a named pipe (FIFO) or a symlink (to another checkpoint's file or
directory, to nothing, to itself), made unreadable (chmod 000; left out as root, who reads it all the same), an unexpected
extra file or directory, or (JSON files) valid JSON of the wrong shape: another type at the top, a key
gone, a value of the wrong type, a huge number, NaN.

Then every reader of the public interface is asked: ``--resume auto`` (``resolve_and_load("auto")``),
``--resume`` of the run directory, of the checkpoint root, of the newest checkpoint and of the
``latest``/``best`` pointers; the config a resume without ``--config`` runs with
(``saved_config_for_resume``); and ``evaluate``/``predict``'s model loading (``run_dir.load_model``)
of the run directory, of the newest checkpoint and of ``latest`` and ``best``. Each must either give
exactly what a checkpoint saved (the state, the manifest, the config, the model's weights) -- a checkpoint older than
the newest only with a warning naming a damaged file or its checkpoint -- or raise a one-line
CheckpointError (a ValueError for ``load_model``) naming it. Any other exception (KeyError,
TypeError, IndexError, zipfile's, UnicodeDecodeError, OverflowError...) fails the case, as does
anything that differs from what was saved.

A damaged ``latest`` (its SHA-256 no longer matches the name in it: a bit flipped into another step
that exists is no longer followed) gives the newest valid checkpoint, with a warning naming it; a
damaged ``best`` is an error naming it. The run directory's own ``model.npz``, ``model.json`` and
``config.toml`` are checked against its ``SHA256SUMS``: damaged, they are an error naming the file.

A pointer or a ``step-N`` entry replaced by a symlink (distnn writes neither as a link) is damaged like
any other: it is never followed. A ``SHA256SUMS`` deleted is an error naming it (the run's
``model.json`` says the run was written with one). What no checksum can tell is accepted as such: with
``SHA256SUMS`` deleted and ``model.json`` damaged too (its mark gone with it), the run reads as an older
distnn's (neither), its files unchecked, so a damage there that still loads must load the saved
weights (or, replaced by a symlink, the linked file's); the newest checkpoint deleted together with
every pointer naming it leaves no trace to report.

``DISTNN_CKPT_FUZZ_CASES`` sets the number of cases (default 150, a few seconds),
``DISTNN_CKPT_FUZZ_START`` the first seed. A few cases go through the CLI (``evaluate``, ``predict``,
``train --resume auto``), and one on several ranks (simulated, and under ``mpiexec -n 2|3 python -m
pytest --with-mpi -m mpi``): every rank resumes from the same fallback checkpoint."""
from __future__ import annotations

import math
import os
import random
import shutil
import stat

import numpy as np
import pytest

from distnn.train import checkpoint as ck
from distnn.train import run_checksums
from distnn.train import run_dir as rd
from distnn.train.checkpoint.names import STEP_RE
from distnn.train.resume_config import saved_config_for_resume

from checkpoint_damage import KINDS, copy_run, damage, pristine


CASES = int(os.environ.get("DISTNN_CKPT_FUZZ_CASES", "150"))
START = int(os.environ.get("DISTNN_CKPT_FUZZ_START", "0"))
pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _same(a, b) -> bool:
    """Exactly equal: types, dtypes, shapes, bytes (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, (float, np.floating)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


class Unexpected(AssertionError):
    pass


def _names(text, damaged) -> bool:
    """Whether a message names a damaged thing (``damaged``: their paths in the run directory): its file
    name, or its checkpoint's directory."""
    for rel in damaged:
        parts = rel.split(os.sep)
        if any(p in text for p in parts[-1:] + [p for p in parts if STEP_RE.match(p)]):
            return True
    return False


def _newest_valid(root):
    """The newest checkpoint under ``root`` that verifies (what a damaged ``latest`` falls back to)."""
    return next((c.name for c in reversed(ck.list_checkpoints(root)) if not ck.verify_checkpoint(c.path)), None)


def _pointer_fallback(what, rel, root, warnings) -> str | None:
    """What ``--resume latest``/``evaluate latest`` must give when ``latest`` is damaged (a symlink too):
    the newest valid checkpoint, said with a warning naming ``latest``; else None (no fallback here)."""
    latest = os.path.join("checkpoints", ck.LATEST)
    path = os.path.join(root, ck.LATEST)
    if not what.endswith(" latest") or latest not in rel or ck.read_pointer(root, ck.LATEST) is not None \
            or not (os.path.islink(path) or os.path.lexists(path) and not os.path.isdir(path)):
        return None
    if not any(f"{ck.LATEST}' is damaged" in w for w in warnings):
        raise Unexpected(f"{what}: the damaged {ck.LATEST} was followed without a warning naming it: {warnings}")
    return _newest_valid(root)


def _check_loaded(what, got, saved, warnings, rel, explicit=None):
    path, state, man = got
    name = os.path.basename(os.path.realpath(path))
    if name not in saved:
        raise Unexpected(f"{what}: loaded {path!r}, which was never saved")
    if explicit is not None and name != explicit:
        raise Unexpected(f"{what}: loaded {name} instead of {explicit}")
    want_state, want_man = saved[name]
    if not _same(man, want_man):
        raise Unexpected(f"{what}: the manifest of {name} differs from the saved one")
    if not _same(state, want_state):
        raise Unexpected(f"{what}: the state of {name} differs from the saved one")
    if explicit is None and name != ck.step_name(100) and not any(_names(w, rel) for w in warnings) \
            and not _no_trace_left(os.path.dirname(path)):
        raise Unexpected(f"{what}: fell back to {name} without a warning naming {rel}: {warnings}")


def _no_trace_left(root) -> bool:
    """The newest checkpoint is gone and neither pointer names it: nothing says it was ever there."""
    newest = ck.step_name(100)
    return not os.path.lexists(os.path.join(root, newest)) and newest not in (
        ck.read_pointer(root, ck.LATEST), ck.read_pointer(root, ck.BEST))


REFUSED = object()  # what _call returns for a clear error


def _call(what, call, rel, warnings):
    """``call()``, or REFUSED when it raised a clear CheckpointError/ValueError."""
    try:
        return call()
    except (ck.CheckpointError, ValueError) as e:  # (CheckpointError is a ValueError)
        msg = str(e)
        if not (_names(msg, rel) or any(_names(w, rel) for w in warnings)):
            raise Unexpected(f"{what}: the error does not name {rel}: {msg}")
        if "\n" in msg:
            raise Unexpected(f"{what}: the error is not one line: {msg!r}")
        return REFUSED
    except Exception as e:
        raise Unexpected(f"{what}: {type(e).__name__}: {e}") from e


def check_readers(run, saved, weights, rel):
    """Every reader, after the damage to ``rel``."""
    root = os.path.join(run, "checkpoints")
    newest = os.path.join(root, ck.step_name(100))
    if not os.path.lexists(root):  # (the checkpoints gone: an error can only name where it looked for them)
        rel = rel + (os.path.basename(run),)
    # --resume auto, and --resume RUN_DIR / the checkpoint root
    for what, spec, default in (("--resume auto", "auto", root), ("--resume RUN_DIR", run, None),
                                ("--resume ROOT", root, None)):
        warnings = []
        got = _call(what, lambda: ck.resolve_and_load(spec, default, warnings.append), rel, warnings)
        if got is None:  # ("no checkpoint yet": a fresh start; the run's state lost, unless the root is gone)
            if os.path.lexists(root):
                raise Unexpected(f"{what} found no checkpoint at all (warnings: {warnings})")
        elif got is not REFUSED:
            _check_loaded(what, got, saved, warnings, rel)
    # an explicit checkpoint, and the pointers: exactly the one named, or an error
    for what, spec in (("--resume CHECKPOINT", newest), ("--resume latest", os.path.join(root, ck.LATEST)),
                       ("--resume best", os.path.join(root, ck.BEST))):
        warnings = []
        got = _call(what, lambda: ck.resolve_and_load(spec, None, warnings.append), rel, warnings)
        if got is not REFUSED:
            fallback = _pointer_fallback(what, rel, root, warnings)
            _check_loaded(what, got, saved, warnings, rel, explicit=fallback or ck.step_name(100))
    # the config a resume without --config runs with: only as a checkpoint saved it
    for what, spec in (("config of --resume ROOT", root), ("config of --resume CHECKPOINT", newest)):
        got = _call(what, lambda: saved_config_for_resume(spec, None), rel, [])
        if got is REFUSED or got is None:
            continue
        name = os.path.basename(os.path.dirname(os.path.realpath(got)))
        with open(got, "rb") as f:
            if name not in saved or f.read() != saved[name][0]["_files"]["config.toml"]:
                raise Unexpected(f"{what}: {got} is not the config.toml a checkpoint saved")
    # evaluate / predict: the model of the run directory, of the newest checkpoint, of `latest`
    for what, spec in (("evaluate RUN_DIR", run), ("evaluate CHECKPOINT", newest),
                       ("evaluate latest", os.path.join(root, ck.LATEST)),
                       ("evaluate best", os.path.join(root, ck.BEST))):
        reports, warnings = [], []
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            got = _call(what, lambda: rd.load_model(spec, report=reports.append), rel, warnings)
        warnings = err.getvalue().splitlines()
        if got is REFUSED:
            continue
        model = got[0]
        source = _source(reports)
        if source not in weights:
            raise Unexpected(f"{what}: read {source!r}, which was never saved: {reports}")
        expected = _pointer_fallback(what, rel, root, warnings) or ck.step_name(100)
        if what != "evaluate RUN_DIR" and source != expected:
            raise Unexpected(f"{what}: read {source} instead of {expected}")
        if what == "evaluate RUN_DIR" and source not in ("run", ck.step_name(100)) \
                and not any(_names(w, rel) for w in warnings):
            raise Unexpected(f"{what}: fell back to {source} without a warning naming {rel}: {warnings}")
        if source == "run" and os.path.islink(os.path.join(run, "model.npz")):
            # (only with SHA256SUMS gone, as in an older distnn's run: model.npz replaced by a link to a
            # checkpoint's is that one)
            if os.path.lexists(os.path.join(run, run_checksums.SUMS)):
                raise Unexpected(f"{what}: read the run's model.npz, a symlink, though {run_checksums.SUMS} "
                                 "lists another")
            source = os.path.basename(os.path.dirname(os.path.realpath(os.path.join(run, "model.npz"))))
        got_w = {k: np.asarray(v) for k, v in model.state_dict().items()}
        if not _same(got_w, weights.get(source)):
            raise Unexpected(f"{what}: the weights of {source} differ from the saved ones")


def _source(reports):
    """Which saved state ``load_model`` reported reading: a checkpoint's name, or "run" (the run's model.npz)."""
    assert len(reports) == 1, reports
    text = reports[0]
    if text.startswith("reading checkpoint "):
        return os.path.basename(os.path.realpath(text[len("reading checkpoint "):].split(" (")[0].split(":")[0]))
    return "run"


def run_case(seed, pristine, tmp_path):
    run0, saved, weights = pristine
    rnd = random.Random(seed)
    run = str(tmp_path / f"case-{seed}")
    copy_run(str(run0), run)
    done = [damage(rnd, run, KINDS)]
    if rnd.random() < 0.2:  # two things damaged at once
        try:
            done.append(damage(rnd, run, KINDS))
        except OSError:  # (the first damaged the directory the second chose: gone, a file, a symlink loop)
            pass
    try:
        check_readers(run, saved, weights, tuple(rel for _, rel, _ in done))
    except Unexpected as e:  # (the case's directory stays, to look at)
        return f"seed {seed}: " + " and ".join(f"{kind} {rel} ({how})" for kind, rel, how in done) + f": {e}"
    finally:
        _restore_permissions(run)
    shutil.rmtree(run)
    return None


def _restore_permissions(run):
    for dirpath, dirnames, filenames in os.walk(run):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IRUSR | stat.S_IWUSR | (stat.S_IXUSR if os.path.isdir(p) else 0))


def test_fuzz_damaged_checkpoints_are_never_loaded(pristine, tmp_path):
    failures = []
    for seed in range(START, START + CASES):
        got = run_case(seed, pristine, tmp_path)
        if got:
            failures.append(got)
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:30])
