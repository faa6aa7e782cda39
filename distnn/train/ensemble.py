"""Ensembles across workers: K members trained in one job, their class probabilities averaged.

Stochastic training of a non-convex model gives a different network per seed.
Averaging the members' predicted class PROBABILITIES, ``p(y|x) = sum_k w_k p_k(y|x)``
with ``w_k = 1/K``, reduces that variance; averaging their weights or their
logits does not (the members' hidden units are not aligned). Nothing here ever
averages logits or weights.

The config's ``[ensemble]`` section::

    [ensemble]
    members = 4                       # K (1 = a plain single-model run)
    vary = ["seed"]                   # "seed": member k uses run.seed + k
                                      # "bootstrap": member k trains on a bootstrap
                                      #   resample of the training split (n draws with replacement)
    overrides = [{ "optimizer.lr" = 0.1 }, {}, {}, { "model.hidden_sizes" = [64] }]   # optional, one per member

**Groups.** With world size W and K members the world is split
(``Communicator.split``) into ``G = gcd(W, K)`` groups of ``W/G`` consecutive
ranks; group ``g`` trains members ``g, g+G, g+2G, ...`` one after another, each
data-parallel on the GROUP communicator exactly as a single-model job does
(sharding, gradient averaging, agreed early stopping and checkpoints within the
group). So W = K (or a multiple) trains all members at once; a plain
``python`` run or any W < K (``--simulate-ranks`` too) trains members in turns
on the ranks there are, and the same config works everywhere. K > 1 must divide
W when W >= K: other choices stop the job at start with the valid ones.

**Members.** Member k's config is the run's config with ``run.seed + k``
(when ``vary`` has "seed"), ``overrides[k]`` applied, and ``ensemble.member = k``
(with ``members = 1``): ``members/member-k/config.toml`` retrains that member
alone. Overrides may change the model, optimizer, schedule, training and
augmentation, never the data or its splits: every member is scored on the same
validation and test samples, standardized with the same statistics.

**Evaluation.** Each rank computes float64 probabilities of its group's
members for its shard of the rows (rows ``r::group_size``), weighted by
``1/K``, into a zero buffer holding every validation and test row plus the
members' loss/correct/count sums; ONE allreduce over the world then leaves the
ensemble's averaged probabilities and every member's metrics on every rank.

**Run directory.** ``members/member-k/`` is a complete run directory per member
(config, model, metrics, curves, summary, checkpoints); the top level holds
the ensemble: ``model.json`` (marks it an ensemble, lists the members),
``summary.json`` (members' and ensemble's test metrics and the ensemble's gain),
``metrics.jsonl``/``metrics.csv`` (one row per member and one for the
ensemble) and ``curves.png``. :func:`load_ensemble` (used by
``run_dir.load_model``) turns it back into an :class:`EnsembleModel`, whose
output is the log of the averaged probabilities, so ``distnn evaluate`` and
``distnn predict`` use every member unchanged. The job itself (groups, training,
files) is :mod:`distnn.train.ensemble_run`.

The parts: the ``[ensemble]`` section (:mod:`~distnn.train.ensemble_config`), a
member's config, directory and data (:mod:`~distnn.train.ensemble_members`), the
groups (:mod:`~distnn.train.ensemble_groups`), averaging and scoring
(:mod:`~distnn.train.ensemble_scoring`) and the saved ensemble
(:mod:`~distnn.train.ensemble_model`); everything is importable from here.
"""
from __future__ import annotations

from . import ensemble_config as _config, ensemble_groups as _groups, ensemble_members as _members
from . import ensemble_scoring as _scoring
from .ensemble_config import FIXED_SECTIONS, VARY_CHOICES, EnsembleError, EnsembleSettings, ensemble_settings
from .ensemble_groups import EnsemblePlan, group_communicator, plan_groups
from .ensemble_members import (bootstrap_indices, member_config, member_dir, member_resume_path, member_seed,
                               member_splits, seed_key)
from .ensemble_model import (EnsembleModel, ensemble_table, is_ensemble_dir, load_ensemble, load_unfinished_ensemble,
                             log_average_probabilities)
from .ensemble_scoring import (average_probabilities, ensemble_gain, evaluate_ensemble, log_softmax_np,
                               member_log_probs, nll_and_accuracy)
from .run_dir import MEMBERS_DIR

# (private helpers other modules import from here)
_get, _set, _flatten = _config._get, _config._set, _config._flatten
_divisors, _stored_member, _weights = _groups._divisors, _members._stored_member, _scoring._weights

__all__ = ["FIXED_SECTIONS", "MEMBERS_DIR", "VARY_CHOICES", "EnsembleError", "EnsembleModel", "EnsemblePlan",
           "EnsembleSettings", "average_probabilities", "bootstrap_indices", "ensemble_gain", "ensemble_settings",
           "ensemble_table", "evaluate_ensemble", "group_communicator", "is_ensemble_dir", "load_ensemble",
           "load_unfinished_ensemble", "log_average_probabilities", "log_softmax_np", "member_config", "member_dir",
           "member_log_probs", "member_resume_path", "member_seed", "member_splits", "nll_and_accuracy",
           "plan_groups", "requested", "seed_key", "summary_lines", "train_ensemble"]


# ------------------------------------------------------------ the training job
def requested(config, overrides=()) -> bool:
    """True when ``config`` (with ``overrides``) asks for several members; False on any config error
    (the single-model path then reports it as usual)."""
    try:
        from .config import load_config
        from .config_object import quiet_config_warnings

        with quiet_config_warnings():  # (a look: the job's set-up loads it again and says them)
            return ensemble_settings(load_config(config, list(overrides or ()))).active
    except Exception:  # noqa: BLE001 - reported by the normal path
        return False


def train_ensemble(comm, config, overrides=(), out=None, quiet=False):
    """Train and score an ensemble run on every rank (see :mod:`distnn.train.ensemble_run`)."""
    from .ensemble_run import train_ensemble as run

    return run(comm, config, overrides, out, quiet)


def summary_lines(summary: dict) -> list:
    """What ``distnn train`` prints at the end of an ensemble run."""
    from .ensemble_run import summary_lines as lines

    return lines(summary)
