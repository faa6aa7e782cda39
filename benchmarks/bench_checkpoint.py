"""Checkpoint cost: save/load of an MLP with Adam state, and the overhead of checkpointing every epoch.

Part 1 (one process): the MLP 784-512-256-10 with Adam's two moment buffers
(about 6.4 MB of float32). distnn's checkpoint (npz files, SHA-256 manifest,
fsync of files and directories, atomic rename, ``latest`` pointer; load with
every checksum verified) against the floor, a raw ``np.savez`` of the same
arrays (no fsync, no checks) and its ``np.load``, and against the peer,
``torch.save``/``torch.load`` of the same tensors (when torch is installed).

Part 1b (one process): saving every epoch late in a long run (``--history``
epochs logged): the training history in chunk files that later checkpoints
link (format 2) against the whole history rewritten at every save (format 1's
layout, by the same code otherwise), with ``np.savez`` + fsync of the arrays
alone as the floor.

Part 2 (``mpiexec -n 2``, started by this script): the built-in digits_mlp
job trained with checkpoints off, with two floors (rank 0 writes the model and
optimizer arrays into one file at every epoch end: a bare ``np.savez`` + fsync,
or their raw bytes from a background thread with fsync and an atomic rename,
or the file-system operations of a distnn save on those bytes with nothing computed ('protocol I/O');
and distnn's asynchronous checkpoint callback writing its files through the
least code the commit protocol needs, or writing nothing at all: its in-training
part alone, or writing from its background thread, or from its writer process:
async_save takes one of the two), every epoch (synchronous), and every
epoch with ``async_save``, alternated in
the same processes, several rounds (a different order each round);
reports the median training wall time of each and the overhead in percent,
plus the time the checkpoint callback held training up (rank 0's measure).

Part 3 (``mpiexec -n 2``, unless ``--skip-large``): the same overhead for the
MLP 784-512-256-10 of part 1 (4.3 MB a save with digits_mlp's SGD momentum
buffers; part 1's 6.4 MB hold Adam's two moments) trained on
784-feature synthetic blobs (24,000 samples: epochs of about half a second
instead of digits' ~26 ms), checkpoints off / every epoch / every epoch with
``async_save``: how the cost of a save compares with a longer epoch. The
issue's figure is part 2's; part 3 is context, not a substitute.

``--job-ranks 1`` runs parts 2 and 3 on one rank: on a 2-core machine the
writer then has a core to itself, as on a machine with cores to spare.
``--every N`` adds checkpoints every N epochs (synchronous and ``async_save``, without
the saves at every improvement of the monitored metric), and every N epochs plus at every
improvement (synchronous: digits_mlp's own config with N = 15), to parts 2 and 3 where
their runs have N epochs or more: e.g. ``--epochs 150 --every 15``, digits_mlp's run.

    python benchmarks/bench_checkpoint.py [--reps 7] [--history 10000] [--epochs 10] [--rounds 5] [--skip-job]
                                          [--skip-large] [--job-ranks 2] [--every N]
"""
from __future__ import annotations

from _this_tree import use_this_tree  # (this folder)

use_this_tree()  # distnn of the tree this script is in, not the installed checkout's

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

# before numpy loads its BLAS (which reads them once): also when the worker is started by hand under mpiexec
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from checkpoint_floors import WRITER_FLOORS, _FloorSave, _savez_fsync  # noqa: E402  (this folder)


def _median_ms(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _mlp_with_adam(device="cpu", hidden_sizes=(512, 256), features=784):
    """An MLP ``features``-``hidden_sizes``-10 and its Adam after one step (both moments filled)."""
    import distnn
    import distnn.functional as F
    from distnn.backend import to_device
    from distnn.models import build_model
    from distnn.optim import Adam

    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=list(hidden_sizes), input_shape=(features,), num_classes=10)
    model.to(device)
    opt = Adam(model.parameters(), lr=1e-3)
    x = distnn.Tensor(to_device(np.random.default_rng(0).standard_normal((64, features)).astype(np.float32), device))
    y = np.random.default_rng(1).integers(0, 10, 64)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    return model, opt


