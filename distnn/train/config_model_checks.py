"""The ``[model]`` section beyond the schema: the chosen model's keyword arguments against its own rules
(:func:`check_model`), which arguments a config may give (:func:`model_arguments`), and what a run's
recorded ``config.toml`` may hold that a config a user writes may not (the ``drop_*_in_record`` helpers)."""
from __future__ import annotations

import difflib
import re

from . import config as C
from .config_origins import Related
from .config_overrides import _members_change
from .config_schema import MODEL_RESERVED, SCHEMA
from .config_values import _plain


def model_arguments(name: str) -> list | None:
    """The keyword arguments a config may give model ``name`` (not those the trainer fills in), in the
    order of its signature; None for a model that is not known or takes any (``**kwargs``)."""
    import inspect

    try:
        from distnn.models import registry
    except ImportError:
        return None
    cls = getattr(registry, "_MODELS", {}).get(name.lower())
    if cls is None:
        return None
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    decided = data_decided_arguments(name)
    return [p for p in params if p != "self" and p not in MODEL_RESERVED and p not in decided]


def data_decided_arguments(name: str) -> tuple:
    """The arguments of model ``name`` that the data decides whenever the trainer builds it (``Arguments.
    from_data``: LeNet's ``in_channels`` and ``image_size`` come from the input shape the trainer always
    gives), so that a config's value would be ignored; () for a model without them, or not known."""
    table = _argument_table(name) if isinstance(name, str) else None
    return table.from_data if table is not None else ()


def _argument_table(name):
    """The :class:`~distnn.models.arguments.Arguments` table of model ``name``, or None (unknown, none, or
    no model zoo here: as in check_model, it is optional)."""
    try:
        from distnn.models.arguments import arguments_of
    except ImportError:
        return None
    return arguments_of(name)


def _set_wins_over_unused(table, given: dict, defaults: dict, overridden) -> list:
    """The arguments of ``given`` to drop because a --set (``overridden``: the dotted keys it gave) makes the
    model ignore them, where the config file gave them.

    ``--set model.arch=lstm`` on a config whose file gives the transformer's ``nhead`` means "an LSTM
    instead": --set cannot remove a key, so the file's ``nhead`` goes (as the file's options of another
    optimizer or schedule go back to their defaults). ``--set model.sizes=[...]`` on a config that gives
    ``hidden_sizes`` (digits_mlp) means "these sizes instead", and since the two are alternatives
    (``Arguments.instead_of``) a --set ``hidden_sizes`` drops the file's ``sizes`` too. Both from the file,
    or both by --set, stay a problem that ``check_model`` reports.
    """
    drop = []
    for k in table.ignored(given, defaults):
        o = table.only_with[k]
        by_set = {a for a in (k, o.other) if f"model.{a}" in overridden}
        if by_set == {o.other}:
            drop.append(k)
        elif by_set == {k} and o.alternative:
            drop.append(o.other)
    return drop


def drop_switched_off_by_member(raw: dict, member_keys) -> None:
    """An ensemble member's config (``raw``: the ensemble's with the member's overrides applied;
    ``member_keys``: the dotted keys those set) less each model argument of the ensemble's config that the
    member's overrides make the model ignore, as --set does (``_set_wins_over_unused``): a member's
    ``model.arch = "lstm"`` drops the file's transformer ``nhead`` for that member alone, and a member's
    ``model.sizes`` the file's ``hidden_sizes``. An argument the member gives itself stays a problem."""
    model = raw.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return
    table = _argument_table(model["name"])
    if table is None:
        return
    from distnn.models import registry
    from distnn.models.arguments import signature_defaults

    for k in _set_wins_over_unused(table, model, signature_defaults(registry._MODELS[model["name"].lower()]),
                                   member_keys):
        model.pop(k, None)


def _none_by_set(extra: dict, out: dict, overridden) -> dict:
    """``extra`` with ``--set model.KEY=none`` (or ``null``) read as None where the model's rule allows None.

    TOML has no null, so --set cannot otherwise undo a file's value of an argument whose off-value is None
    (MLP's ``norm = "layer"``), as ``none`` already unsets an optional schema key.
    """
    table = _argument_table(out["model"].get("name", ""))
    if table is None:
        return extra
    extra = dict(extra)
    for k, v in extra.items():
        rule = table.rules.get(k)
        if (f"model.{k}" in overridden and isinstance(v, str) and v.lower() in ("none", "null")
                and rule is not None and rule.test(None) and not rule.test(v)):
            extra[k] = None
    return extra


def drop_data_decided_in_record(raw: dict) -> None:
    """A run's config.toml may hold an argument the data decides (``model.in_channels``: recorded as given,
    before a config refused one); its model was built from the data's input shape alone, so the argument goes,
    and the run re-runs and resumes as it did. In a config a user writes, one is a problem (check_model)."""
    model = raw.get("model")
    if isinstance(model, dict) and isinstance(model.get("name"), str):
        for k in data_decided_arguments(model["name"]):
            model.pop(k, None)


