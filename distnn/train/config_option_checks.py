"""The ``[optimizer]`` and ``[schedule]`` keys that only some optimizers and schedules take
(:data:`OPTIMIZER_OPTIONS`, :data:`SCHEDULE_OPTIONS`), and the checks that the chosen one takes each key given
(:func:`check_optimizer_options`, :func:`check_schedule_options`)."""
from __future__ import annotations

import copy

from .config_origins import Related
from .config_overrides import _members_change, _override_leaves
from .config_schema import SCHEMA


#: the optimizer keys that only some optimizers take: the keyword arguments of that name of their constructors,
#: which job_setup passes (every optimizer takes lr and weight_decay; the trainer applies l1 and max_norm).
#: tests/test_config_optimizer_options.py holds the three together, and the keys' docs in the schema to them.
OPTIMIZER_OPTIONS = {
    "momentum": ("sgd", "rmsprop", "lars"),
    "nesterov": ("sgd", "lars"),
    "betas": ("adam", "adamw", "lamb", "adamax", "nadam", "radam"),
    "eps": ("adam", "adamw", "rmsprop", "adagrad", "lars", "lamb", "adamax", "nadam", "radam", "adadelta"),
    "alpha": ("rmsprop",),
    "rho": ("adadelta",),
    "momentum_decay": ("nadam",),
    "decoupled_weight_decay": ("nadam", "radam"),
    "etas": ("rprop",),
    "step_sizes": ("rprop",),
    "lambd": ("asgd",),
    "t0": ("asgd",),
    "beta2_decay": ("adafactor",),
    "d": ("adafactor",),
}

#: constructor arguments that share a key's name but not its meaning, so the builder leaves them at the
#: optimizer's own default: ASGD's alpha is the power of its rate's decay (0.75), not RMSprop's smoothing constant;
#: Adafactor's eps is a pair (eps1, eps2), a floor of its variance estimate and of its parameters' RMS, not a
#: denominator's epsilon (PyTorch's (None, 1e-3))
OPTIMIZER_NAMESAKES = {"asgd": ("alpha",), "adafactor": ("eps",)}

#: the schedule keys that only some schedules take, as schedule_setup.build_schedule reads them (the others, the
#: warmup, the interval and the linear scaling, go with any schedule); tests/test_config_tables.py holds them
#: together, and the keys' docs in the schema to them.
SCHEDULE_OPTIONS = {
    "step_size": ("step",),
    "gamma": ("step", "multistep", "exponential", "cyclic"),
    "milestones": ("multistep",),
    "T_max": ("cosine",),
    "eta_min": ("cosine",),
    "max_lr": ("onecycle", "cyclic"),
    "power": ("polynomial",),
    **{k: ("cyclic",) for k in ("step_size_up", "step_size_down", "cycle_mode")},
    **{k: ("plateau",) for k in ("monitor", "mode", "patience", "threshold", "cooldown", "min_lr")},
    "factor": ("plateau", "constant_factor"),
    "total_iters": ("constant_factor",),
}


#: schedule options a schedule reads in some of its modes alone: ``{(schedule, key): (its mode key, the modes
#: that read it)}``. CyclicLR's ``gamma`` scales the amplitude in ``exp_range`` alone; ``triangular`` and
#: ``triangular2`` never read it. Refused like another schedule's option (``check_schedule_options``): the mode
#: picks the schedule's formula, as CharLM's ``arch`` picks its network (``Arguments.only_with``), and is no
#: feature switched on and off around settings kept for later (those warn: ``config_inactive``).
SCHEDULE_MODE_OPTIONS = {("cyclic", "gamma"): ("cycle_mode", ("exp_range",))}


def _takers(key: str, table=OPTIMIZER_OPTIONS) -> str:
    """'sgd, rmsprop and lars': the optimizers (schedules) that take ``key``, in words."""
    *rest, last = table[key]
    return f"{', '.join(rest)} and {last}" if rest else last


