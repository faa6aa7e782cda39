"""The shape ops refuse bad sizes and dims as PyTorch does: the same error type (distnn's may be a subclass) and
PyTorch's first message line within distnn's, for ``reshape``/``reshape_as``/``view_as``, ``flatten``/``unflatten``
and ``nn.Flatten``/``nn.Unflatten``, ``expand``/``expand_as``/``broadcast_to``, ``squeeze``/``unsqueeze``,
``permute``/``transpose``/``movedim``, ``narrow``, ``split``/``chunk``; and where PyTorch accepts (the edges next
to each refusal: -1, empty tensors, 0-d tensors, a split size 0 of an empty dim), distnn gives the same shapes,
values and gradients. (Before, numpy's ValueErrors and AxisErrors came through, ``reshape(-2, 3)`` and
``transpose(0, 2)`` of a matrix were accepted, and ``split``/``chunk`` of an empty dim gave the wrong pieces.)"""
import numpy as np
import pytest

import distnn
import distnn.nn as dnn

torch = pytest.importorskip("torch")


_MADE = {torch: [], distnn: []}  # the leaves each case made, per library (for the gradients)


def _x(L, shape):
    a = np.arange(float(np.prod(shape))).reshape(shape)
    x = torch.tensor(a, requires_grad=True) if L is torch else distnn.Tensor(a, requires_grad=True)
    _MADE[L].append(x)
    return x


def _nn(L):
    return torch.nn if L is torch else dnn


