"""Damage for the checkpoint-corruption fuzz (tests/test_checkpoint_corruption_*.py): a pristine trained run and
its copy, and the kinds of damage (truncate, bit flips, garbage, empty, deleted, wrong JSON values and shapes,
permissions) done to a seeded choice of its files."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from distnn.train import checkpoint as ck
from distnn.train.checkpoint import state as ck_state


AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TRAIN_ARGS = ["--quiet", "--set", "train.epochs=5", "--set", "run.plots=false", "--set", "checkpoint.keep_last=0",
              "--set", "checkpoint.every_epochs=1", "--set", "model.hidden_sizes=[16]"]


def train_run(out, *extra):
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
        assert train_run(run) == 0
    finally:
        mp.undo()
    root = run / "checkpoints"
    saved = {c.name: ck.read_checkpoint(c.path) for c in ck.list_checkpoints(str(root))}
    assert sorted(saved) == [ck.step_name(20 * e) for e in range(1, 6)]
    newest = root / ck.step_name(100)
    assert {"history-000000.json", "history-000001.json", "model.json", "config.toml"} <= set(os.listdir(newest))
    assert os.stat(newest / "history-000000.json").st_nlink == 4 and os.stat(newest / "model.json").st_nlink == 5
    weights = {name: read_npz(root / name / "model.npz") for name in saved}
    weights["run"] = read_npz(run / "model.npz")
    return run, saved, weights


def read_npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def copy_run(src, dst):
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


def json_files(paths):
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


def wrong_shape(rnd, path) -> str:
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
        target = rnd.choice(json_files(pools["newest"] + pools["manifest"] * 3 + pools["run"] + files(older)))
    elif kind in ("extra", "as_dir", "as_symlink", "delete") and rnd.random() < 0.25:
        target = rnd.choice(pools["dirs"])  # a checkpoint directory itself
    elif kind in ("as_symlink", "delete", "garbage") and rnd.random() < 0.05:
        return damage_root(rnd, run, root, kind)
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
        return kind, rel, wrong_shape(rnd, target)
    raise AssertionError(kind)


def damage_root(rnd, run, root, kind):
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
