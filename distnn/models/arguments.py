"""Checks of the zoo models' keyword arguments, shared by the models and the config validation.

Each zoo model declares its arguments' rules once, as an :class:`Arguments`
table (class attribute ``arguments``). The model checks its own values before
building anything::

    MLP(hidden_sizes=[1.9])  ->  ValueError: MLP: hidden_sizes must be a list of positive integers, got [1.9]

and the config validation (``distnn.train.config``) checks the ``[model]``
keys of a config against the same table before a run starts, with each key's
dotted name: ``model.hidden_sizes must be a list of positive integers, got [1.9]``.

Values must already have the right type: a float is not silently truncated to
an int (``int(1.9)`` would build a 1-unit layer), a string is not a list.
Arguments the trainer fills from the data (``num_classes``, ``input_shape``)
are not listed: the models check those themselves.
"""
from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Rule:
    """One argument's rule: ``test(value) -> bool`` and what it requires, in words."""

    requirement: str
    test: Callable


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _maybe(rule: Rule, optional: bool) -> Rule:
    if not optional:
        return rule
    return Rule(rule.requirement + " (or None)", lambda v: v is None or rule.test(v))


def integer(minimum: int | None = 1, optional: bool = False) -> Rule:
    """An integer >= ``minimum`` (None: any integer); ``optional``: or None."""
    words = {1: "a positive integer", 0: "an integer >= 0", None: "an integer"}.get(minimum,
                                                                                 f"an integer >= {minimum}")
    return _maybe(Rule(words, lambda v: _is_int(v) and (minimum is None or v >= minimum)), optional)


def integers(min_length: int = 1, length: int | None = None, optional: bool = False) -> Rule:
    """A list (or tuple) of positive integers, of exactly ``length`` or at least ``min_length`` entries."""
    if length is not None:
        words = f"a list of {length} positive integers"
    elif min_length > 1:
        words = f"a list of at least {min_length} positive integers"
    else:
        words = "a list of positive integers" + (" (at least one)" if min_length == 1 else "")

    def test(v):
        if not isinstance(v, (list, tuple)) or not all(_is_int(s) and s >= 1 for s in v):
            return False
        return len(v) == length if length is not None else len(v) >= min_length

    return _maybe(Rule(words, test), optional)


def integer_or_pair(optional: bool = False) -> Rule:
    """A positive integer, or a list of two (height, width)."""
    pair = integers(length=2)
    return _maybe(Rule("a positive integer or a list of 2 positive integers",
                       lambda v: (_is_int(v) and v >= 1) or pair.test(v)), optional)