# (name, f(L) -> a tensor or a sequence of tensors, or raises); L is torch or distnn
CASES = [
    # reshape and its neighbours: infer_size's refusals
    ("reshape two -1", lambda L: _x(L, (2, 3)).reshape(-1, -1)),
    ("reshape negative", lambda L: _x(L, (2, 3)).reshape(-2, 3)),
    ("reshape product", lambda L: _x(L, (2, 3)).reshape(4, 2)),
    ("reshape tuple product", lambda L: _x(L, (2, 3)).reshape((5,))),
    ("reshape empty -1", lambda L: _x(L, (0, 3)).reshape(0, -1)),
    ("reshape empty ok", lambda L: _x(L, (0, 3)).reshape(3, 0, 1)),
    ("reshape -1", lambda L: _x(L, (2, 3)).reshape(3, -1)),
    ("reshape 0-d", lambda L: _x(L, ()).reshape(1, -1)),
    ("top reshape product", lambda L: L.reshape(_x(L, (2, 3)), (4, 2))),
    ("top reshape negative", lambda L: L.reshape(_x(L, (2, 3)), (3, -3))),
    ("reshape_as", lambda L: _x(L, (2, 3)).reshape_as(_x(L, (4, 2)))),
    ("view_as", lambda L: _x(L, (2, 3)).view_as(_x(L, (4, 2)))),
    # flatten / unflatten
    ("flatten start after end", lambda L: _x(L, (2, 3, 4)).flatten(2, 0)),
    ("flatten end out", lambda L: _x(L, (2, 3, 4)).flatten(0, 3)),
    ("flatten start out", lambda L: _x(L, (2, 3, 4)).flatten(-4)),
    ("flatten 0-d", lambda L: _x(L, ()).flatten()),
    ("flatten 0-d dim 1", lambda L: _x(L, ()).flatten(1)),
    ("top flatten out", lambda L: L.flatten(_x(L, (2, 3)), 5)),
    ("nn.Flatten out", lambda L: _nn(L).Flatten(3)(_x(L, (2, 3)))),
    ("nn.Flatten 1-d", lambda L: _nn(L).Flatten()(_x(L, (3,)))),
    ("unflatten product", lambda L: _x(L, (2, 6)).unflatten(1, (4, 2))),
    ("unflatten dim out", lambda L: _x(L, (2, 6)).unflatten(2, (3, 2))),
    ("unflatten two -1", lambda L: _x(L, (2, 6)).unflatten(1, (-1, -1))),
    ("unflatten negative", lambda L: _x(L, (2, 6)).unflatten(1, (-2, -3))),
    ("unflatten no sizes", lambda L: _x(L, (2, 6)).unflatten(1, ())),
    ("unflatten -1 not dividing", lambda L: _x(L, (2, 6)).unflatten(1, (-1, 4))),
    ("unflatten 0 with -1", lambda L: _x(L, (2, 6)).unflatten(1, (0, -1))),
    ("unflatten empty ambiguous", lambda L: _x(L, (2, 0)).unflatten(1, (0, -1))),
    ("unflatten 0-d", lambda L: _x(L, ()).unflatten(0, (1,))),
    ("unflatten -1", lambda L: _x(L, (2, 6)).unflatten(-1, (3, -1))),
    ("nn.Unflatten product", lambda L: _nn(L).Unflatten(1, (4, 2))(_x(L, (2, 6)))),
    ("nn.Unflatten dim out", lambda L: _nn(L).Unflatten(2, (3, 2))(_x(L, (2, 6)))),
    ("nn.Unflatten two -1", lambda L: _nn(L).Unflatten(1, (-1, -1))(_x(L, (2, 6)))),
    # expand
    ("expand mismatch", lambda L: _x(L, (2, 3)).expand(2, 4)),
    ("expand fewer sizes", lambda L: _x(L, (2, 3)).expand(3)),
    ("expand -1 leading", lambda L: _x(L, (2, 3)).expand(-1, 2, 3)),
    ("expand negative", lambda L: _x(L, (1, 3)).expand(-2, 3)),
    ("expand -1 of a mismatch", lambda L: _x(L, (2, 3)).expand(-1, -2)),
    ("expand ok", lambda L: _x(L, (2, 1)).expand(4, -1, 3)),
    ("expand empty", lambda L: _x(L, (1, 3)).expand(0, 3)),
    ("expand_as", lambda L: _x(L, (2, 3)).expand_as(_x(L, (2, 4)))),
    ("broadcast_to mismatch", lambda L: L.broadcast_to(_x(L, (3, 2)), (3, 4))),
    # squeeze / unsqueeze
    ("squeeze out", lambda L: _x(L, (2, 1)).squeeze(2)),
    ("squeeze out negative", lambda L: _x(L, (2, 1)).squeeze(-3)),
    ("squeeze dims repeated", lambda L: _x(L, (2, 1)).squeeze((1, 1))),
    ("squeeze dims out", lambda L: _x(L, (2, 1)).squeeze((1, 5))),
    ("squeeze dims", lambda L: _x(L, (1, 2, 1)).squeeze((0, -1))),
    ("squeeze 0-d", lambda L: _x(L, ()).squeeze(0)),
    ("squeeze 0-d out", lambda L: _x(L, ()).squeeze(1)),
    ("unsqueeze out", lambda L: _x(L, (2, 1)).unsqueeze(3)),
    ("unsqueeze out negative", lambda L: _x(L, (2, 1)).unsqueeze(-4)),
    ("unsqueeze last", lambda L: _x(L, (2, 1)).unsqueeze(-1)),
    ("unsqueeze 0-d", lambda L: _x(L, ()).unsqueeze(-1)),
    ("unsqueeze 0-d out", lambda L: _x(L, ()).unsqueeze(1)),
    ("top unsqueeze out", lambda L: L.unsqueeze(_x(L, (2,)), 2)),
    # permute / transpose / movedim
    ("permute repeated", lambda L: _x(L, (2, 3, 4)).permute(0, 0, 1)),
    ("permute missing", lambda L: _x(L, (2, 3, 4)).permute(0, 1)),
    ("permute extra", lambda L: _x(L, (2, 3, 4)).permute(0, 1, 2, 3)),
    ("permute out", lambda L: _x(L, (2, 3, 4)).permute(0, 1, 3)),
    ("permute negative", lambda L: _x(L, (2, 3, 4)).permute(-1, 0, -2)),
    ("permute repeated negative", lambda L: _x(L, (2, 3)).permute(0, -2)),
    ("top permute repeated", lambda L: L.permute(_x(L, (2, 3, 4)), (0, 0, 1))),
    ("transpose out", lambda L: _x(L, (2, 3)).transpose(0, 2)),
    ("transpose out negative", lambda L: _x(L, (2, 3)).transpose(-3, 0)),
    ("transpose one dim", lambda L: _x(L, (2, 3)).transpose(0)),
    ("transpose 0-d", lambda L: _x(L, ()).transpose(0, -1)),
    ("transpose negative", lambda L: _x(L, (2, 3, 4)).transpose(-1, 0)),
    ("top transpose out", lambda L: L.transpose(_x(L, (2, 3)), 0, 2)),
    ("swapaxes out", lambda L: _x(L, (2, 3)).swapaxes(0, 2)),
    ("movedim out", lambda L: L.movedim(_x(L, (2, 3)), 0, 2)),
    ("movedim source repeated", lambda L: L.movedim(_x(L, (2, 3, 4)), (0, 0), (1, 2))),
    ("movedim destination repeated", lambda L: L.movedim(_x(L, (2, 3, 4)), (0, 1), (2, 2))),
    ("movedim lengths", lambda L: L.movedim(_x(L, (2, 3, 4)), (0, 1), (2,))),
    ("movedim method out", lambda L: _x(L, (2, 3, 4)).movedim(0, 3)),
    ("movedim", lambda L: _x(L, (2, 3, 4)).movedim((0, -1), (2, 0))),
    # narrow
    ("narrow start out", lambda L: _x(L, (2, 3)).narrow(1, 4, 1)),
    ("narrow start out negative", lambda L: _x(L, (2, 3)).narrow(1, -4, 1)),
    ("narrow length out", lambda L: _x(L, (2, 3)).narrow(1, 2, 2)),
    ("narrow length negative", lambda L: _x(L, (2, 3)).narrow(1, 0, -1)),
    ("narrow dim out", lambda L: _x(L, (2, 3)).narrow(2, 0, 1)),
    ("narrow 0-d", lambda L: _x(L, ()).narrow(0, 0, 1)),
    ("narrow at the end", lambda L: _x(L, (2, 3)).narrow(1, 3, 0)),
    ("narrow negative start", lambda L: _x(L, (2, 3)).narrow(1, -3, 3)),
    ("top narrow length out", lambda L: L.narrow(_x(L, (2, 3)), 1, 2, 2)),
    # split / chunk
    ("split 0", lambda L: _x(L, (4, 3)).split(0)),
    ("split negative", lambda L: _x(L, (4, 3)).split(-1)),
    ("split sizes sum", lambda L: _x(L, (4, 3)).split([1, 2])),
    ("split sizes negative", lambda L: _x(L, (4, 3)).split([5, -1])),
    ("split dim out", lambda L: _x(L, (4, 3)).split(2, 2)),
    ("split 0-d", lambda L: _x(L, ()).split(1)),
    ("split 0 of an empty dim", lambda L: _x(L, (0, 3)).split(0)),
    ("split 2 of an empty dim", lambda L: _x(L, (0, 3)).split(2)),
    ("split sizes with 0", lambda L: _x(L, (3,)).split([1, 2, 0])),
    ("split dim -1", lambda L: _x(L, (4, 5)).split(2, -1)),
    ("top split sizes sum", lambda L: L.split(_x(L, (4, 3)), [1, 2])),
    ("chunk 0", lambda L: _x(L, (4, 3)).chunk(0)),
    ("chunk negative", lambda L: _x(L, (4, 3)).chunk(-1)),
    ("chunk dim out", lambda L: _x(L, (4, 3)).chunk(2, 2)),
    ("chunk 0-d", lambda L: _x(L, ()).chunk(1)),
    ("chunk float", lambda L: _x(L, (4, 3)).chunk(2.0)),
    ("chunk of an empty dim", lambda L: _x(L, (0, 3)).chunk(2)),
    ("chunk fewer pieces", lambda L: _x(L, (5, 3)).chunk(4)),
    ("chunk dim -1", lambda L: _x(L, (2, 7)).chunk(3, -1)),
    ("top chunk 0", lambda L: L.chunk(_x(L, (4, 3)), 0)),
]


