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
pytest --with-mpi -m mpi``): every rank resumes from the same fallback checkpoint.
"""
from __future__ import annotations

import json
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
from distnn.train.checkpoint import state as ck_state
from distnn.train.checkpoint.names import STEP_RE
from distnn.train.resume_config import saved_config_for_resume

CASES = int(os.environ.get("DISTNN_CKPT_FUZZ_CASES", "150"))
START = int(os.environ.get("DISTNN_CKPT_FUZZ_START", "0"))
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

TRAIN_ARGS = ["--quiet", "--set", "train.epochs=5", "--set", "run.plots=false", "--set", "checkpoint.keep_last=0",
              "--set", "checkpoint.every_epochs=1", "--set", "model.hidden_sizes=[16]"]


# ---------------------------------------------------------------------- the run, and what it saved
def _train(out, *extra):
    from distnn.cli import main

    return main(["train", "--out", str(out), *TRAIN_ARGS, *extra])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_pristine(tmp_path_factory.mktemp("fuzz") / "run")


def make_pristine(run):
    """``(run directory, {checkpoint name: (state, manifest)}, {source: model weights})`` of a finished run."""
    mp = pytest.MonkeyPatch()
    mp.setattr(ck_state, "HISTORY_CHUNK", 2)  # whole history chunks (hard-linked between checkpoints) after 2 epochs
    try:
        assert _train(run) == 0
    finally:
        mp.undo()
    root = run / "checkpoints"
    saved = {c.name: ck.read_checkpoint(c.path) for c in ck.list_checkpoints(str(root))}
    assert sorted(saved) == [ck.step_name(20 * e) for e in range(1, 6)]
    newest = root / ck.step_name(100)
    assert {"history-000000.json", "history-000001.json", "model.json", "config.toml"} <= set(os.listdir(newest))
    assert os.stat(newest / "history-000000.json").st_nlink == 4 and os.stat(newest / "model.json").st_nlink == 5
    weights = {name: _npz(root / name / "model.npz") for name in saved}
    weights["run"] = _npz(run / "model.npz")
    return run, saved, weights


def _npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _copy(src, dst):
    """Copy a run directory, hard links kept (``shutil.copytree`` would make them separate files)."""
    seen = {}
    os.makedirs(dst)
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        for d in dirnames:
            os.makedirs(os.path.join(dst, rel, d))
        for f in filenames:
            s, t = os.path.join(dirpath, f), os.path.join(dst, rel, f)
            st = os.lstat(s)
            key = (st.st_dev, st.st_ino)
            if key in seen:
                os.link(seen[key], t)
            else:
                with open(s, "rb") as a, open(t, "wb") as b:
                    b.write(a.read())
                seen[key] = t


# ---------------------------------------------------------------------- comparing with what was saved
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


# ---------------------------------------------------------------------- the damage
def _json_files(paths):
    """Those of ``paths`` that hold one JSON document."""
    out = []
    for p in paths:
        if p.endswith(".json") and os.path.isfile(p):
            try:
                with open(p, "rb") as f:
                    json.loads(f.read())
            except ValueError:
                continue
            out.append(p)
    return out


WRONG_VALUES = [None, True, "x", "", [], {}, -1, 0.5, 2 ** 63, {"__array__": ["model.npz", "nope"]},
                {"__tuple__": 3}, {"__float__": "zz"}, {"__dict__": [1]}, {"__scalar__": "<f9", "value": 1},
                "HUGE_INT", "HUGE_FLOAT", "NAN", "NEG_INF", "TOO_MANY_DIGITS"]
TEXT = {"HUGE_INT": "1" + "0" * 400, "HUGE_FLOAT": "1e999", "NAN": "NaN", "NEG_INF": "-Infinity",
        "TOO_MANY_DIGITS": "9" * 5000}


def _wrong_shape(rnd, path) -> str:
    """Rewrite the JSON file ``path`` as valid JSON (or Python's JSON: NaN, Infinity) of the wrong shape."""
    with open(path, "rb") as f:
        doc = json.loads(f.read())
    # every container node, with the way to reach it
    nodes = []

    def walk(node, depth):
        if isinstance(node, (dict, list)) and depth < 6:
            nodes.append(node)
            for v in (node.values() if isinstance(node, dict) else node):
                walk(v, depth + 1)

    walk(doc, 0)
    what = rnd.choice(["top", "drop", "value", "value", "value"])
    if what == "top" or not any(nodes):
        doc = rnd.choice([[doc], "text", 3, None, {"format": ck.FORMAT}, [], {}])
        how = "the top replaced"
    else:
        node = rnd.choice([n for n in nodes if n])
        key = rnd.choice(list(node)) if isinstance(node, dict) else rnd.randrange(len(node))
        if what == "drop":
            del node[key]
            how = f"{key!r} dropped"
        else:
            value = rnd.choice(WRONG_VALUES)
            node[key] = value
            how = f"{key!r} set to {str(value)[:20]}"
    text = json.dumps(doc)
    for marker, literal in TEXT.items():
        text = text.replace(f'"{marker}"', literal)
    with open(path, "w") as f:  # (in place: through a hard link too)
        f.write(text)
    return how


def damage(rnd, run, kinds):
    """Damage one random thing in ``run``; ``(kind, relative path, what)``."""
    root = os.path.join(run, "checkpoints")
    newest = os.path.join(root, ck.step_name(100))
    older = os.path.join(root, ck.step_name(rnd.choice([20, 40, 60, 80])))

    def files(d):
        return sorted(os.path.join(d, n) for n in os.listdir(d) if os.path.isfile(os.path.join(d, n)))

    pools = {
        "newest": files(newest), "manifest": [os.path.join(newest, ck.MANIFEST)],
        "linked": [p for p in files(newest) if os.stat(p).st_nlink > 1],
        "pointer": [os.path.join(root, ck.LATEST), os.path.join(root, ck.BEST)],
        "older": files(older), "run": files(run), "dirs": [newest, older],
    }
    kind = rnd.choice(kinds)
    if kind == "json":
        target = rnd.choice(_json_files(pools["newest"] + pools["manifest"] * 3 + pools["run"] + files(older)))
    elif kind in ("extra", "as_dir", "as_symlink", "delete") and rnd.random() < 0.25:
        target = rnd.choice(pools["dirs"])  # a checkpoint directory itself
    elif kind in ("as_symlink", "delete", "garbage") and rnd.random() < 0.05:
        return _damage_root(rnd, run, root, kind)
    else:
        pool = rnd.choice(["newest", "newest", "manifest", "linked", "pointer", "older", "run"])
        target = rnd.choice(pools[pool])
    rel = os.path.relpath(target, run)
    is_dir = os.path.isdir(target)
    if kind == "extra":  # in the checkpoint root, or beside the target (in a checkpoint, the run directory)
        where = root if rnd.random() < 0.3 else target if is_dir else os.path.dirname(target)
        name = rnd.choice(["extra.bin", ".hidden", "model.npz.bak", "manifest.json~", ck.step_name(120),
                           ck.step_name(100) + ".old", "latest.tmp-1"])
        extra = os.path.join(where, name)
        if os.path.lexists(extra):
            return damage(rnd, run, kinds)
        if rnd.random() < 0.5:
            os.mkdir(extra)
        else:
            with open(extra, "wb") as f:
                f.write(rnd.randbytes(rnd.randrange(64)))
        return kind, os.path.relpath(extra, run), "added"
    if is_dir:
        if kind == "delete":
            for n in os.listdir(target):
                os.unlink(os.path.join(target, n))
            os.rmdir(target)
            return kind, rel, "directory removed"
        if kind in ("as_dir", "unreadable", "fifo"):
            return damage(rnd, run, kinds)
        for n in os.listdir(target):
            os.unlink(os.path.join(target, n))
        os.rmdir(target)
        if kind == "as_symlink":
            other = rnd.choice([older, os.path.join(run, "nowhere"), os.path.join(older, "model.npz")])
            os.symlink(other, target)
            return kind, rel, f"directory replaced by a symlink to {os.path.relpath(other, run)}"
        with open(target, "wb") as f:  # a file where the directory was
            f.write(rnd.randbytes(rnd.randrange(1, 64)))
        return kind, rel, "directory replaced by a file"
    size = os.path.getsize(target)
    if kind == "truncate":
        cut = rnd.randrange(size) if size else 0
        with open(target, "r+b") as f:
            f.truncate(cut)
        return kind, rel, f"cut to {cut} of {size} bytes"
    if kind == "bitflip":
        if not size:
            return damage(rnd, run, kinds)
        at, bit = rnd.randrange(size), rnd.randrange(8)
        with open(target, "r+b") as f:
            f.seek(at)
            b = f.read(1)[0]
            f.seek(at)
            f.write(bytes([b ^ (1 << bit)]))
        return kind, rel, f"bit {bit} of byte {at} flipped"
    if kind == "garbage":
        n = rnd.choice([size, rnd.randrange(1, 2 * size + 2)])
        with open(target, "wb") as f:
            f.write(rnd.randbytes(n))
        return kind, rel, f"{n} random bytes"
    if kind == "empty":
        open(target, "wb").close()
        return kind, rel, "emptied"
    if kind == "delete":
        os.remove(target)
        return kind, rel, "deleted"
    if kind == "as_dir":
        os.remove(target)
        os.mkdir(target)
        return kind, rel, "replaced by a directory"
    if kind == "as_symlink":
        os.remove(target)
        other = rnd.choice([os.path.join(older, os.path.basename(target)), os.path.join(run, "nowhere"),
                            older, target])  # (the last: a link to itself, a loop)
        os.symlink(other, target)
        return kind, rel, f"replaced by a symlink to {os.path.relpath(other, run)}"
    if kind == "fifo":  # (a reader that opens it as a file waits for a writer: forever)
        os.remove(target)
        os.mkfifo(target)
        return kind, rel, "replaced by a named pipe"
    if kind == "unreadable":
        os.chmod(target, 0)
        return kind, rel, "made unreadable"
    if kind == "json":
        return kind, rel, _wrong_shape(rnd, target)
    raise AssertionError(kind)


def _damage_root(rnd, run, root, kind):
    """The checkpoint root itself: gone, a file, a symlink to nothing or to itself."""
    shutil.rmtree(root)
    if kind == "garbage":
        with open(root, "wb") as f:
            f.write(rnd.randbytes(rnd.randrange(64)))
    elif kind == "as_symlink":
        os.symlink(rnd.choice([root, os.path.join(run, "nowhere")]), root)
    return kind, os.path.relpath(root, run), "the checkpoint root"


KINDS = ["truncate", "bitflip", "bitflip", "garbage", "empty", "delete", "as_dir", "as_symlink", "extra", "json",
         "json"] + ([] if AS_ROOT else ["unreadable"]) + (["fifo"] if hasattr(os, "mkfifo") else [])


# ---------------------------------------------------------------------- the readers
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
    _copy(str(run0), run)
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


# ---------------------------------------------------------------------- a few cases through the CLI
def _flip(path, at=None):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2 if at is None else at] ^= 0x04
    open(path, "wb").write(bytes(data))


