"""Where an ``async_save`` checkpoint's overhead goes outside the callback's own time (issue 7).

bench_checkpoint part 2's digits_mlp job, trained with variants alternated in the same processes (a
different order each round; round 0 warms up and is not counted): ``off`` (checkpoints off, the step
guard on: bench_checkpoint's 'off'), ``nothing written`` (distnn's async callback whose writer writes
nothing: bench_checkpoint's floor), ``nothing written inline`` (the same, its empty write run in the
training thread: no writer thread woken), ``thread only`` (no checkpoint; a no-op handed to the
checkpoint writer thread at every epoch end: what waking it costs), ``async_save``; ``NAME/N`` saves every
N epochs instead (``--every``; off the schedule no save: ``save_best`` off). ``off2`` is ``off`` again (the
noise between identical variants). Per rank and variant it reports, as medians over the rounds: the
fit's wall and the training thread's CPU time (``thread_time``, what the work costs, less inflated than
the wall by other processes on the cores), also paired with each round's first variant; the phases of
the epoch loop (the training steps, validation, the epoch end's callbacks, the stop agreement; without
``--light`` each step, the batches' loading and the callbacks' per-step hooks too); Python's cyclic
garbage collections by ``gc.callbacks`` (count and time per generation, and in which thread) and what a
full one costs after the runs; minor page faults; the training thread's context switches. Then each
phase's median over single epochs (wall / CPU, and the CPU mean), and with ``--every N`` the epochs
after a save against the others of the same runs (what a save costs the epoch after it).

    mpiexec -n 2 python benchmarks/profile_checkpoint_overhead.py [--epochs 40] [--rounds 5] [--light]
        [--variants "off,nothing written,async_save"] [--every N] [--pin]
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _this_tree import use_this_tree  # noqa: E402

use_this_tree()
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

MAIN = threading.main_thread()
GC = defaultdict(float)  # ("count"|"time", gen, "main"|"other") -> value
_gc_start = {}


def _gc_callback(phase, info):
    who = "main" if threading.current_thread() is MAIN else "other"
    if phase == "start":
        _gc_start[who] = time.perf_counter()
    else:
        GC[("count", info["generation"], who)] += 1
        GC[("time", info["generation"], who)] += time.perf_counter() - _gc_start.pop(who, time.perf_counter())


def _switches():
    """(voluntary, involuntary) context switches of the calling thread so far (Linux; zeros elsewhere)."""
    try:
        with open("/proc/thread-self/status") as f:
            got = dict(line.split(":", 1) for line in f if "ctxt_switches" in line)
        return int(got["voluntary_ctxt_switches"]), int(got["nonvoluntary_ctxt_switches"])
    except (OSError, KeyError, ValueError):
        return 0, 0


PHASES = defaultdict(float)  # (label, "wall"|"cpu") -> seconds, training thread only
EPOCHS = []  # per epoch: {label: (wall, cpu)} of the training thread, from the epoch's start to the next's


def timed(owner, name, label):
    """``label``: a string, or a function of the call's arguments giving one."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        if threading.current_thread() is not MAIN:
            return original(*args, **kwargs)
        lab = label if isinstance(label, str) else label(*args)
        t0, c0 = time.perf_counter(), time.thread_time()
        if lab == "train_epoch (steps)":  # an epoch's start: the previous epoch's whole time ends here
            if EPOCHS and "start" in EPOCHS[-1]:
                w, c = EPOCHS[-1].pop("start")
                EPOCHS[-1]["epoch (start to start)"] = (t0 - w, c0 - c)
            EPOCHS.append({"start": (t0, c0)})
        try:
            return original(*args, **kwargs)
        finally:
            dw, dc = time.perf_counter() - t0, time.thread_time() - c0
            PHASES[(lab, "wall")] += dw
            PHASES[(lab, "cpu")] += dc
            if EPOCHS:
                w0, c0_ = EPOCHS[-1].get(lab, (0.0, 0.0))
                EPOCHS[-1][lab] = (w0 + dw, c0_ + dc)

    setattr(owner, name, wrapper)


def _inline_submit(self, job):
    from distnn.train.callbacks.background_writer import Job

    done = Job(self._write_into, (job,))
    done.run()
    return done


