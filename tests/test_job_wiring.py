"""Config keys that the job hands to the distributed layer."""
import signal

import pytest

import distnn.distributed as dist
from distnn.train.job import Job


def test_distributed_timeout_reaches_the_communicator(monkeypatch):
    monkeypatch.delenv("DISTNN_COLLECTIVE_TIMEOUT", raising=False)

    def build(comm):
        Job("xor", ["distributed.timeout=7.5", "train.epochs=1"], comm, quiet=True)
        return comm._group.timeout

    assert dist.simulate(2, build) == [7.5, 7.5]


def test_environment_timeout_wins_over_the_config(monkeypatch):
    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "42")

    def build(comm):
        Job("xor", ["distributed.timeout=7.5", "train.epochs=1"], comm, quiet=True)
        return comm._group.timeout

    assert dist.simulate(2, build) == [42.0, 42.0]


def _digits_job(*overrides):
    return Job("digits_mlp", ["train.epochs=10", "data.batch_size=128", "data.drop_last=true", "run.plots=false",
                              "data.augment.shift=0", *overrides], dist.LocalCommunicator(), quiet=True)


def test_schedules_spanning_the_run_end_where_max_steps_ends_it():
    # 9 steps per epoch; max_steps = 30 stops in epoch 4: cosine used to be sized for 10 epochs and stopped at
    # 65% of its peak, onecycle mid-cycle
    job = _digits_job("schedule.name=cosine", "train.max_steps=30")
    job.trainer.fit()
    assert job.trainer.state.global_step == 30 and job.trainer.lr == 0.0  # eta_min
    job = _digits_job("schedule.name=onecycle", "train.max_steps=30")
    job.trainer.fit()
    assert job.trainer.lr < 1e-3  # annealed to (one step before) the end of its cycle; the peak is 0.05
    job = _digits_job("schedule.name=cosine", "schedule.interval=epoch", "train.max_steps=30")
    job.trainer.fit()
    assert job.trainer.history[-1]["lr"] < job.trainer.history[0]["lr"] / 2  # sized in (4) epochs


def test_the_epoch_max_steps_ends_is_validated():
    job = _digits_job("train.eval_every=3", "train.max_steps=30")
    job.trainer.fit()
    assert [("val_loss" in row) for row in job.trainer.history] == [False, False, True, True]


def test_simulated_ranks_preempted_ignore_a_duplicate_signal_while_exiting(tmp_path, monkeypatch):
    # After the preemption checkpoint a late duplicate SIGTERM (a launcher forwards each one) must not kill
    # the exiting process (143): one process and MPI ranks ignore it; simulated ranks could not (their
    # call ran off the main thread).
    from distnn.train.job import run_training
    from distnn.train.preemption import Preempted

    monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", "0:5")
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        with pytest.raises(Preempted):
            run_training("digits_mlp", ["train.epochs=2", "model.hidden_sizes=[16]", "run.plots=false"],
                         out=str(tmp_path / "run"), simulate_ranks=2, quiet=True)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@pytest.fixture
def ctrl_c():
    """SIGINT raises KeyboardInterrupt, as in a Python process started in the foreground. One started in the
    background by a non-interactive shell (``./tests/run.sh &`` in a script) inherits SIGINT ignored, Python
    leaves it so, and ``_thread.interrupt_main()`` then does nothing: the job trained to its end and
    pytest.raises said "DID NOT RAISE KeyboardInterrupt"."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_simulated_ranks_and_they_clean_up(tmp_path, monkeypatch, ctrl_c):
    # Ctrl-C reaches the main thread only: the rank threads trained on (into the interpreter's exit),
    # and their checkpoint spare was left behind. They now stop at their next collective and clean up.
    import _thread
    import os

    from distnn.distributed.comm_base import CollectiveAbortedError
    from distnn.train import trainer as T
    from distnn.train.job import run_training

    real_step, real_fit = T.Trainer.train_step, T.Trainer.fit
    stopped = {}  # rank: (the exception its fit ended with, its step)

    def train_step(self, *a, **k):
        if self.comm.rank == 0 and self.state.global_step == 25:
            _thread.interrupt_main()  # what Ctrl-C does
            # Rank 0 goes on once the main thread has acted on it (not whenever that thread next runs), so
            # both ranks are stopped in this step's collectives. (Bounded: if the Ctrl-C is lost, the job
            # trains to its end and pytest.raises fails.)
            group = self.comm._group
            with group.cond:
                group.cond.wait_for(lambda: group.failure is not None, timeout=60)
        return real_step(self, *a, **k)

    def fit(self):
        try:
            return real_fit(self)
        except BaseException as e:
            stopped[self.comm.rank] = (type(e), self.state.global_step)
            raise

    monkeypatch.setattr(T.Trainer, "train_step", train_step)
    monkeypatch.setattr(T.Trainer, "fit", fit)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_training("digits_mlp", ["train.epochs=4", "model.hidden_sizes=[16]", "run.plots=false",
                                    "checkpoint.every_steps=1"], out=str(run), simulate_ranks=2, quiet=True)
    # both ranks had ended (stopped at step 25, not trained on) when run_training raised, their clean-up done
    assert stopped == {0: (CollectiveAbortedError, 25), 1: (CollectiveAbortedError, 25)}
    left = sorted(os.listdir(run / "checkpoints"))
    assert not [n for n in left if n.startswith((".spare-", ".tmp-"))], left


def test_ctrl_c_while_the_job_is_collected_is_not_lost(tmp_path, monkeypatch, ctrl_c):
    # run_training collects the job's reference cycles as it ends, running DataParallel's finalizers in this
    # thread; a Ctrl-C then raised its KeyboardInterrupt inside a finalizer, where Python only prints it, and
    # run_training returned as if there had been none (a sweep went on with its next job).
    import _thread
    import gc
    import weakref

    from distnn.train.job import run_training

    real_collect = gc.collect

    def collect(*a):
        class Garbage:
            pass

        garbage = Garbage()
        garbage.cycle = garbage
        weakref.finalize(garbage, _thread.interrupt_main)  # Ctrl-C, acted on in a finalizer of this collection
        del garbage
        return real_collect(*a)

    monkeypatch.setattr(gc, "collect", collect)
    with pytest.raises(KeyboardInterrupt):
        run_training("digits_mlp", ["train.epochs=1", "model.hidden_sizes=[16]", "run.plots=false"],
                     out=str(tmp_path / "run"), simulate_ranks=2, quiet=True)
