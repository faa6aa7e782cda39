"""``torch.func.vmap`` (also ``distnn.vmap``): map a function over a dimension of its inputs.

torch vectorizes with per-op batching rules. distnn's vmap is a loop: it calls ``func`` once per sample (the
inputs with the mapped dimension selected out) and stacks the results along ``out_dims``. The results are
exactly those of calling ``func`` per sample (so torch's, for functions torch can batch), and every distnn op
and transform works inside it (``vmap(grad(f))``, ``vmap(jacrev(f))``, nested vmaps); the speed is that of the
loop, not of a vectorized kernel. Selecting and stacking are recorded ops, so gradients flow through vmap.
"""
from __future__ import annotations

import functools

from distnn.autograd.tensor import Tensor

from . import _pytree
from .randomness import SampleDraws, check_randomness


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """``torch.func.vmap``: a function that maps ``func`` over dimension ``in_dims`` of its positional inputs.

    ``in_dims``: an int (every Tensor of every argument mapped along that dimension) or a tuple with one entry
    per positional argument, each an int, None (not mapped) or a pytree matching that argument's nesting.
    Keyword arguments are not mapped. All mapped dimensions must have the same size. ``out_dims``: where the
    mapped dimension goes in each output (an int, a pytree of ints matching the output, or None for an output
    that does not depend on the mapped inputs, returned once).

    ``randomness``: ``"error"`` (a random op in ``func`` is refused), ``"different"`` (each sample draws its
    own numbers) or ``"same"`` (every sample gets the same numbers), see :mod:`.randomness`. ``chunk_size``
    is accepted as torch's (the loop runs one sample at a time anyway). See the module docstring: a loop over
    the samples, exact, not vectorized.
    """
    check_randomness(randomness)
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    name = getattr(func, "__name__", repr(func))

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        leaves, spec, dims, size = _mapped_inputs(name, in_dims, args)
        draws = SampleDraws(randomness)
        results = []
        for b in range(size):
            sample = [x if d is None else x.select(d, b) for x, d in zip(leaves, dims)]
            with draws.sample():
                results.append(func(*_pytree.unflatten(sample, spec), **kwargs))
        return _stacked(name, out_dims, results)

    return wrapped


def _mapped_inputs(name, in_dims, args):
    """(the input leaves, their spec, the mapped dimension of each (None: not mapped), the batch size)."""
    where = f"vmap({name}, in_dims={in_dims}, ...)(<inputs>)"
    if not args:
        raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are trying "
                         "to vmap over a function with no inputs. The latter is unsupported.")
    if isinstance(in_dims, bool) or not isinstance(in_dims, (int, tuple)):
        raise ValueError(f"{where}: expected `in_dims` to be int or a (potentially nested) tuple matching the "
                         f"structure of inputs, got: {type(in_dims)}.")
    leaves, spec = _pytree.flatten(args)
    dims = _pytree.broadcast_prefix(in_dims, args)
    if dims is None:
        raise ValueError(f"{where}: in_dims is not compatible with the structure of `inputs`. in_dims has structure "
                         f"{_pytree.describe(_pytree.flatten(in_dims)[1])} but inputs has structure "
                         f"{_pytree.describe(spec)}.")
    normalized, sizes = [], []
    for x, d in zip(leaves, dims):
        if d is None:
            normalized.append(None)
            continue
        if isinstance(d, bool) or not isinstance(d, int):
            raise ValueError(f"{where}: in_dims must be int or None for every input, got in_dim={d!r} of type "
                             f"{type(d)}")
        if not isinstance(x, Tensor):
            raise ValueError(f"{where}: Got in_dim={d} for an input but the input is of type {type(x)}. We cannot "
                             "vmap over non-Tensor arguments, please use None as the respective in_dim")
        if not -x.ndim <= d < x.ndim:
            raise ValueError(f"{where}: Got in_dim={d} for some input, but that input is a Tensor of dimensionality "
                             f"{x.ndim} so expected in_dim to satisfy -{x.ndim} <= in_dim < {x.ndim}.")
        normalized.append(d % x.ndim)
        sizes.append(x.shape[d])
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if len(set(sizes)) != 1:
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sizes} for the mapped dimension")
    if sizes[0] == 0:
        raise ValueError(f"{where}: the mapped dimension has size 0; distnn's vmap calls the function once per "
                         "sample (see distnn.func.vmap) and cannot infer the output of no call")
    return leaves, spec, normalized, sizes[0]


def _stacked(name, out_dims, results):
    """The per-sample results stacked along ``out_dims`` (refused as torch's where they do not fit)."""
    where = f"vmap({name}, ..., out_dims={out_dims})"
    if isinstance(out_dims, bool) or not (out_dims is None or isinstance(out_dims, (int, tuple, list, dict))):
        raise ValueError(f"{where}: `out_dims` must be an int, None or a python collection of ints representing "
                         "where in the outputs the vmapped dimension should appear.")
    per_sample = [_pytree.flatten(r) for r in results]
    spec = per_sample[0][1]
    dims = _pytree.broadcast_prefix(out_dims, results[0])
    if dims is None:
        raise ValueError(f"{where}(<inputs>): out_dims is not compatible with the structure of `outputs`. out_dims "
                         f"has structure {_pytree.describe(_pytree.flatten(out_dims)[1])} but outputs has structure "
                         f"{_pytree.describe(spec)}.")
    if any(s != spec for _, s in per_sample):
        raise ValueError(f"vmap({name}, ...): `{name}` returned outputs of different structures for different "
                         "samples")
    from distnn.functional.join import stack

    out = []
    for i, d in enumerate(dims):
        values = [leaves[i] for leaves, _ in per_sample]
        if d is None:
            out.append(_unbatched(name, values))
            continue
        if isinstance(d, bool) or not isinstance(d, int):
            raise ValueError(f"{where}: `out_dims` must be an int, None or a python collection of ints representing "
                             "where in the outputs the vmapped dimension should appear.")
        if not isinstance(values[0], Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(values[0])}. "
                             "Did you mean to set out_dims= to None for output?")
        rank = values[0].ndim
        if not -(rank + 1) <= d <= rank:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-(rank + 1)}, {rank}], but got "
                             f"{d})")
        out.append(stack(values, d % (rank + 1)))
    return _pytree.unflatten(out, spec)


def _unbatched(name, values):
    """An ``out_dims=None`` output: the same in every sample, returned once. torch refuses one that depends on
    the mapped inputs; the loop sees values, so it refuses one whose values differ between samples."""
    first = values[0]
    if isinstance(first, Tensor):
        same = all(isinstance(v, Tensor) and tuple(v.shape) == tuple(first.shape) and bool((v.data == first.data).all())
                   for v in values[1:])
    else:
        same = all(v == first for v in values[1:])
    if not same:
        raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
    return first


__all__ = ["vmap"]