def _ThreadOnly():
    from distnn.train.callbacks.background_writer import writer
    from distnn.train.callbacks.base import Callback

    class ThreadOnly(Callback):
        state_key = "_thread_only"

        def on_epoch_end(self, trainer, logs):
            writer().submit(dict, ())

    return ThreadOnly()


def _pin():
    """Rank r's training thread on core 2r, its checkpoint writer thread on core 2r+1 (taken modulo the cores)."""
    from distnn.train.callbacks import background_writer

    cores = sorted(os.sched_getaffinity(0))
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
    os.sched_setaffinity(0, {cores[(2 * rank) % len(cores)]})  # (0: the calling thread, on Linux)
    loop = background_writer.BackgroundWriter._loop

    def pinned(jobs):
        os.sched_setaffinity(0, {cores[(2 * rank + 1) % len(cores)]})
        return loop(jobs)

    background_writer.BackgroundWriter._loop = staticmethod(pinned)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--variants", default="off,nothing written,async_save")
    p.add_argument("--every", type=int, default=1,
                   help="save every N epochs: >1 also compares, in the same runs, the epochs after a save with "
                        "the others (what a save costs the next epoch, drifts of a shared machine cancelled)")
    p.add_argument("--light", action="store_true",
                   help="time the epoch's phases only, not each step and callback (whose wrappers cost ~1 us a call)")
    p.add_argument("--pin", action="store_true",
                   help="the training thread on one core and the writer thread on another (Linux): no migrations")
    a = p.parse_args()
    if a.pin:
        _pin()

    import logging

    import bench_checkpoint as bc
    from distnn.distributed import init
    from distnn.train.callbacks import CallbackList
    from distnn.train.callbacks.checkpoint_setup import attach, extra_files_for
    from distnn.train.config import dump_config
    from distnn.train.job import Job
    from distnn.train.logging_utils import set_rank, setup_logging
    from distnn.train.trainer import Trainer

    comm = init()
    set_rank(comm.rank)
    setup_logging(level=logging.WARNING)
    timed(Trainer, "train_epoch", "train_epoch (steps)")
    timed(Trainer, "evaluate", "evaluate")
    timed(CallbackList, "on_epoch_end", "callbacks.on_epoch_end")
    timed(Trainer, "_agreed_stop", "stop agreement")
    for hook in ("on_train_begin", "on_loop_end", "on_train_end"):  # (once a fit: 1/epochs of it an epoch)
        timed(CallbackList, hook, f"callbacks.{hook}")
    if not a.light:
        timed(Trainer, "train_step", lambda self, *a: f"  train_step {min(self.state.batch_in_epoch, 3)}"
              + ("+" if self.state.batch_in_epoch >= 3 else ""))
        timed(CallbackList, "on_batch_end", "  callbacks.on_batch_end")
        timed(Trainer, "_reduce", "  epoch's reduce")
        from distnn.train import trainer as trainer_mod
        from distnn.train.callbacks.checkpoint import ModelCheckpoint
        timed(ModelCheckpoint, "on_batch_end", "    ModelCheckpoint.on_batch_end")
        timed(ModelCheckpoint, "on_epoch_end", "  ModelCheckpoint.on_epoch_end")
        plain_batches = trainer_mod.train_batches

        def batches(*args):  # the batches' loading and transform, timed
            it = plain_batches(*args)
            while True:
                t0, c0 = time.perf_counter(), time.thread_time()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    PHASES[("  next batch", "wall")] += time.perf_counter() - t0
                    PHASES[("  next batch", "cpu")] += time.thread_time() - c0
                yield item

        trainer_mod.train_batches = batches
    gc.callbacks.append(_gc_callback)
    tmp = comm.broadcast_object(tempfile.mkdtemp(prefix="gc-ckpt-") if comm.rank == 0 else None)
    names = a.variants.split(",")
    rows = {n: [] for n in names}
    for r in range(a.rounds + 1):  # (round 0 warms up)
        for name in names[r % len(names):] + names[:r % len(names)]:
            # "NAME/N": NAME, saving every N epochs (else every --every)
            every = int(name.rsplit("/", 1)[1]) if "/" in name else a.every
            job = Job("digits_mlp", [f"train.epochs={a.epochs}", "run.plots=false"], comm, quiet=True)
            out = os.path.join(tmp, f"{r}-{name.replace(' ', '_').replace('/', '_')}")
            extra = extra_files_for(job.model_meta(), dump_config(job.cfg))
            if name == "off":
                attach(job.trainer, out, {"enabled": False, "keep_last": 2}, extra_files=extra)
            elif name.startswith("off"):  # (a second 'off': the noise between two identical variants)
                attach(job.trainer, out, {"enabled": False, "keep_last": 2}, extra_files=extra)
            elif name.startswith("nothing written"):
                attach(job.trainer, out, {"enabled": False, "keep_last": 2}, extra_files=extra)
                cb = bc._nothing_written_checkpoint()(os.path.join(out, "checkpoints"), keep_last=2, async_save=True,
                                                      extra_files=extra, every_n_epochs=every,
                                                      save_best=every == 1)  # (no save off the schedule)
                if name.endswith("inline"):  # its (empty) write in this thread: no writer thread woken
                    cb._submit = _inline_submit.__get__(cb)
                job.trainer.callbacks.append(cb)
            elif name == "thread only":  # a no-op handed to the writer thread at every epoch end
                attach(job.trainer, out, {"enabled": False, "keep_last": 2}, extra_files=extra)
                job.trainer.callbacks.append(_ThreadOnly())
            else:
                attach(job.trainer, out, {"every_epochs": every, "async_save": True, "keep_last": 2,
                                                "keep_best": every == 1}, extra_files=extra)
            gc.collect()
            comm.barrier()
            GC.clear()
            PHASES.clear()
            EPOCHS.clear()  # (a fit's last epoch keeps its "start": no next epoch ends it)
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            s0 = _switches()
            t0, c0 = time.perf_counter(), time.thread_time()
            job.trainer.fit()
            wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
            s1 = _switches()
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            rec = {"wall": wall, "cpu": cpu, "proc_cpu": ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime,
                   "minflt": ru1.ru_minflt - ru0.ru_minflt,
                   "vcsw": s1[0] - s0[0], "ivcsw": s1[1] - s0[1], "gc": dict(GC), "phases": dict(PHASES),
                   "epochs": [{k: v for k, v in ep.items() if k != "start"} for ep in EPOCHS]}
            if r:
                rows[name].append(rec)
            comm.barrier()
            if comm.rank == 0:
                shutil.rmtree(out, ignore_errors=True)
    gathered = comm.allgather_object(rows)
    tracked = len(gc.get_objects())
    t0 = time.perf_counter()
    gc.collect()
    full = time.perf_counter() - t0
    if comm.rank == 0:
        print(f"a full collection after the runs (rank 0): {tracked:,} objects tracked, {1e3 * full:.1f} ms; "
              f"the thresholds {gc.get_threshold()}")
        shutil.rmtree(tmp, ignore_errors=True)
        report(gathered, names, a.epochs)
        if a.every > 1:
            after_save(gathered, names, a.every)
        epoch_medians(gathered, names)