def probability() -> Rule:
    """A dropout-like probability in [0, 1) (1 would drop everything)."""
    return Rule("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1)


def choice(*options) -> Rule:
    """One of ``options`` (None may be one of them)."""
    words = "one of " + ", ".join("None" if o is None else repr(o) for o in options)
    return Rule(words, lambda v: any(v is o if o is None else (isinstance(v, str) and v == o) for o in options))


def boolean() -> Rule:
    """True or False (not 0/1: a config's ``= 1`` is a typo more often than a choice)."""
    return Rule("true or false", lambda v: isinstance(v, bool))


@dataclass(frozen=True)
class OnlyWith:
    """When a model uses an argument: only while ``test(value of other)`` holds (``when`` says so in words,
    "with arch = 'lstm'"). ``alternative``: the argument and ``other`` are two ways to give one thing (MLP's
    ``hidden_sizes`` or ``sizes``; see :func:`instead_of`), so giving both is a conflict to the model itself too,
    and a --set of either replaces the config file's other."""

    other: str
    test: Callable
    when: str
    alternative: bool = False


def instead_of(other: str) -> OnlyWith:
    """An argument the model uses only while ``other`` is None: the two are alternatives (MLP's
    ``hidden_sizes`` and ``sizes``, which lists the hidden layers too)."""
    return OnlyWith(other, lambda v: v is None, f"without {other}", alternative=True)


class Arguments:
    """A model's argument rules, plus relations between arguments.

    ``rules``: ``{name: Rule}``. ``relations``: functions ``f(values, q)`` that
    get every argument's value (given or default) and ``q(name)``, the name as
    the message should spell it; they return a problem (e.g. ``f"{q('nhead')}
    ({values['nhead']}) must divide {q('d_model')} ..."``) or None. Relations
    run only when every rule holds. ``from_data``: arguments that the data's
    ``input_shape`` decides whenever it is given (as the trainer always gives
    it), so that their defaults are not what a run uses: a resolved config
    does not record them. ``only_with``: ``{argument: OnlyWith}``, an argument
    the model uses only while another's value says so (CharLM's ``hidden_size``
    with ``arch = "lstm"``; MLP's ``hidden_sizes`` without ``sizes``, see
    :func:`instead_of`): a config that gives it otherwise is refused
    (:meth:`ignored`), and its default is not recorded then (:meth:`unused`);
    the model refuses one given off its default (:meth:`check`'s ``defaults``).
    """

    def __init__(self, rules: dict, relations=(), from_data=(), only_with=None):
        self.rules = dict(rules)
        self.relations = tuple(relations)
        self.from_data = tuple(from_data)
        self.only_with = dict(only_with or {})

    def unused(self, given, defaults: dict | None = None) -> set:
        """The arguments whose defaults a model given the arguments ``given`` (``defaults`` filling the
        others) does not use."""
        merged = {**(defaults or {}), **given}
        return {*self.from_data, *(k for k, o in self.only_with.items() if not o.test(merged.get(o.other)))}

    def ignored(self, given: dict, defaults: dict | None = None, prefix: str = "model.") -> dict:
        """``{argument: problem}`` for each argument of ``given`` that the model would ignore beside the
        others (``defaults`` filling them)."""
        merged = {**(defaults or {}), **given}
        out = {}
        for k, o in self.only_with.items():
            if k not in given or o.test(merged.get(o.other)):
                continue
            a, b = prefix + k, prefix + o.other
            if o.alternative:
                out[k] = f"{b} and {a} are both given, but {a} is ignored when {b} is: give one of them"
            else:
                out[k] = (f"{a} is ignored with {b} = {merged.get(o.other)!r}: the model uses it only {o.when}; "
                          f"remove it (or set {b})")
        return out

    def drop_ignored(self, values: dict, defaults: dict | None = None) -> None:
        """Delete from ``values`` each argument the model ignores beside the others (``defaults`` filling
        them): old records, whose model was built without it (saved before a config or the model refused one)."""
        for k in self.ignored(values, defaults):
            del values[k]

    def problems(self, values: dict, prefix: str = "", defaults: dict | None = None) -> list:
        """Every problem with ``values``, each naming ``prefix + argument``; ``defaults`` fill unset ones."""
        def q(name):
            return prefix + name

        out = [f"{q(k)} must be {self.rules[k].requirement}, got {v!r}"
               for k, v in values.items() if k in self.rules and not self.rules[k].test(v)]
        # Alternatives given both (only the values given: a default of the unused one is no conflict; the
        # model passes an alternative only when its caller gave it, so this holds for the model too).
        out += [p for k, p in self.ignored(values, prefix=prefix).items() if self.only_with[k].alternative]
        if out:
            return out
        merged = {**(defaults or {}), **values}
        return [p for p in (rel(merged, q) for rel in self.relations) if p]

    def check(self, who: str, *, defaults: dict | None = None, **values) -> None:
        """Raise ``ValueError("who: ...")`` listing every problem of ``values`` (the model's arguments; an
        alternative (:func:`instead_of`) only when the caller gave it, not its default).

        ``defaults``: the model's signature defaults (:func:`signature_defaults`). With them, an argument off
        its default that the others make the model ignore is a problem too, as a config's is
        (``CharLM(arch="lstm", nhead=8)``: nhead sizes the transformer alone). The model gets every argument,
        given or not, so one at its default counts as not given: the defaults never trigger it."""
        found = self.problems(values)
        if not found and defaults is not None:
            given = {k: v for k, v in values.items() if k not in defaults or not _same(v, defaults[k])}
            found = [p for k, p in self.ignored(given, {**defaults, **values}, prefix="").items()
                     if not self.only_with[k].alternative]  # (alternatives: problems() says so already)
        if found:
            raise ValueError(f"{who}: " + "; ".join(found))


def _same(value, default) -> bool:
    """Whether ``value`` is ``default`` as a caller would write it (``True`` is not the default 1)."""
    if value is default:
        return True
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # (an array's ==: not a default of any zoo model)
        return False


def arguments_of(name) -> Arguments | None:
    """The :class:`Arguments` table of registered model ``name`` (any case), or None (unknown, or none)."""
    from . import registry

    table = getattr(registry._MODELS.get(str(name).lower()), "arguments", None)
    return table if isinstance(table, Arguments) else None


def signature_defaults(cls) -> dict:
    """``{argument: default}`` of ``cls.__init__`` (arguments without a default are left out)."""
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self" and p.default is not inspect.Parameter.empty}


def config_problems(cls, values: dict, prefix: str = "model.") -> list:
    """Problems of a config's model arguments ``values`` for zoo class ``cls`` ([] if it declares no rules).

    Unset arguments take ``cls``'s defaults, so a relation such as "nhead divides
    d_model" is checked even when the config sets only one of the two.
    """
    table = getattr(cls, "arguments", None)
    if not isinstance(table, Arguments):
        return []
    return table.problems(values, prefix, signature_defaults(cls))


def transformer_stack() -> dict:
    """The rules of a TransformerEncoder stack's arguments, shared by the models that build one."""
    return {"d_model": integer(), "nhead": integer(), "num_layers": integer(), "dim_feedforward": integer(),
            "dropout": probability(), "max_len": integer(optional=True)}


def tokens_or_features(*token_only: str) -> dict:
    """``only_with`` of a sequence model that reads token ids (``vocab_size`` given: an embedding) or features
    (``input_size``): ``input_size`` is ignored beside ``vocab_size``, and ``token_only`` (the embedding's
    ``embedding_dim``, ``padding_idx``) without it."""
    return {"input_size": OnlyWith("vocab_size", lambda v: v is None, "for feature inputs, without vocab_size"),
            **{k: OnlyWith("vocab_size", lambda v: v is not None, "for token inputs, with vocab_size")
               for k in token_only}}


def heads_divide_width(width: str = "d_model", heads: str = "nhead", when=None):
    """Relation: ``heads`` divides ``width`` (attention splits the width into equal heads)."""
    def rel(v, q):
        if when is not None and not when(v):
            return None
        if v[width] % v[heads]:
            return (f"{q(heads)} ({v[heads]}) must divide {q(width)} ({v[width]}): every attention head "
                    f"takes {q(width)} / {q(heads)} features")
        return None

    return rel


def same_length(a: str, b: str, why: str):
    """Relation: the lists ``a`` and ``b`` have as many entries (``why`` says what pairs them)."""
    def rel(v, q):
        if len(v[a]) == len(v[b]):
            return None
        return f"{q(a)} {list(v[a])} and {q(b)} {list(v[b])} must have the same length ({why})"

    return rel


def index_in_vocabulary(index: str = "padding_idx", vocab: str = "vocab_size"):
    """Relation: a token index (e.g. ``padding_idx``) lies in ``[-vocab_size, vocab_size)`` when both are set."""
    def rel(v, q):
        i, n = v.get(index), v.get(vocab)
        if i is None or n is None or -n <= i < n:
            return None
        return f"{q(index)} ({i}) must be in [-{n}, {n}) for {q(vocab)} = {n}"

    return rel
