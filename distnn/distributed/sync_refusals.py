"""Refusals of :class:`~.data_parallel.DataParallel`'s synchronizing backward, raised on every rank together.

Some checks of a synchronizing backward can fail on one rank only: a gradient a dense bucket cannot take
(a sparse one, from ``F.embedding(..., sparse=True)`` on a parameter that is no sparse layer's weight; one of
another dtype than when the wrapper was built), or a rank that knows no sample count. Raising there would
leave the other ranks waiting in the step's collectives for a rank that has left them (until the collective
timeout under mpiexec). So the rank notes the problem (:func:`note`), sends zeros in place of what it
refuses, and goes through the step's collectives as usual.

The step meta, which every synchronization sums over the ranks anyway (in the last bucket's allreduce, or
its own), carries one number more: how many ranks noted a problem. Every rank receives the same sum, so when
it is not zero every rank gathers every rank's notes (one ``allgather_object``, made only then) and raises
the same error, naming each problem and the ranks that found it (:func:`agreed_error`), with every gradient
of the step dropped (None: zeros stood in for the refused ones). A step with nothing wrong pays one number
of the meta and no collective.

The sparse gradients' own refusals travel in their exchange's table (:mod:`.sparse_sync`) and join the
same error, and so does an exception that user code raised in a rank's synchronizing backward (a hook, a
custom Function's backward: :mod:`.sync_failures`).
"""
from __future__ import annotations

import builtins

WHERE = "{where}"  # where a note's text names the ranks that found it


def note(notes: list, error: type, text: str, advice: str) -> None:
    """Note a refusal found on this rank: ``error``, the type to raise (a built-in exception type: every rank
    raises one, see :func:`raisable`); ``text``, the problem, with
    :data:`WHERE` where the ranks that found it go ("on rank 1", "on ranks 0, 2"); ``advice``, the remedy (a
    sentence, said once however many parameters need it)."""
    notes.append((error.__name__, text, advice))


def on_ranks(ranks) -> str:
    """'on rank 1' or 'on ranks 0, 2'."""
    return f"on rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))}"


def raisable(error: type) -> type:
    """``error`` when every rank can raise it from a message alone (a built-in exception type), else
    RuntimeError."""
    return error if getattr(builtins, error.__name__, None) is error and issubclass(error, Exception) else RuntimeError


def agreed_error(every_notes, also, rank: int) -> Exception:
    """The error every rank raises: from every rank's notes (``every_notes[r]``, gathered when the step meta
    said some rank noted one, else empty) and ``also`` (messages that every rank holds alike already: the
    sparse exchange's refusals). Its type is that of the lowest rank's first note (RuntimeError when only
    ``also`` refuses); ``report`` is True on rank 0 (the CLI's protocol for agreed errors: one rank prints it)."""
    found = {}  # (type, text, advice): the ranks that noted it, in the order of the lowest rank's notes
    for r, mine in enumerate(every_notes):
        for entry in mine:
            found.setdefault(tuple(entry), []).append(r)
    problems = [text.replace(WHERE, on_ranks(ranks)) for (_, text, _), ranks in found.items()] + list(also)
    advice = list(dict.fromkeys(advice for _, _, advice in found))  # (each once, in order)
    error = getattr(builtins, next(iter(found))[0]) if found else RuntimeError
    message = "DataParallel: " + "; ".join(problems) + "".join(f". {a}" for a in advice)
    try:
        exc = error(message)
    except TypeError:  # (a built-in type that needs more than a message: UnicodeDecodeError)
        exc = RuntimeError(message)
    exc.report = rank == 0
    exc.noted_ranks = sorted({r for r, mine in enumerate(every_notes) if mine})  # (who refused: who waited not)
    return exc


def raise_unused(described) -> None:
    """The error of ``find_unused_parameters=False``; ``described``: "'name' (no gradient on k of N ranks)"."""
    raise RuntimeError(
        "DataParallel(find_unused_parameters=False): parameters received no gradient in this backward: "
        + ", ".join(described) + ". Make every parameter take part in the loss, or pass "
        "find_unused_parameters=True to treat missing gradients as zeros.")
