"""The validated config (:class:`Config`: nested dicts with attribute access) and its error (:class:`ConfigError`).

Both are importable from :mod:`distnn.train.config`, whose name they carry (pickles and tracebacks say
``distnn.train.config.ConfigError`` as before this module was split out of it).
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import re

from .config_origins import origins_tag
from .config_values import _get_path


class ConfigWarning(UserWarning):
    """A config that loads but sets something without effect (a setting of a feature that is off, e.g.
    ``early_stopping.patience`` while ``early_stopping.enabled = false``). A category of its own, as
    Lightning's ``PossibleUserWarning``, so that a caller can silence these alone:
    ``warnings.filterwarnings("ignore", category=ConfigWarning)``, or on the command line
    ``-W ignore::distnn.train.ConfigWarning``."""


#: set while a config is loaded only to look at it (:func:`quiet_config_warnings`); per thread (a simulated
#: rank's own), unlike ``warnings.catch_warnings``, which changes every thread's filters
_QUIET = contextvars.ContextVar("distnn_config_warnings_quiet", default=False)


@contextlib.contextmanager
def quiet_config_warnings(quiet: bool = True):
    """Within it (when ``quiet``), loading a config says none of its ConfigWarnings: a job loads its config
    more than once (a look whether it is an ensemble, ``train --check``'s look at its data path, a simulated
    rank other than 0), and only the load that sets the job up says them: once, whatever the warning
    filters (``-W always`` included)."""
    token = _QUIET.set(bool(quiet) or _QUIET.get())
    try:
        yield
    finally:
        _QUIET.reset(token)


def config_warnings_on() -> bool:
    """Whether a config loaded here says its ConfigWarnings (not inside :func:`quiet_config_warnings`)."""
    return not _QUIET.get()


class ConfigError(ValueError):
    """An invalid config: every problem, one per line, each naming its dotted key."""

    def __init__(self, problems, source: str | None = None):
        problems = [problems] if isinstance(problems, str) else list(problems)
        self.problems = problems
        self.source = source
        where = f"config {source}: " if source else ""
        if len(problems) == 1:
            msg = where + problems[0]
        else:
            msg = f"{where}{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(msg)


class Config(dict):
    """A validated config: nested dicts with attribute access (``cfg.optimizer.lr``).

    ``cfg.get_path("optimizer.lr")`` reads a dotted key; ``cfg.to_dict()`` is a
    plain nested dict; ``cfg.source`` tells where it came from, ``cfg.origins``
    where each key did (:data:`SET_BY_OVERRIDE`, :data:`FROM_FILE`, ...; see
    :meth:`origins_tag`).
    """

    def __init__(self, data=(), source: str = "<dict>", origins: dict | None = None):
        super().__init__()
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "origins", dict(origins or {}))
        for k, v in dict(data).items():
            self[k] = Config(v, source) if isinstance(v, dict) else v

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name, value):
        self[name] = value

    def __deepcopy__(self, memo):
        return Config(copy.deepcopy(self.to_dict(), memo), self.source, self.origins)

    def origins_tag(self, keys) -> str:
        """' (set by --set)' when every one of ``keys`` was set by --set; when only some were, where each
        came from, those first: ' (data.val_fraction set by --set, data.test_fraction from the config
        file)'; '' when none was (a problem of the config file's own says nothing of it, as ever). Keys
        whose origin is not known (an ensemble member's own values) are left out."""
        return origins_tag(self.origins, keys)

    def tag_message(self, message: str) -> str:
        """``message`` with :meth:`origins_tag` of the config keys it names (an error raised by code that
        knows nothing of --set, e.g. the trainer's batch-size checks)."""
        return message + self.origins_tag(self.named_keys(message))

    def named_keys(self, message: str) -> list:
        """The config keys ``message`` names (whole dotted keys)."""
        return [k for k in self.origins if re.search(rf"(?<![\w.]){re.escape(k)}(?![\w.])", message)]

    def get_path(self, dotted: str, default=None):
        return _get_path(self, dotted, default)

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Config) else copy.deepcopy(v) for k, v in self.items()}

    def to_toml(self) -> str:
        from .config_record import dump_config  # (config_record builds on this module)

        return dump_config(self)


# (the public path of both: distnn.train.config, as before the split)
ConfigError.__module__ = Config.__module__ = "distnn.train.config"
