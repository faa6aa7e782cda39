"""``torch.utils``'s counterparts: :mod:`.checkpoint` (activation checkpointing) and :mod:`.data` (the data
loading names of ``torch.utils.data``, from :mod:`distnn.data`). They load on first use, so
``import distnn.utils`` stays light."""

_SUBMODULES = ("checkpoint", "data")


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"distnn.utils.{name}")
    raise AttributeError(f"module 'distnn.utils' has no attribute {name!r}")


__all__ = list(_SUBMODULES)