def _flat_arrays(state) -> dict:
    """The model's and the optimizer's arrays of ``state`` (``{"model": ..., "optimizer": ...}``), flat:
    what the floors write."""
    flat = {f"model/{k}": v for k, v in state["model"].items()}
    for i, s in state["optimizer"]["state"].items():
        flat.update({f"opt/{i}/{k}": v for k, v in s.items() if hasattr(v, "shape") and v.ndim})
    return flat


def save_load(reps: int, device: str = "cpu") -> None:
    """Save and load times; ``device="cuda"``: the model and Adam state live on the GPU, so every save
    (distnn's, the floor's and torch's alike) includes the copy to the host."""
    from distnn.backend import to_numpy
    from distnn.train import checkpoint as ck

    model, opt = _mlp_with_adam(device)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "state": {"epoch": 3, "global_step": 420}}
    flat_dev = _flat_arrays(state)
    flat = {k: to_numpy(v) for k, v in flat_dev.items()}
    mb = sum(v.nbytes for v in flat.values()) / 1e6
    tmp = tempfile.mkdtemp(prefix="bench-ckpt-")
    rows = []
    try:
        raw = os.path.join(tmp, "raw.npz")

        def floor_save():
            np.savez(raw, **{k: to_numpy(v) for k, v in flat_dev.items()})

        def floor_load():
            with np.load(raw) as z:
                {k: z[k] for k in z.files}

        def floor_save_fsync():
            _savez_fsync(raw, {k: to_numpy(v) for k, v in flat_dev.items()})

        counter = iter(range(10**9))

        serializer = ck.Serializer()  # as the checkpoint callback packs: buffers reused between saves

        def ours(fsync):
            def run():  # as the callback writes: arrays copied, then CRC-32s and SHA-256s on the hashing threads
                files = serializer(state, crc=False)
                ck.write_checkpoint(os.path.join(tmp, "ck"), next(counter), files, {"world_size": 1},
                                    fsync=fsync, prepare=serializer.crc_fillers(files))
                ck.apply_retention(os.path.join(tmp, "ck"), 2)
            return run

        floor_save()
        rows.append(("np.savez (floor: no fsync, no checks)", _median_ms(floor_save, reps), "save"))
        rows.append(("np.savez + fsync", _median_ms(floor_save_fsync, reps), "save"))
        rows.append(("distnn checkpoint, fsync=False", _median_ms(ours(False), reps), "save"))
        rows.append(("distnn checkpoint (fsync, atomic rename)", _median_ms(ours(True), reps), "save"))
        latest = os.path.join(tmp, "ck", ck.read_pointer(os.path.join(tmp, "ck")))
        rows.append(("np.load (floor)", _median_ms(floor_load, reps), "load"))
        rows.append(("distnn read_checkpoint (SHA-256 verified)", _median_ms(lambda: ck.read_checkpoint(latest), reps),
                     "load"))
        try:
            import torch

            torch.set_num_threads(1)
            tstate = {k: torch.from_numpy(v) for k, v in flat.items()}
            if device != "cpu":
                tstate = {k: v.cuda() for k, v in tstate.items()}
            tpath = os.path.join(tmp, "t.pt")
            rows.append(("torch.save (peer)", _median_ms(lambda: torch.save(tstate, tpath), reps), "save"))
            rows.append(("torch.load (peer)", _median_ms(lambda: torch.load(tpath), reps), "load"))
        except ImportError:
            print("(torch not installed: no peer rows)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    floor = {"save": rows[0][1], "load": rows[4][1]}
    print(f"\nMLP 784-512-256-10 + Adam state: {mb:.2f} MB of arrays on {device} (median of {reps})")
    print(f"  {'':46s} {'ms':>8s} {'MB/s':>8s} {'x floor':>8s}")
    for name, ms, kind in rows:
        print(f"  {kind} {name:41s} {ms:8.2f} {mb / (ms / 1e3):8.0f} {ms / floor[kind]:8.2f}")


def long_history(reps: int, records: int) -> None:
    """Part 1b: saving every epoch late in a long run, as the checkpoint callback saves (one
    :class:`Serializer`, each checkpoint linking what the previous one holds unchanged), with the
    history in chunk files (format 2) against the whole history in ``trainer.json`` at every save
    (format 1's layout); the floor is ``np.savez`` + fsync of the same arrays with no history."""
    from distnn.train import checkpoint as ck

    model, opt = _mlp_with_adam(hidden_sizes=(128,), features=64)
    arrays = {"model": model.state_dict(), "optimizer": opt.state_dict()}
    rng = np.random.default_rng(0)

    def record(epoch):  # a digits_mlp epoch's record (full-precision floats, as the trainer logs them)
        return {"epoch": epoch, "train_loss": float(rng.random()), "train_accuracy": float(rng.random()),
                "samples_per_sec": float(rng.random() * 1e5), "val_loss": float(rng.random()),
                "val_accuracy": float(rng.random()), "val_count": 360, "lr": 0.05, "wall_time": float(rng.random())}

    tmp = tempfile.mkdtemp(prefix="bench-ckpt-history-")
    rows = []
    try:
        raw, flat = os.path.join(tmp, "raw.npz"), _flat_arrays(arrays)
        rows.append(("np.savez + fsync of the arrays (floor, no history)",
                     _median_ms(lambda: _savez_fsync(raw, flat), reps), None))
        for label, chunk in (("distnn, history in chunks (format 2)", None),
                             ("distnn, whole history each save (format 1)", 10**9)):
            root = os.path.join(tmp, str(chunk))
            history = [record(e) for e in range(records)]
            serializer, step, written = ck.Serializer(history_chunk=chunk), iter(range(10**9)), []

            def save():
                history.append(record(len(history)))
                files = serializer({**arrays, "history": history}, crc=False)
                linked = serializer.reuse
                path = ck.write_checkpoint(root, next(step), files, reuse=linked,
                                           prepare=serializer.crc_fillers(files))
                serializer.note_written(path)
                written.append(sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path)
                                   if n not in linked))
                ck.apply_retention(root, 2)

            save()  # the first save writes every chunk once
            rows.append((label, _median_ms(save, reps), float(np.median(written[1:]))))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nSaving every epoch after {records:,} epochs: digits MLP 64-128-10 + Adam, history records of "
          f"{len(json.dumps(record(0)))} bytes (median of {reps})")
    print(f"  {'':52s} {'ms':>8s} {'x floor':>8s} {'KB written':>11s}")
    for name, ms, nbytes in rows:
        print(f"  {name:52s} {ms:8.2f} {ms / rows[0][1]:8.2f} {'' if nbytes is None else f'{nbytes / 1e3:11.1f}'}")
    print(f"  format 2 / format 1: {rows[1][1] / rows[2][1]:.2f}x the time")