def _chosen(out: dict, section: str) -> set:
    """The ``section.name`` of ``out`` (a config, resolved or raw) and those its ensemble members' overrides
    choose: an option one of them takes is no option the config gives in vain."""
    table = out.get(section) if isinstance(out.get(section), dict) else {}
    names = {table.get("name", SCHEMA[f"{section}.name"].default)}
    overrides = (out.get("ensemble") or {}).get("overrides") if isinstance(out.get("ensemble"), dict) else None
    for member in overrides if isinstance(overrides, list) else ():
        if isinstance(member, dict):
            names.update(v for k, value in member.items() for path, v in _override_leaves(k, value)
                         if path == f"{section}.name")
    return names


def _options_not_taken(section: str, table: dict, out: dict, problems: list, overridden):
    """Keys of ``section`` (optimizer, schedule), off their default, that the chosen ``section.name`` does not
    take (``table``: the names that take each key), nor the name an ensemble member chooses. Each is a problem:
    it would be ignored, as PyTorch's optimizers refuse a keyword they do not take (TypeError) and Lightning's
    CLI init_args a class does not take. But from the config file while --set gave ``section.name``, the --set
    wins: the key goes back to its default (unset, for an optional key). A run's config.toml that holds one
    loads without it (:func:`drop_options_not_taken`)."""
    o = out[section]
    name = o.get("name")
    if name is None:
        return
    names = _chosen(out, section)
    members = sorted(n for n in names - {name} if isinstance(n, str))
    one = "an optimizer" if section == "optimizer" else "a schedule"
    for k, takers in table.items():
        default = SCHEMA[f"{section}.{k}"].default
        if k not in o or names & set(takers) or o[k] == default:
            continue
        also = f", nor would the ensemble members' {', '.join(members)} use it" if members else ""
        if f"{section}.{k}" in overridden:
            problems.append(Related(
                f"{section} {name!r} does not take {section}.{k} (an option of {_takers(k, table)}): {name} would "
                f"ignore it{also}; leave out --set {section}.{k}, or choose {one} that takes it", f"{section}.{k}",
                f"{section}.name"))
        elif f"{section}.name" in overridden:
            if default is None:
                del o[k]
            else:
                o[k] = copy.deepcopy(default)
        elif section == "optimizer" and k == "nesterov":
            problems.append(Related(
                f"optimizer {name!r} does not take optimizer.nesterov = true (an option of {_takers('nesterov')}, "
                f"with momentum > 0): remove the line nesterov = true from [optimizer], or give --set "
                f"optimizer.nesterov=false", "optimizer.nesterov", "optimizer.name"))
        else:  # (was: left, and ignored)
            problems.append(Related(
                f"{section} {name!r} does not take {section}.{k} (an option of {_takers(k, table)}): {name} would "
                f"ignore it{also}; remove {k} from [{section}], or choose {one} that takes it", f"{section}.{k}",
                f"{section}.name"))


def drop_options_not_taken(raw: dict, keep=()) -> None:
    """Take out of ``raw``'s [optimizer] and [schedule] the options that neither its ``name`` nor one an
    ensemble member chooses takes, but the dotted keys in ``keep``.

    For a run's config.toml: one may hold such an option (a config file's, accepted and ignored before a
    config refused one); its run never used it, so it goes, and the run re-runs and resumes as it did. For an
    ensemble member's config (``keep``: the keys its overrides set): the ensemble's options of another
    optimizer (schedule) than the member's own go back to their defaults, as they do when --set gives the
    name."""
    for section, table in (("optimizer", OPTIMIZER_OPTIONS), ("schedule", SCHEDULE_OPTIONS)):
        s = raw.get(section)
        if not isinstance(s, dict):
            continue
        names = _chosen(raw, section)
        for k, takers in table.items():
            if k in s and not names & set(takers) and f"{section}.{k}" not in keep:
                del s[k]
    s = raw.get("schedule")
    if isinstance(s, dict):  # (an option of the schedule's other modes: its run never read it either)
        for k in _mode_options_not_read(raw):
            if f"schedule.{k}" not in keep:
                del s[k]


