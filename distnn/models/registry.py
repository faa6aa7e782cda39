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


def build_model(name: str, init: str = "default", **kwargs):
    """Instantiate the zoo model registered as ``name`` (case-insensitive) with ``kwargs``.

    ``init`` names the initialisation scheme of its Linear and Conv layers
    (:mod:`distnn.nn.init_schemes`: "default", "kaiming_uniform", "kaiming_normal",
    "xavier_uniform", "xavier_normal"; biases zero), drawn after the model is built
    from its ``generator`` argument or distnn's generator.
    """
    from distnn.nn.init_schemes import check_scheme, init_model_

    key = str(name).lower()
    if key not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    check_scheme(init)
    cls = _MODELS[key]
    try:
        model = cls(**kwargs)
    except TypeError as e:  # a misspelled or unsupported argument: say which model and what it takes
        import inspect

        params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        raise TypeError(f"build_model({name!r}): {e}; {cls.__name__} takes {params}") from None
    return init_model_(model, init, kwargs.get("generator"))
