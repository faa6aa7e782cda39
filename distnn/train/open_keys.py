"""``config-keys model.dropout`` / ``config-keys data.flatten``: the keys the schema does not list.

A ``model.X`` key is an argument of the chosen model, a ``data.X`` key an option
of the chosen dataset (see :data:`~distnn.train.config_schema.OPEN_TABLES`):
valid for some models (datasets), refused for the others. :func:`describe_open_key`
says which take it, with each one's default and allowed values, as the schema's
listing says them for its own keys.
"""
from __future__ import annotations

__all__ = ["describe_open_key", "open_key_names", "open_key_problem"]


def _by_class(names) -> dict:
    """``{model class: [registered names...]}`` for the registered ``names`` (a model's aliases name one
    class), in the order of the first name of each."""
    from distnn.models import registry

    out: dict = {}
    for n in names:
        out.setdefault(registry._MODELS[n], []).append(n)
    return out


def _value(v) -> str:
    from .inference import _toml_value

    return "(unset)" if v is None else _toml_value(list(v) if isinstance(v, tuple) else v)


def _model_lines(option: str) -> list | None:
    from distnn.models import registry
    from distnn.models.arguments import signature_defaults

    from .config_checks import model_arguments

    names = registry.available_models()
    takers = _by_class([m for m in names if option in (model_arguments(m) or ())])
    if not takers:
        return None
    lines = [f"model.{option}: an argument of the model, for these models (under [model], or --set "
             f"model.{option}=VALUE; the class's docstring says what it does):"]
    for cls, aliases in takers.items():
        table = getattr(cls, "arguments", None)
        rule = getattr(table, "rules", {}).get(option)
        default = signature_defaults(cls).get(option)
        only = getattr(table, "only_with", {}).get(option)
        used = f"; used only {only.when}, refused otherwise" if only else ""
        lines.append(f"  {', '.join(aliases):<34} default {_value(default):<14} "
                     f"{rule.requirement if rule else 'any value':<32} (distnn.models.{cls.__name__}{used})")
    others = [", ".join(a) for c, a in _by_class(names).items() if c not in takers]
    if others:
        lines.append(f"  other models ({'; '.join(others)}) do not take it: a config of one of them that gives "
                     "it is refused")
    return lines


def _data_lines(option: str) -> list | None:
    from distnn.data.datasets import list_dataset_options, list_datasets

    names = [d for d, _ in list_datasets()]
    takers = {d: list_dataset_options(d)[option] for d in names if option in list_dataset_options(d)}
    if not takers:
        return None
    lines = [f"data.{option}: an option of the dataset, for these datasets (under [data], or --set "
             f"data.{option}=VALUE; 'python -m distnn datasets' describes them):"]
    lines += [f"  {d:<34} default {'(required)' if option == 'path' and v is None else _value(v)}"
              for d, v in takers.items()]
    lines.append(f"  other datasets ({', '.join(d for d in names if d not in takers)}) do not take it: a config "
                 "of one of them that gives it is refused")
    return lines


def describe_open_key(name: str) -> str | None:
    """What ``model.X`` or ``data.X`` is, as text: which models (datasets) take it, each one's default
    and allowed values, and that the others refuse it. None when no model (dataset) takes it."""
    section, _, option = name.partition(".")
    if not option or "." in option:
        return None
    lines = _model_lines(option) if section == "model" else _data_lines(option) if section == "data" else None
    return "\n".join(lines) if lines else None


def open_key_problem(name: str) -> str:
    """Why ``model.X`` is no key a config may give though some model takes X (the trainer sets it from the
    data: LeNet's ``in_channels``), in words; "" for any other name."""
    section, _, option = name.partition(".")
    if section != "model" or not option:
        return ""
    from distnn.models import registry

    from .config_checks import data_decided_arguments

    decided = _by_class([m for m in registry.available_models() if option in data_decided_arguments(m)])
    if not decided:
        return ""
    return (f"'{name}' is an argument of {', '.join(f'distnn.models.{c.__name__}' for c in decided)} that the "
            "trainer sets from the data (its input shape): a config cannot give it")


def open_key_names() -> list:
    """Every ``model.X`` that some model takes and every ``data.X`` that some dataset takes (for the
    "did you mean" of a misspelt one: ``model.nrom``)."""
    from distnn.data.datasets import list_dataset_options, list_datasets
    from distnn.models import registry

    from .config_checks import model_arguments

    keys = [f"model.{a}" for m in registry.available_models() for a in model_arguments(m) or ()]
    keys += [f"data.{o}" for d, _ in list_datasets() for o in list_dataset_options(d)]
    return list(dict.fromkeys(keys))