def _run_cli(argv, capsys):
    from distnn.cli import main

    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


def _cli_case(pristine, tmp_path, how):
    run = str(tmp_path / "run")
    _copy(str(pristine[0]), run)
    root = os.path.join(run, "checkpoints")
    newest = os.path.join(root, ck.step_name(100))
    if how == "bitflip":
        _flip(os.path.join(newest, "model.npz"))
        return newest, "model.npz fails its SHA-256 check"
    if how == "manifest-field":
        mpath = os.path.join(newest, ck.MANIFEST)
        text = open(mpath, "rb").read()
        open(mpath, "wb").write(text.replace(b'"epoch_end": true', b'"epoch_end": 1'))
        return newest, "manifest.json is damaged"
    if how == "manifest-list":
        open(os.path.join(newest, ck.MANIFEST), "w").write("[1, 2]")
        return newest, "manifest.json is not a distnn checkpoint manifest"
    if how == "pointer":
        open(os.path.join(root, ck.BEST), "wb").write(b"\xff\xfe garbage")
        return os.path.join(root, ck.BEST), "best' is damaged or unreadable"
    if how in ("another-step", "linked-step"):
        for n in os.listdir(newest):
            os.unlink(os.path.join(newest, n))
        os.rmdir(newest)
        if how == "linked-step":
            os.symlink(os.path.join(root, ck.step_name(40)), newest)
            return newest, f"is a symlink to {os.path.join(root, ck.step_name(40))!r}"
        _copy(os.path.join(root, ck.step_name(40)), newest)
        return newest, "manifest.json is of step-00000040, not of step-00000100"
    raise AssertionError(how)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("how", ["bitflip", "manifest-field", "manifest-list", "pointer", "another-step",
                                 "linked-step"])