def _mode_options_not_read(out: dict) -> list:
    """The keys of :data:`SCHEDULE_MODE_OPTIONS` that ``out``'s [schedule] (a config, resolved or raw) gives
    off the schedule's own default while its mode does not read them; [] where an ensemble member changes the
    schedule or its mode (the member's may read them; each member's config is checked on its own)."""
    from .schedule_defaults import schedule_default

    s = out.get("schedule") if isinstance(out.get("schedule"), dict) else {}
    found = []
    for (name, k), (mode, modes) in SCHEDULE_MODE_OPTIONS.items():
        if s.get("name", SCHEMA["schedule.name"].default) != name or s.get(k) is None:
            continue
        if s.get(k) == schedule_default(name, k) or s.get(mode, SCHEMA[f"schedule.{mode}"].default) in modes:
            continue
        if not (_members_change(out, "schedule.name") or _members_change(out, f"schedule.{mode}")):
            found.append(k)
    return found


def check_optimizer_options(out: dict, problems: list, overridden=()):
    """Optimizer keys, off their default, that the chosen optimizer does not take (``momentum`` for adam):
    each is a problem, whether the config file or --set gives it (PyTorch's optimizers raise TypeError for a
    keyword they do not take). From the config file while --set gave ``optimizer.name``, the --set wins (as
    ``_set_wins_over_unused`` for the model's arguments): ``--set optimizer.name=adam`` on digits_mlp means
    adam instead of its SGD with Nesterov momentum, so the file's ``momentum`` and ``nesterov`` go back to
    their defaults (the run's config.toml then records what the optimizer used). A run's config.toml that
    holds one (accepted before) loads without it (``drop_options_not_taken``)."""
    _options_not_taken("optimizer", OPTIMIZER_OPTIONS, out, problems, overridden)


def check_schedule_options(out: dict, problems: list, overridden=()):
    """Schedule keys, off their default, that the chosen schedule does not take (``T_max`` for step), as
    :func:`check_optimizer_options` does for the optimizer's: a problem, but from the file while --set gave
    ``schedule.name``, back to their defaults."""
    _options_not_taken("schedule", SCHEDULE_OPTIONS, out, problems, overridden)
    s = out["schedule"]
    for k in _mode_options_not_read(out):  # (cyclic's gamma outside exp_range)
        mode, modes = SCHEDULE_MODE_OPTIONS[(s["name"], k)]
        if f"schedule.{k}" not in overridden and {f"schedule.{mode}", "schedule.name"} & set(overridden):
            del s[k]  # (the --set wins over the file's, as for another schedule's option)
            continue
        remove = f"leave out --set schedule.{k}" if f"schedule.{k}" in overridden else f"remove {k} from [schedule]"
        problems.append(Related(
            f"schedule {s['name']!r} reads schedule.{k} only with schedule.{mode} = "
            f"{' or '.join(map(repr, modes))}: with {mode} = {s[mode]!r} it would ignore {k} = {s[k]!r}; {remove}, "
            f"or set {mode} = {modes[0]!r}", f"schedule.{k}", f"schedule.{mode}"))
    default = SCHEMA["schedule.interval"].default
    # (not where ensemble members choose their schedules: each member's config is checked on its own)
    if s.get("name") in INTERVAL_IGNORED and s["interval"] != default and not _members_change(out, "schedule.name"):
        if "schedule.interval" not in overridden and "schedule.name" in overridden:  # (the --set wins)
            s["interval"] = default
        else:
            problems.append(Related(
                f"schedule {s['name']!r} ignores schedule.interval = {s['interval']!r} ({INTERVAL_IGNORED[s['name']]}):"
                f" remove it, or choose a schedule that advances per interval", "schedule.interval", "schedule.name"))


#: the schedules that ignore ``schedule.interval``, and why (schedule_setup.build_schedule)
INTERVAL_IGNORED = {"constant": "it has nothing to advance; a warmup counts optimizer steps",
                    "plateau": "it steps once per validation",
                    "onecycle": "it spans the run's optimizer steps"}


def reset_ignored_interval_in_record(raw: dict) -> None:
    """A run's config.toml may hold a ``schedule.interval`` its schedule ignored (accepted before a config
    refused one): it goes back to its default, which the run behaved as, and the run re-runs and resumes as it
    did. In a config a user writes, one is a problem (check_schedule_options)."""
    s = raw.get("schedule")
    if isinstance(s, dict) and s.get("name") in INTERVAL_IGNORED and "interval" in s:
        s["interval"] = SCHEMA["schedule.interval"].default
