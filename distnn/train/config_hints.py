"""The "did you mean ...?" for a misspelt config key: the closest known name, or none when nothing is close.

Names are compared whole, without their section (a shared ``train.`` made 'train.timeout' look like
'train.epochs'); a key of the same section one typo away wins, then the same name in another section
(train.lr -> optimizer.lr), then looser matches.
"""
from __future__ import annotations

import difflib

from .config_schema import ALIASES, TABLES


def typo_distance(a: str, b: str) -> int:
    """Edits from ``a`` to ``b`` (insert, delete or replace a letter, or swap two neighbours: the
    optimal string alignment distance), ignoring case: how many typos apart two names are."""
    a, b = a.lower(), b.lower()
    before, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], before[j - 2] + 1)
        before, prev = prev, cur
    return prev[-1]


def closest_name(name: str, names, one_typo: bool = False) -> str | None:
    """The one of ``names`` that ``name`` is most likely a misspelling of, or None when none is close.

    Close: one typo away (two for names of 5 letters or more), one the start of the other (``hidden``,
    ``hidden_sizes``), or mostly the same letters (difflib's ratio >= 0.75); ``one_typo``: one typo away
    only. Names are compared whole: a dotted key's section is no part of them (a shared ``train.`` made
    'train.timeout' look like 'train.epochs')."""
    best = None
    for n in names:
        d = typo_distance(name, n)
        ratio = difflib.SequenceMatcher(None, name.lower(), n.lower()).ratio()
        short = min(len(name), len(n))
        prefix = short >= 4 and (n.lower().startswith(name.lower()) or name.lower().startswith(n.lower()))
        if d <= 1 or (not one_typo and ((d <= 2 and short >= 5) or prefix or ratio >= 0.75)):
            if best is None or (d, -ratio) < best[0]:
                best = ((d, -ratio), n)
    return best[1] if best else None


def suggest_key(path: str, candidates) -> str:
    """' (did you mean 'x'?)' for an unknown dotted key, or ''. ``candidates``: the known dotted keys and
    sections, in the order to prefer among equally close ones."""
    found = closest_key(path, candidates)
    if found is None:
        return ""
    if "." in path and "." not in found and found not in TABLES:
        # A bare 'name' for train.name reads as the very key written under [train]: say where it belongs.
        return f" (did you mean the top-level key '{found}'?)"
    return f" (did you mean '{found}'?)"


def closest_key(path: str, candidates) -> str | None:
    """The key or section of ``candidates`` that ``path`` most likely means (see :func:`suggest_key`)."""
    leaf = path.rsplit(".", 1)[-1]
    parent = path.rsplit(".", 1)[0] if "." in path else ""
    alias = ALIASES.get(leaf.lower())
    if alias and alias != path and (alias in candidates or alias in TABLES):
        return alias
    candidates = [c for c in dict.fromkeys(candidates) if c != path]
    by_leaf: dict[str, list] = {}
    for c in candidates:
        by_leaf.setdefault(c.rsplit(".", 1)[-1], []).append(c)
    siblings = {c.rsplit(".", 1)[-1]: c for c in candidates if (c.rsplit(".", 1)[0] if "." in c else "") == parent}
    # One typo of a key of the same section; else the same name in another section (train.lr -> optimizer.lr,
    # schedule.max_len -> model.max_len rather than schedule.max_lr); else a key of the same section a few
    # typos away; else one of another section (train.momentun -> optimizer.momentum).
    close = closest_name(leaf, siblings, one_typo=True)
    if close is not None:
        return siblings[close]
    same = next((cs for name, cs in by_leaf.items() if name.lower() == leaf.lower()), None)
    if same:
        return same[0]
    close = closest_name(leaf, siblings)
    if close is not None:
        return siblings[close]
    close = closest_name(leaf, by_leaf)
    return by_leaf[close][0] if close is not None else None
