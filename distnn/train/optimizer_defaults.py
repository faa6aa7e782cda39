"""The optimizer's own defaults of ``optimizer.lr``, ``optimizer.momentum``, ``optimizer.weight_decay`` and
``optimizer.eps``.

Left unset, each is the chosen optimizer's constructor default (torch.optim's where PyTorch has the
optimizer; see :data:`~distnn.train.config_schema.OPTIMIZER_OWN_DEFAULTS`). :func:`resolve_optimizer_defaults`
fills them into a resolved config, which records them (``[defaults.optimizer.NAME]``); a run's config.toml
from before holds the one number every optimizer got then under ``[optimizer]``, and
:func:`drop_shared_defaults_not_taken` takes out those of them its optimizer never used.
"""
from __future__ import annotations

from .config_checks import OPTIMIZER_OPTIONS, _members_change
from .config_recorded_defaults import fill_own_defaults
from .config_schema import OPTIMIZER_OWN_DEFAULTS

__all__ = ["OPTIMIZER_CLASSES", "optimizer_takes", "optimizer_default", "optimizer_defaults_text",
           "resolve_optimizer_defaults", "drop_shared_defaults_not_taken"]

#: the class of distnn.optim each optimizer.name is (Job._build_optimizer builds it)
OPTIMIZER_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad",
                     "lars": "LARS", "lamb": "LAMB", "adamax": "Adamax", "nadam": "NAdam", "radam": "RAdam",
                     "adadelta": "Adadelta", "rprop": "Rprop", "asgd": "ASGD", "adafactor": "Adafactor"}


def optimizer_takes(name: str, key: str) -> bool:
    """Whether optimizer ``name`` takes [optimizer] key ``key`` (every optimizer takes the keys that
    OPTIMIZER_OPTIONS leaves out)."""
    return key not in OPTIMIZER_OPTIONS or name in OPTIMIZER_OPTIONS[key]


#: the default of a key whose argument an optimizer requires (LARS's lr): the config's one number of before
_REQUIRED_FALLBACK = {"lr": 0.01}


def optimizer_default(name: str, key: str):
    """The default of the argument ``key`` of optimizer ``name``'s constructor (None: it has none); where the
    constructor requires it, :data:`_REQUIRED_FALLBACK`'s."""
    import inspect

    from distnn import optim
    from distnn.optim.optimizer import required

    param = inspect.signature(getattr(optim, OPTIMIZER_CLASSES[name]).__init__).parameters.get(key)
    if param is None:
        return None
    if param.default is inspect.Parameter.empty or param.default is required:
        return _REQUIRED_FALLBACK.get(key)
    return param.default


def optimizer_defaults_text(key: str) -> str:
    """'sgd, rmsprop 0.0; lars 0.9': the optimizers that take ``key``, by their own default of it."""
    by_value: dict = {}
    for name in OPTIMIZER_CLASSES:
        if optimizer_takes(name, key):
            by_value.setdefault(optimizer_default(name, key), []).append(name)
    return "; ".join(f"{', '.join(names)} {value!r}" for value, names in by_value.items())


def resolve_optimizer_defaults(out: dict, problems: list, recorded=None):
    """The keys of OPTIMIZER_OWN_DEFAULTS that the config leaves unset and the chosen optimizer takes: its
    own default (the one a run's config.toml recorded for it, ``recorded[name]``, first; checked as a given
    value is). Not in an ensemble whose members change ``optimizer.name``: each member's config resolves its
    own (a member's config starts from the ensemble's resolved one)."""
    if out["optimizer"].get("name") not in OPTIMIZER_CLASSES or _members_change(out, "optimizer.name"):
        return
    fill_own_defaults(out, "optimizer", OPTIMIZER_OWN_DEFAULTS, optimizer_takes, optimizer_default, recorded,
                      problems)


#: the number every optimizer got before OPTIMIZER_OWN_DEFAULTS (the schema's default then)
_SHARED_DEFAULTS_BEFORE = {"momentum": 0.0, "eps": 1e-8}


def drop_shared_defaults_not_taken(raw: dict) -> None:
    """A run's config.toml from before the optimizer's own defaults holds ``momentum = 0.0`` and ``eps = 1e-8``
    under [optimizer] whatever the optimizer, also one that takes neither (adam's momentum, sgd's eps): the
    schema's defaults then, unused. They go, so that the record compares equal to its config resolved now
    (a resume's "config differs" warning; a finished ensemble member is not trained again). Kept where an
    ensemble member changes ``optimizer.name`` (the member's optimizer may take them)."""
    o = raw.get("optimizer")
    if not isinstance(o, dict) or o.get("name") not in OPTIMIZER_CLASSES or _members_change(raw, "optimizer.name"):
        return
    for k, before in _SHARED_DEFAULTS_BEFORE.items():
        if k in o and not optimizer_takes(o["name"], k) and o[k] == before and not isinstance(o[k], bool):
            del o[k]