def after_save(gathered, names, every):
    """Per rank and variant: each phase of the epochs that follow a save against those that follow none
    (epoch 0 left out), medians over every such epoch of every round, in us."""
    print(f"epochs after a save (epoch i with i % {every} == 0, i > 0) against the others (epoch 0 left out): "
          "median us of the training thread, wall / CPU")
    for rank, rows in enumerate(gathered):
        for name in names:
            after, other = defaultdict(list), defaultdict(list)
            for run in rows[name]:
                for i, ep in enumerate(run["epochs"]):
                    if i == 0:
                        continue
                    for lab, wc in ep.items():
                        (after if i % every == 0 else other)[lab].append(wc)
            print(f"rank {rank} {name}")
            for lab in sorted(after):
                aw, ac = np.median([w for w, _ in after[lab]]), np.median([c for _, c in after[lab]])
                ow, oc = np.median([w for w, _ in other[lab]]), np.median([c for _, c in other[lab]])
                print(f"    {lab:34s} after a save {1e6 * aw:8.1f} / {1e6 * ac:8.1f}   others {1e6 * ow:8.1f} / "
                      f"{1e6 * oc:8.1f}   difference {1e6 * (aw - ow):+7.1f} / {1e6 * (ac - oc):+7.1f}")


def epoch_medians(gathered, names):
    """Per rank and variant: the median over every epoch (epoch 0 left out) of every round of each phase."""
    print("median over epochs (epoch 0 left out) of each phase, us of the training thread, wall / CPU (CPU mean)")
    for rank, rows in enumerate(gathered):
        labels = sorted({lab for name in names for run in rows[name] for ep in run["epochs"] for lab in ep})
        print(f"rank {rank}: {'':30s}" + "".join(f"{name:>31s}" for name in names))
        for lab in labels:
            cells = []
            for name in names:
                got = [ep[lab] for run in rows[name] for ep in run["epochs"][1:] if lab in ep]
                walls, cpus = [1e6 * w for w, _ in got], [1e6 * c for _, c in got]
                cells.append(f"{np.median(walls):9.1f} / {np.median(cpus):8.1f} ({np.mean(cpus):8.1f})"
                             if got else f"{'-':>31s}")
            print(f"    {lab:34s}" + "".join(cells))
        def first(name, lab):  # epoch 0's CPU (the first save of a fit), median over the rounds
            return 1e6 * np.median([r["epochs"][0].get(lab, (0, 0))[1] for r in rows[name]])

        print("    epoch 0 (the first save of a fit), median over rounds, CPU: " + ", ".join(
            f"{name}: " + " ".join(f"{lab} {first(name, lab):.0f}"
                                   for lab in ("train_epoch (steps)", "callbacks.on_epoch_end", "stop agreement"))
            for name in names))