# --------------------------------------------------------------------- part 2
def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _writer_cpu_seconds() -> float:
    """User + system CPU time so far of this process's checkpoint writer process (0 if none; Linux)."""
    from distnn.train.checkpoint import writer_process

    writer = writer_process._WRITER
    if writer is None or not writer.alive():
        return 0.0
    try:
        with open(f"/proc/{writer.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all its threads."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _machine_busy_seconds():
    """CPU time every process of the machine has used since boot (Linux: /proc/stat; None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user, nice, system, irq, softirq, steal (not idle or iowait)
    return sum(ticks[i] for i in (0, 1, 2, 5, 6, 7) if i < len(ticks)) / os.sysconf("SC_CLK_TCK")


#: a run during which other processes used more than this share of the machine's cores is "disturbed"
QUIET_SHARE = 0.1


#: part 3: the MLP 784-512-256-10 of part 1 on 784-feature blobs (digits_mlp's recipe otherwise)
LARGE_JOB = ["data.name=blobs", "data.n_samples=24000", "data.n_classes=10", "data.n_features=784",
             "data.spread=8.0", "data.augment.shift=0", "data.batch_size=128", "model.hidden_sizes=[512,256]"]


def job_worker(epochs: int, rounds: int, large: bool = False, run_device: str | None = None,
               every: int = 0) -> None:
    """Runs under mpiexec: digits_mlp with checkpoints off / every epoch / every epoch async, alternated
    (with the floors); ``large``: the MLP 784-512-256-10 on blobs (part 3), without the floors; ``every``:
    also checkpoints every that many epochs (synchronous and async_save)."""
    import logging

    from distnn.distributed import init
    from distnn.train.callbacks.checkpoint_setup import attach, extra_files_for
    from distnn.train.checkpoint import writer_process
    from distnn.train.config import dump_config
    from distnn.train.job import Job
    from distnn.train.logging_utils import set_rank, setup_logging

    comm = init()
    set_rank(comm.rank)
    setup_logging(level=logging.WARNING)
    tmp = comm.broadcast_object(tempfile.mkdtemp(prefix="bench-ckpt-job-") if comm.rank == 0 else None)
    # "off": no checkpoints but the per-step guard (non-finite check, preemption flags in the gradient exchange) as in
    # every distnn train run; "no guard": neither, the bare trainer (what the guard costs)
    # "floor": no distnn checkpoint, but rank 0 writes the model and optimizer arrays with a bare
    # np.savez + fsync into one file at every epoch end (no manifest, no atomic rename, no RNG states)
    # "off (again)": 'off' run a second time in each round, the noise floor of the overheads below: what two
    # identical variants differ by on this machine (under load, several % of a digits epoch)
    variants = {"no guard": {"enabled": False}, "off": {"enabled": False}, "off (again)": {"enabled": False},
                "floor: np.savez+fsync": {"enabled": False},
                "floor: async raw+fsync": {"enabled": False},
                "floor: protocol I/O": {"enabled": False},
                "floor: async protocol": {"enabled": False},
                "floor: nothing written": {"enabled": False},
                "floor: writer thread": {"enabled": False},
                "floor: writer process": {"enabled": False},
                "every epoch": {"every_epochs": 1, "async_save": False},
                "every epoch, async_save": {"every_epochs": 1, "async_save": True}}
    if 1 < every <= epochs:
        # (keep_best off: a save at every improvement of val_loss besides, as digits_mlp's config makes them, is
        # the last row's)
        variants[f"every {every} epochs"] = {"every_epochs": every, "async_save": False, "keep_best": False}
        variants[f"every {every} epochs, async_save"] = {"every_epochs": every, "async_save": True, "keep_best": False}
        variants[f"every {every} + improved"] = {"every_epochs": every, "async_save": False}
    if large:
        variants = {k: v for k, v in variants.items() if k == "off" or k.startswith("every ")}
    if not writer_process.available():  # (async_save writes from its thread there: the floor is the same)
        variants.pop("floor: writer thread", None)
        variants.pop("floor: writer process", None)
    results = {v: [] for v in variants}
    saves = {}
    names = list(variants)
    for r in range(rounds):
        # a different order each round (no variant always follows the same one), and the previous
        # run's garbage collected before the clock starts rather than during the next run
        for name in names[r % len(names):] + names[:r % len(names)]:
            opts = variants[name]
            job = Job("digits_mlp", (LARGE_JOB if large else []) + [f"train.epochs={epochs}", "run.plots=false"]
                      + ([f"run.device={run_device}"] if run_device else []), comm, quiet=True)
            out = os.path.join(tmp, f"{r}-{len(results[name])}-{name.replace(' ', '_').replace(',', '')}")
            # as `distnn train` attaches it: model.json and config.toml go into every checkpoint too
            cb_extra = extra_files_for(job.model_meta(), dump_config(job.cfg))
            cb = attach(job.trainer, out, {**opts, "keep_last": 2},
                        nonfinite="off" if name == "no guard" else job.cfg.train.nonfinite, extra_files=cb_extra)
            if name in WRITER_FLOORS:
                # distnn's async callback (gather, snapshot, agreement) with its writer replaced
                cb = WRITER_FLOORS[name]()(os.path.join(out, "checkpoints"), keep_last=2, async_save=True,
                                           extra_files=cb_extra)
                job.trainer.callbacks.append(cb)
            elif name.startswith("floor"):
                cb = _FloorSave(out, "raw" if "raw" in name else "protocol" if "I/O" in name else "savez")
                job.trainer.callbacks.append(cb)
            gc.collect()
            comm.barrier()
            busy0, k0 = _machine_busy_seconds(), _writer_cpu_seconds()
            t0, c0 = time.perf_counter(), _cpu_seconds()
            job.trainer.fit()
            wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            cpu += _writer_cpu_seconds() - k0  # (the async_save writer process's, on rank 0)
            busy1 = _machine_busy_seconds()
            # every thread of every rank (kernel threads doing write-back for them are not counted)
            cpu = sum(comm.allgather_object(cpu))
            # the share of the cores other processes used meanwhile (all ranks on this host, as mpiexec -n starts them)
            others = None if busy0 is None or busy1 is None else (busy1 - busy0 - cpu) / (wall * _cores())
            stall = sum(cb.timings) if cb is not None else 0.0
            saves[name] = cb.saves if cb is not None else 0
            results[name].append((wall, stall, cpu, others))
    if comm.rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        base = float(np.median([w for w, _, _, _ in results["off"]]))
        base_min = float(np.min([w for w, _, _, _ in results["off"]]))
        base_cpu = float(np.median([c for _, _, c, _ in results["off"]]))
        cores = _cores()

        def quiet(name):  # the wall times of the runs no other process disturbed
            return [w for w, _, _, o in results[name] if o is not None and o <= QUIET_SHARE]

        def paired(name):  # each round's wall time over that round's 'off' run, both undisturbed
            return [a[0] / b[0] - 1 for a, b in zip(results[name], results["off"])
                    if a[3] is not None and b[3] is not None and max(a[3], b[3]) <= QUIET_SHARE]

        base_quiet = float(np.median(quiet("off"))) if quiet("off") else None
        what = "MLP 784-512-256-10 on 784-feature blobs (24,000 samples)" if large else "digits_mlp"
        device = "GPU" if job.trainer.xp is not np else "CPU"
        print(f"\n{comm.size}-rank {what} on the {device}, {epochs} epochs per run, {rounds} rounds alternated (wall time of "
              f"fit), {cores} cores; median epoch {1e3 * base / epochs:.0f} ms with checkpoints off")
        print(f"  {'checkpoints':30s} {'median s':>8s} {'overhead':>9s} {'min s':>7s} {'overhead':>9s} "
              f"{'held up':>8s} {'saves':>6s} {'CPU s':>6s} {'+CPU/save':>9s} {'quiet':>12s} {'paired':>7s}")
        for name in variants:
            walls = [w for w, _, _, _ in results[name]]
            wall, wmin = float(np.median(walls)), float(np.min(walls))
            stall = float(np.median([s / w for w, s, _, _ in results[name]]))
            cpu = float(np.median([c for _, _, c, _ in results[name]]))
            per_save = f"{1e3 * (cpu - base_cpu) / saves[name]:7.1f}ms" if saves[name] else f"{'':9s}"
            calm = quiet(name)
            calm = (f"{100 * (float(np.median(calm)) - base_quiet) / base_quiet:6.1f}% {len(calm):2d}/{len(walls):<2d}"
                    if calm and base_quiet else f"{'-':>12s}")
            pairs = paired(name)
            pairs = f"{100 * float(np.median(pairs)):6.1f}%" if pairs else f"{'-':>7s}"
            print(f"  {name:30s} {wall:8.3f} {100 * (wall - base) / base:8.1f}% {wmin:7.3f} "
                  f"{100 * (wmin - base_min) / base_min:8.1f}% {100 * stall:7.2f}% {saves[name]:6d} "
                  f"{cpu:6.3f} {per_save} {calm} {pairs}   runs: {' '.join(f'{w:.3f}' for w in walls)}")
        if large:
            return
        print("  overhead: vs 'off' (noisy: same-machine load varies); held up: time inside the checkpoint\n"
              "  callback (gather, snapshot, write or hand-off, agreement) / fit time, rank 0;\n"
              "  quiet: the overhead by the medians of the runs during which other processes used at most\n"
              f"  {100 * QUIET_SHARE:.0f}% of the cores (/proc/stat; the shared machine's other work), and how many;\n"
              "  paired: the median over rounds of each quiet run's wall time over its round's quiet 'off' run\n"
              "  (slow drifts of a shared machine cancel);\n"
              "  CPU s: user + system time of both ranks' processes (all threads) during fit; +CPU/save:\n"
              "  its excess over 'off' per save. With every core busy training, a background writer's CPU\n"
              "  comes out of training time: the overhead is then about that excess / cores;\n"
              "  'no guard' vs 'off' is the per-step agreement (non-finite check + preemption flag);\n"
              "  'off (again)': 'off' once more each round: two identical variants differ by this (noise);\n"
              "  floors: rank 0 writes the model and optimizer arrays into one file per epoch, np.savez +\n"
              "  fsync in the training thread, or their raw bytes from a background thread (write, fsync,\n"
              "  rename, fsync of the directory); no manifest, checksums, pointers, retention or random states;\n"
              "  'protocol I/O': those bytes through the file operations of a distnn save (a retired\n"
              "  directory renamed, 4 files overwritten in place, a pointer, 6 fsyncs, 2 renames, the old\n"
              "  one retired), nothing computed: the commit protocol's file-system cost alone;\n"
              "  'async protocol': distnn's async callback with the least writer the commit protocol needs\n"
              "  (same files, SHA-256s, fsyncs, manifest, rename, latest; no recycling or links);\n"
              "  'nothing written': distnn's async callback whose writer writes nothing (the gather of the\n"
              "  ranks' random states, the snapshot into bytes, the hand-off and the agreement alone);\n"
              "  'writer thread' / 'writer process': async_save writing from its background thread (sharing\n"
              "  the training process's interpreter lock) / from its writer process (whose CPU CPU s include);\n"
              "  async_save takes the process where a core is to spare for it (here with --job-ranks 1)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--skip-job", action="store_true")
    p.add_argument("--history", type=int, default=10000, help="part 1b: epochs of history already logged")
    p.add_argument("--device", default="cpu", help="part 1's arrays on this device (cuda: saves copy to the host)")
    p.add_argument("--run-device", choices=("auto", "cpu", "gpu"), default=None,
                   help="run.device of the 2-rank jobs (default: the config's, auto)")
    p.add_argument("--skip-large", action="store_true", help="skip part 3 (the MLP 784-512-256-10 job)")
    p.add_argument("--job-ranks", type=int, default=2,
                   help="ranks of the jobs of parts 2 and 3 (1 on a 2-core machine: a core to spare for the writer)")
    p.add_argument("--every", type=int, default=0,
                   help="parts 2 and 3 also checkpoint every N epochs (give --epochs a multiple of it), e.g. 15: "
                        "digits_mlp's own config")
    p.add_argument("--large-epochs", type=int, default=3)
    p.add_argument("--large-rounds", type=int, default=5)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--large", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        job_worker(a.epochs, a.rounds, a.large, a.run_device, a.every)
        return
    print("measured on a shared machine: figures vary run to run")
    save_load(a.reps, a.device)
    long_history(max(a.reps, 15), a.history)
    if a.skip_job and a.skip_large:
        return
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if mpiexec is None:
        print("mpiexec not found: skipping the 2-rank jobs")
        return
    worker = [mpiexec, "-n", str(a.job_ranks), sys.executable, os.path.abspath(__file__), "--worker"]
    if a.run_device:
        worker += ["--run-device", a.run_device]
    if a.every:
        worker += ["--every", str(a.every)]
    if not a.skip_job:
        subprocess.run(worker + ["--epochs", str(a.epochs), "--rounds", str(a.rounds)], check=True)
    if not a.skip_large:
        subprocess.run(worker + ["--large", "--epochs", str(a.large_epochs), "--rounds", str(a.large_rounds)],
                       check=True)

if __name__ == "__main__":
    main()
