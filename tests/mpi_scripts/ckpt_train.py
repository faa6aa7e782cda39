"""A small checkpointed training job for the test_checkpoint_mpi_*.py files (run under mpiexec, or alone for 1 rank).

Digits, an MLP with dropout, noise augmentation, Adam with per-step warmup:
every piece of state a resume must restore. Writes ``--final FILE`` (npz of
the final model and optimizer state, rank 0) and ``FILE.json`` (steps,
skipped steps, whether replicas are bitwise equal). Exit status: 0 done,
75 preempted (checkpoint written), 2 a checkpoint or non-finite error.
Fault injection through the DISTNN_FAULT_* / DISTNN_CKPT_FAULT variables.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np

import distnn
from distnn.data import build_transforms, load_dataset
from distnn.distributed import init
from distnn.models import build_model
from distnn.optim import Adam
from distnn.optim.lr_scheduler import LinearWarmup
from distnn.train import checkpoint as ck
from distnn.train import preemption, step_guard
from distnn.train.callbacks import LRSchedulerCallback, background_writer
from distnn.train.callbacks.base import Callback
from distnn.train.callbacks.checkpoint import ModelCheckpoint
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.logging_utils import set_rank, setup_logging
from distnn.train.trainer import Trainer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--every-n-steps", type=int, default=0)
    p.add_argument("--every-n-epochs", type=int, default=1)
    p.add_argument("--keep-last", type=int, default=0)
    p.add_argument("--resume", default=None)
    p.add_argument("--nonfinite", default="error")
    p.add_argument("--on-error", default="stop")
    p.add_argument("--async-save", action="store_true")
    p.add_argument("--await-writes", action="store_true",
                   help="a step that looks whether the background write has ended waits for its end")
    p.add_argument("--no-save-best", dest="keep_best", action="store_false")
    p.add_argument("--ckpt-dir", default="checkpoints")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--noise", type=float, default=0.1)
    p.add_argument("--subset", type=int, default=400)
    p.add_argument("--batch", type=int, default=40)
    p.add_argument("--share-dropout", action="store_true",
                   help="the dropout layer draws from a BatchShareGenerator of its own (counter-based masks)")
    p.add_argument("--final", default=None)
    p.add_argument("--precision", default="32")
    p.add_argument("--powersgd-start", type=int, default=None,
                   help="PowerSGD compression (rank 1) from this step on (default: none)")
    a = p.parse_args()

    if a.await_writes:  # "the write has ended by the next step" without counting on timing
        def done_when_ended(job):
            job.result()
            return True

        background_writer.Job.done = done_when_ended
    comm = init()
    os.makedirs(a.out, exist_ok=True)
    set_rank(comm.rank)
    setup_logging(all_ranks=True)
    splits = load_dataset("digits")
    train_tf, eval_tf = build_transforms(splits, {"noise": a.noise} if a.noise else None)
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[32], dropout=a.dropout, input_shape=splits.input_shape, num_classes=10)
    if a.share_dropout:  # this rank's places in each global batch: the masks of a sample on any number of ranks
        from distnn.data.batch_random import BatchShareGenerator

        drop = next(m for m in model.modules() if isinstance(m, distnn.nn.Dropout))
        drop.generator = BatchShareGenerator([5, 7], a.batch, np.arange(comm.rank, a.batch, comm.size))
    opt = Adam(model.parameters(), lr=3e-3)
    warm = LRSchedulerCallback(LinearWarmup(opt, warmup_steps=5), interval="step")
    ddp_kwargs = None
    if a.powersgd_start is not None:
        from distnn.distributed import PowerSGDState

        ddp_kwargs = {"compression": PowerSGDState(start_powerSGD_iter=a.powersgd_start)}
    trainer = Trainer(model, opt, splits.train.subset(np.arange(a.subset)), splits.val, comm=comm,
                      batch_size=a.batch, epochs=a.epochs, callbacks=[warm], transform=train_tf,
                      eval_transform=eval_tf, seed=3, precision=a.precision, ddp_kwargs=ddp_kwargs)
    scaler_states = {}  # the loss scaler's state after each step of this session ("16-mixed")

    class ScalerStates(Callback):
        def on_batch_end(self, trainer, logs):
            scaler_states[trainer.state.global_step] = trainer.amp.scaler.state_dict()

    if a.precision == "16-mixed":
        trainer.callbacks.append(ScalerStates())
    options = {"dir": a.ckpt_dir, "every_steps": a.every_n_steps, "every_epochs": a.every_n_epochs,
               "keep_last": a.keep_last, "keep_best": a.keep_best, "on_error": a.on_error, "async_save": a.async_save}
    try:
        attach(trainer, a.out, options, nonfinite=a.nonfinite, resume_spec=a.resume)
        # the pid of every rank, once its signal handlers are installed (tests signal or kill from outside)
        with open(os.path.join(a.out, f"pid.{comm.rank}"), "w") as f:
            f.write(str(os.getpid()))
        trainer.fit()
    except preemption.Preempted as e:
        if comm.rank == 0:
            print(f"ckpt_train: {e}", file=sys.stderr, flush=True)
        return preemption.EXIT_PREEMPTED
    except (ck.CheckpointError, step_guard.NonFiniteError) as e:
        if comm.rank == 0:
            print(f"ckpt_train: error: {e}", file=sys.stderr, flush=True)
        return 2

    digest = hashlib.sha256(b"".join(v.tobytes() for v in model.state_dict().values())).hexdigest()
    digests = comm.allgather_object(digest) if comm.size > 1 else [digest]
    # each rank's view of the agreed outcomes of its checkpoint callback's saves
    checkpoint = next(cb for cb in trainer.callbacks.callbacks if isinstance(cb, ModelCheckpoint))
    mine = {"saves": checkpoint.saves, "failures": checkpoint.failures, "best": checkpoint.best_name,
            "last": os.path.basename(checkpoint.last_path) if checkpoint.last_path else None}
    outcomes = comm.allgather_object(mine) if comm.size > 1 else [mine]
    if comm.rank == 0 and a.final:
        arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
        for i, s in opt.state_dict()["state"].items():
            for k, v in s.items():
                arrays[f"opt/{i}/{k}"] = np.asarray(v)
        np.savez(a.final, **arrays)
        with open(a.final + ".json", "w") as f:
            json.dump({"global_step": trainer.state.global_step, "skipped_steps": trainer.state.skipped_steps,
                       "replicas_equal": len(set(digests)) == 1, "world": comm.size, "scaler": scaler_states,
                       "checkpoint_outcomes": outcomes,
                       "powersgd": (trainer.ddp.powersgd.compression_stats()
                                    if trainer.ddp is not None and trainer.ddp.powersgd is not None else None),
                       "history": [{k: v for k, v in h.items() if k != "wall_time" and k != "samples_per_sec"}
                                   for h in trainer.history]}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