def _outcome(f, L):
    _MADE[L].clear()
    try:
        return f(L), None
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return None, e


@pytest.mark.parametrize("name,f", CASES, ids=[c[0] for c in CASES])
def test_shape_op_matches_torch(name, f):
    theirs, their_error = _outcome(f, torch)
    ours, our_error = _outcome(f, distnn)
    if their_error is not None:
        assert our_error is not None, f"PyTorch refuses ({their_error!r}), distnn gave {ours}"
        assert isinstance(our_error, type(their_error)), (type(their_error), repr(our_error))
        gist = str(their_error).splitlines()[0]
        gist = {  # (PyTorch names the tensor's C++ type; PyTorch's product overflows where distnn words it)
            "expand fewer sizes": "the number of sizes provided (1) must be greater or equal to the number of "
                                  "dimensions in the tensor (2)",
            "expand negative": "The expanded size of the tensor (-2)",
        }.get(name, gist)
        assert gist in str(our_error), (gist, str(our_error))
        return
    assert our_error is None, f"PyTorch gives {theirs}, distnn refuses: {our_error!r}"
    if not isinstance(theirs, (tuple, list)):
        theirs, ours = [theirs], [ours]
    assert [tuple(t.shape) for t in theirs] == [tuple(o.shape) for o in ours]
    for t, o in zip(theirs, ours):
        np.testing.assert_array_equal(o.detach().numpy(), t.detach().numpy())
    # the gradient through the op (each element of each piece weighted differently), as PyTorch's
    weights = [np.arange(1.0, 1.0 + t.numel()).reshape(tuple(t.shape)) for t in theirs]
    sum((t * torch.tensor(w)).sum() for t, w in zip(theirs, weights)).backward()
    sum((o * distnn.Tensor(w)).sum() for o, w in zip(ours, weights)).backward()
    for t, o in zip(_MADE[torch], _MADE[distnn]):
        np.testing.assert_array_equal(np.asarray(distnn.to_numpy(o.grad)), t.grad.numpy())
