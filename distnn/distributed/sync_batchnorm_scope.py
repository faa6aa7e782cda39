"""Which SyncBatchNorm layers a :class:`~.data_parallel.DataParallel`'s failure handling covers, and the set-ups
it cannot cover, refused where they are made rather than left to hang or mismatch when a step fails.

A failing rank's exchange ends the SyncBatchNorm rounds of its model's communicators and of the wrapper's own
communicator (:mod:`.sync_batchnorm_closing`); a round that ends elsewhere sends the rank through the step's
exchange of "the" DataParallel over the round's communicator. Three set-ups break that:

* several live DataParallels on one communicator, with SyncBatchNorm layers on it (in a model or outside):
  their layers share one SyncBatchNorm communicator, and a round ended by one wrapper's failing step would
  send a rank through another wrapper's exchange (a different collective: a hang). The second wrapper is
  refused when it is built (every rank builds it: every rank raises): "give each DataParallel its own
  communicator (``comm.split(0)``), and build its SyncBatchNorm layers on it". Wrappers without SyncBatchNorm
  on their communicator (a GAN's two models) are not affected;
* a SyncBatchNorm layer used in training outside every wrapped model on a communicator no DataParallel is
  built on, while a DataParallel is alive on that rank: no wrapper's exchange ends its rounds, so a rank
  failing in a step would leave the others waiting in them. Refused at the layer's training forward, before
  its collective (every rank runs the same forward: every rank raises);
* a layer outside every model on a communicator with several live wrappers: refused there too (which step's
  exchange ends its rounds is ambiguous).

A deep copy (or an unpickled copy) of a SyncBatchNorm registers itself as one built on that rank does
(``SyncBatchNorm.__setstate__``), so it is covered like any other. The check costs a layer one dictionary
look-up per training forward once it has passed (again after a wrapper is built).
"""
from __future__ import annotations

import gc
import weakref

_in_models = weakref.WeakSet()            # SyncBatchNorm layers inside some DataParallel's model
_built = weakref.WeakKeyDictionary()      # DataParallel -> the simulated rank's communicator it was built on
_passed = weakref.WeakKeyDictionary()     # layer -> the wrappers' version it was checked at
_version = [0]
HOW = ("give each DataParallel its own communicator (comm.split(0)) and build the SyncBatchNorm layers it steps "
       "on that communicator, or put the layer inside the wrapped model")


def _live_wrappers(base=None) -> list:
    """This rank's live DataParallels (``base``: those built over ``base``), after collecting garbage when some
    are found (a dropped wrapper still in a reference cycle must not count: every rank collects alike)."""
    from .inprocess_comm import current_simulated_comm

    sim = current_simulated_comm()

    def live():
        return [dp for dp, built_on in list(_built.items())
                if built_on is sim and (base is None or dp.comm is base) and dp._hooks]

    if live():  # (the list let go of before collecting: it would keep them alive)
        gc.collect()
        return live()
    return []


def refuse_second_wrapper(dp) -> None:
    """``dp`` is being built (before its collectives): refuse a second live wrapper on its communicator when
    SyncBatchNorm layers are on it (in either model, or outside them)."""
    from .sync_batchnorm import SyncBatchNorm
    from .sync_batchnorm_closing import _layers_on

    others = _live_wrappers(dp.comm)
    if others and (any(isinstance(m, SyncBatchNorm) for m in dp.module.modules()) or _layers_on(dp.comm)
                   or any(o._bn_comms for o in others)):
        raise ValueError("DataParallel: another DataParallel is alive on this communicator and SyncBatchNorm layers "
                         "communicate over it; a failing step of one would end the other's SyncBatchNorm rounds "
                         f"(a hang). To wrap two models, {HOW}")


def note_wrapper(dp) -> None:
    """``dp`` is built: its model's SyncBatchNorm layers are covered, and it counts as a live wrapper."""
    from .inprocess_comm import current_simulated_comm
    from .sync_batchnorm import SyncBatchNorm

    for m in dp.module.modules():
        if isinstance(m, SyncBatchNorm):
            _in_models.add(m)
    _built[dp] = current_simulated_comm()
    _version[0] += 1


def check_layer(layer, base) -> None:
    """``layer`` (a SyncBatchNorm training over ``base``, more than one rank) begins a forward: refuse the
    set-ups no DataParallel covers (see the module docstring)."""
    if _passed.get(layer) == _version[0]:
        return
    if layer not in _in_models:
        on_base = _live_wrappers(base)
        if len(on_base) > 1:
            raise ValueError(f"{layer.where()}: a SyncBatchNorm outside every DataParallel's model, on a communicator "
                             f"that {len(on_base)} live DataParallels share: which step's failure ends its "
                             f"collectives is ambiguous. {HOW[0].upper() + HOW[1:]}")
        if not on_base and _live_wrappers():
            raise ValueError(f"{layer.where()}: a SyncBatchNorm outside the DataParallel's model, on a communicator no "
                             "DataParallel is built on: a rank whose step fails could not end its collectives (the "
                             "others would wait in them). Build it on the DataParallel's communicator (comm=dp.comm) "
                             "or put it inside the wrapped model")
    _passed[layer] = _version[0]
