"""Config keys that the job hands to the distributed layer."""
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