def test_cli_evaluate_and_predict_refuse_a_damaged_checkpoint_in_one_line(pristine, tmp_path, capsys, command,
                                                                            how):
    path, expected = _cli_case(pristine, tmp_path, how)
    args = [command, path]
    if command == "predict":
        inputs = tmp_path / "in.csv"
        np.savetxt(inputs, np.zeros((3, 64)), delimiter=",")
        args += ["--input", str(inputs), "--output", str(tmp_path / "p.csv")]
    code, err = _run_cli(args, capsys)
    assert code == 2 and err.startswith("distnn: error: ") and len(err.strip().splitlines()) == 1, err
    assert expected in err, err
    assert not (tmp_path / "p.csv").exists()


def test_cli_resume_auto_falls_back_past_a_damaged_newest_checkpoint(pristine, tmp_path, capsys):
    path, expected = _cli_case(pristine, tmp_path, "manifest-field")
    run = os.path.dirname(os.path.dirname(path))
    code, err = _run_cli(["train", "--out", run, "--resume", "auto", "--quiet", "--set", "train.epochs=6"], capsys)
    assert code == 0, err
    warning = next(line for line in err.splitlines() if expected in line)
    assert "step-00000100" in warning and "trying the previous checkpoint" in warning
    assert f"resumed from {os.path.join(run, 'checkpoints', ck.step_name(80))}" in err
    # the damaged checkpoint was moved aside (a rewind), and the run went on from step 80 to 6 epochs
    assert [c.step for c in ck.list_checkpoints(os.path.join(run, "checkpoints"))][-1] == 120