def drop_ignored_in_record(raw: dict) -> None:
    """A run's config.toml may hold a model argument its other arguments make the model ignore (CharLM's
    ``hidden_size`` with ``arch = "transformer"``: recorded as given, before a config refused one; the MLP's
    ``hidden_sizes`` beside ``sizes``: recorded as the file's next to a --set ``sizes`` before the MLP refused
    both). Its model was built without it, so it goes, and the run re-runs and resumes as it did. In a config
    a user writes, one is a problem (check_model)."""
    model = raw.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return
    table = _argument_table(model["name"])
    if table is None or not table.only_with:
        return
    from distnn.models import registry
    from distnn.models.arguments import signature_defaults

    recorded = ((raw.get(C.RECORDED_DEFAULTS) or {}).get("model") or {}).get(model["name"])
    table.drop_ignored(model, {**signature_defaults(registry._MODELS[model["name"].lower()]),
                               **(recorded if isinstance(recorded, dict) else {})})


def check_model(extra: dict, out: dict, problems: list, known=None, recorded=None, overridden=()):
    """``known``: every dotted key the hints for a misspelt one may name (default: the schema's);
    ``recorded``: a run's recorded model defaults, ``{model name: {argument: value}}`` (see
    ``config_schema.RECORDED_DEFAULTS``): the chosen model's stand for its signature defaults;
    ``overridden``: the dotted keys --set gave."""
    known = list(SCHEMA) if known is None else known
    extra = _none_by_set(extra, out, overridden)  # (first: --set model.sizes=none gives no sizes)
    decided = data_decided_arguments(out["model"].get("name"))
    for k in sorted(extra):
        if k in MODEL_RESERVED:
            problems.append(f"model.{k} is set by the trainer from the data; remove it from the config")
        elif k in decided:  # (the model takes it, but the input shape the trainer gives overrides it)
            problems.append(Related(f"model.{k} is set by the trainer from the data (its input shape) for model "
                                    f"{out['model']['name']!r}; remove it from the config", f"model.{k}",
                                    "model.name"))
    extra = {k: v for k, v in extra.items() if k not in decided}
    out["model"].update({k: v for k, v in extra.items() if k not in MODEL_RESERVED})
    name = out["model"]["name"]
    try:
        from distnn.models import registry
    except ImportError:  # the model zoo is optional here; the trainer reports it at build time
        return
    models = getattr(registry, "_MODELS", {})
    if not models:
        return
    if name.lower() not in models:
        close = difflib.get_close_matches(name.lower(), sorted(models), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f"model.name {name!r} is not a known model{hint}; available: {', '.join(sorted(models))}")
        return
    params = model_arguments(name)
    if params is None:  # (it takes any keyword)
        return
    accepted = sorted(params)
    for k in sorted(extra):
        if k not in MODEL_RESERVED and k not in params:  # (it may be model.name that --set changed)
            problems.append(Related(f"unknown key 'model.{k}'{C.suggest_key(f'model.{k}', known)}; model {name!r} "
                                    f"takes: {', '.join(accepted)}", f"model.{k}", "model.name"))
    # The known keys against the model's own rules (types, ranges, relations), as the model applies them
    # when it is built; here every problem is reported before any data is loaded or directory created.
    from distnn.models.arguments import Arguments, config_problems, signature_defaults

    table = getattr(models[name.lower()], "arguments", None)
    rules = table.rules if isinstance(table, Arguments) else {}
    defaults = {**signature_defaults(models[name.lower()]), **(recorded or {}).get(name, {})}
    if isinstance(table, Arguments):  # (given arguments the others make the model ignore: CharLM's per arch)
        extra = dict(extra)
        for k in _set_wins_over_unused(table, extra, defaults, overridden):
            extra.pop(k, None)
            out["model"].pop(k, None)
        for k, problem in table.ignored(extra, defaults).items():
            if not table.only_with[k].alternative:  # (two alternatives: config_problems says so, as the model does)
                problems.append(Related(problem, f"model.{k}", f"model.{table.only_with[k].other}"))
    # Defaults the model does not use with these arguments (MLP's hidden_sizes once sizes is given).
    unused = table.unused(extra, defaults) if isinstance(table, Arguments) else set()
    # The defaults a run recorded for this model (and no other: a re-run with another model.name gets that
    # model's own), for the arguments it takes and uses; checked by its rules as given ones are.
    own = {k: v for k, v in (recorded or {}).get(name, {}).items()
           if k in params and k not in extra and k not in MODEL_RESERVED and k not in unused}
    given = {}
    for k, v in {**own, **extra}.items():
        if k in MODEL_RESERVED or k not in params:
            continue
        # (no model argument is a table: keys under one name nothing)
        expected = rules[k].requirement if k in rules else "a value"
        not_section = C.value_not_section(f"model.{k}", v, expected) if isinstance(v, dict) else None
        if not_section:
            problems.append(not_section)
        else:
            given[k] = v
    for problem in config_problems(models[name.lower()], given):  # (a relation names every key it involves)
        problems.append(Related(problem, *re.findall(r"(?<![\w.])model\.\w+", problem)))
    # The resolved config (a run's config.toml) records what the model is built with: the defaults of the
    # arguments not given too, so that a later default cannot change a re-run. Not those the data decides
    # (LeNet's in_channels) or the arguments given make unused, nor a None (TOML has none: an absent key means the same), nor in an ensemble
    # whose members change the model: this model's defaults would be unknown keys of another one (each
    # member's own config records its model's).
    if _members_change(out, "model.name"):
        return
    for k, default in signature_defaults(models[name.lower()]).items():
        if k not in extra and k not in MODEL_RESERVED and k not in unused and _plain(default):
            out["model"][k] = list(default) if isinstance(default, tuple) else default
    out["model"].update({k: v for k, v in own.items() if k in given})  # (a bad one is a problem already)