def report(gathered, names, epochs):
    med = lambda xs: float(np.median(xs))  # noqa: E731
    print(f"{len(gathered)} ranks, digits_mlp, {epochs} epochs a run, medians of {len(gathered[0][names[0]])} rounds "
          "(per epoch: us)")
    for rank, rows in enumerate(gathered):
        base = rows[names[0]]
        bw, bc_ = med([x["wall"] for x in base]), med([x["cpu"] for x in base])
        print(f"rank {rank}")
        for name in names:
            xs = rows[name]
            w, c = med([x["wall"] for x in xs]), med([x["cpu"] for x in xs])
            pc = med([x["proc_cpu"] for x in xs])
            flt = med([x["minflt"] for x in xs])
            # each round's run over that round's first variant's: slow drifts of a shared machine cancel
            pw = med([x["wall"] / b["wall"] - 1 for x, b in zip(xs, base)])
            pcpu = med([x["cpu"] / b["cpu"] - 1 for x, b in zip(xs, base)])
            vcs, ivcs = med([x["vcsw"] for x in xs]), med([x["ivcsw"] for x in xs])
            print(f"  {name:16s} wall {1e6 * w / epochs:8.0f} ({100 * (w - bw) / bw:+5.1f}%, paired {100 * pw:+5.1f}%)"
                  f"  main CPU {1e6 * c / epochs:8.0f} ({100 * (c - bc_) / bc_:+5.1f}%, paired {100 * pcpu:+5.1f}%)"
                  f"  process CPU {1e6 * pc / epochs:8.0f}  minflt/epoch {flt / epochs:5.1f}  main thread's context "
                  f"switches/epoch {vcs / epochs:5.2f} + {ivcs / epochs:5.2f} forced")
            labels = sorted({k[0] for x in xs for k in x["phases"]})
            for lab in labels:
                pw = med([x["phases"].get((lab, "wall"), 0.0) for x in xs])
                pcpu = med([x["phases"].get((lab, "cpu"), 0.0) for x in xs])
                print(f"      {lab:28s} wall {1e6 * pw / epochs:8.0f}  CPU {1e6 * pcpu / epochs:8.0f}")
            for gen in range(3):
                for who in ("main", "other"):
                    n = med([x["gc"].get(("count", gen, who), 0) for x in xs])
                    t = med([x["gc"].get(("time", gen, who), 0.0) for x in xs])
                    if n:
                        print(f"      gc gen{gen} ({who:5s})  {n / epochs:6.2f} / epoch  {1e6 * t / epochs:8.1f} "
                              f"us/epoch  {1e6 * t / n:8.1f} us each")


if __name__ == "__main__":
    main()