def test_cli_resume_auto_with_every_checkpoint_damaged_is_a_clear_error(pristine, tmp_path, capsys):
    run = str(tmp_path / "run")
    _copy(str(pristine[0]), run)
    _flip(os.path.join(run, "checkpoints", ck.step_name(20), "model.json"))  # (one file, linked into all five)
    code, err = _run_cli(["train", "--out", run, "--resume", "auto", "--quiet"], capsys)
    assert code == 2, err
    newest = os.path.join(run, "checkpoints", ck.step_name(100))
    assert "holds a finished run" in err and "no valid checkpoint to continue from (5 there, none whole; the " \
        f"newest: checkpoint {newest!r}: file model.json fails its SHA-256 check" in err, err
    # a run that did not finish (no results): the resume tries each checkpoint and says why it cannot
    for name in ("model.npz", "summary.json"):
        os.remove(os.path.join(run, name))
    code, err = _run_cli(["train", "--out", run, "--resume", "auto", "--quiet"], capsys)
    assert code == 2, err
    assert "distnn: error: no valid checkpoint in" in err and "every one is incomplete or corrupt" in err
    assert err.count("file model.json fails its SHA-256 check") == 5, err


# ---------------------------------------------------------------------- several ranks: one fallback for all
@pytest.fixture(scope="module")
def digits():  # (test_checkpoint's make_trainer takes these)
    from distnn.data import build_transforms, load_dataset

    splits = load_dataset("digits")
    return splits, build_transforms(splits, {"noise": 0.1}), build_transforms(splits)


def _resume_past_damage(comm, digits, root, damage_newest):
    """The uninterrupted run, and the run cut at step 16, its newest checkpoint damaged (on rank 0,
    between two barriers) and resumed with --resume auto: ``(full, resumed, resumed_from)``."""
    from test_checkpoint import final_state, make_trainer

    from distnn.train.callbacks.checkpoint_setup import attach

    kw = dict(subset=360, batch_size=60)  # 6 steps an epoch, 3 epochs; checkpoints at 4, 6, 8, 12, 16
    full = make_trainer(comm, digits, epochs=3, **kw)
    full.fit()
    opts = {"dir": root, "every_steps": 4, "keep_last": 0}
    first = make_trainer(comm, digits, epochs=3, **kw)
    first.max_steps = 16
    attach(first, root, opts, signals=())
    first.fit()
    comm.barrier()
    if comm.rank == 0:
        damage_newest(os.path.join(root, ck.step_name(16)))
    comm.barrier()
    resumed = make_trainer(comm, digits, epochs=3, **kw)
    cb = attach(resumed, root, opts, resume_spec="auto", signals=())
    resumed.fit()
    return final_state(full), final_state(resumed), cb.resumed_from


def _edit_world_size(path):  # a manifest field outside `files`, one bit flipped (format 3's own checksum)
    import re

    mpath = os.path.join(path, ck.MANIFEST)
    text = open(mpath, "rb").read()
    edited = re.sub(rb'"world_size": (\d+)', lambda m: b'"world_size": %d' % (int(m.group(1)) ^ 1), text)
    assert edited != text
    open(mpath, "wb").write(edited)


def _check_one_fallback(results, root):
    from test_checkpoint import assert_bitwise

    assert {r[2] for r in results} == {(os.path.join(root, ck.step_name(12)), 12)}, [r[2] for r in results]
    for full, resumed, _ in results:
        assert_bitwise(full, resumed)


def test_simulated_ranks_fall_back_to_the_same_checkpoint(digits, tmp_path):
    from distnn.distributed import simulate

    root = str(tmp_path / "ck")
    results = simulate(2, lambda comm: _resume_past_damage(comm, digits, root, _edit_world_size))
    _check_one_fallback(results, root)


@pytest.mark.mpi(min_size=2)
def test_mpi_ranks_fall_back_to_the_same_checkpoint(digits, mpi_tmp_path):
    import distnn.distributed as dist

    comm = dist.init()
    root = str(mpi_tmp_path / "ck")
    result = _resume_past_damage(comm, digits, root, _edit_world_size)
    _check_one_fallback(comm.allgather_object(result), root)
