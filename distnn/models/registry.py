"""``build_model(name, **kwargs)``: the model zoo by name, for configs and saved runs.

Every zoo model accepts ``num_classes`` and ``input_shape`` (one sample's shape,
without the batch axis), which the trainer passes from the dataset, besides its
own arguments; so a config names a model and only the arguments that matter.
"""
from __future__ import annotations

_MODELS: dict = {}


def register_model(*names):
    """Class decorator: make the model buildable as ``build_model(name, ...)`` under each name."""

    def deco(cls):
        for n in names:
            _MODELS[n.lower()] = cls
        return cls

    return deco


def available_models() -> list:
    return sorted(_MODELS)


def build_model(name: str, **kwargs):
    """Instantiate the zoo model registered as ``name`` (case-insensitive) with ``kwargs``."""
    key = str(name).lower()
    if key not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    cls = _MODELS[key]
    try:
        return cls(**kwargs)
    except TypeError as e:  # a misspelled or unsupported argument: say which model and what it takes
        import inspect

        params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        raise TypeError(f"build_model({name!r}): {e}; {cls.__name__} takes {params}") from None
