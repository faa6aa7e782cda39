"""The entry order of PyTorch's CPU addition of two sparse COO tensors, computed without a per-entry loop.

PyTorch (``add_out_sparse_contiguous``) walks the operands ``t`` and ``s`` with two pointers, in stored
order: the head with the smaller index is emitted; equal heads are emitted once, summed. On uncoalesced
operands the result therefore depends on the stored order, and an index can stay repeated.

The walk has a closed form. Read the keys of one operand up to entry ``u`` and keep the *staircase*: the
entries not followed (up to ``u``) by a larger key, i.e. the contents of a monotone stack after ``u``. Entry
``u`` of ``t`` and entry ``v`` of ``s`` are emitted together exactly when their staircases are equal, and
the result is both operands' entries sorted by staircase (compared from the bottom, a prefix first). That
is what the levels below compute: at level 0 each entry's key is its prefix maximum; entries whose key
occurs in one operand only are placed by it at once (a merge of sorted keys, ``searchsorted``); a key that
leads a run in both operands pairs the two leaders (summed) and leaves the two runs' followers as one
smaller merge of the same kind, solved at the next level for all such runs together (a segmented prefix
maximum). Followers equal to their run's leader pair up in order at once (the k-th with the k-th), which
keeps the number of levels small for embedding-like gradients where the largest row repeats throughout, and
where a run's two sequences start alike they pair entry by entry (the walk has no memory: it goes on from
there as a merge of the rest), which solves ``a + a`` at once.

Each level costs a few array passes over the entries still unplaced. Orders built so that every level places
only a few entries (long decreasing runs that differ between the operands) hand the rest to the plain walk
(:data:`STALL`); random, sorted, repeated and identical orders never get there (``tests/
test_sparse_addition_torch.py``; ``benchmarks/bench_sparse_add.py`` times both kinds).
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module
from distnn.functional.reduce_scan import _scan  # (maximum.accumulate; cupy has none)

# When the levels stop paying: after FREE_LEVELS levels, a level that leaves more than STALL of the entries
# it started with hands the rest to the entry-by-entry walk. Only adversarial orders get there (each level
# peels a few entries off long decreasing runs that differ between the operands); the walk then costs what
# the plain loop would for the entries left, instead of a level per entry.
FREE_LEVELS = 2
STALL = 0.9


class _Walk:
    """The result arrays the levels fill in: see :func:`merge_order`."""

    def __init__(self, xp, n, m):
        self.emitted_at = xp.empty(n, dtype=np.int64)
        self.partner = xp.full(n, -1, dtype=np.int64)
        self.s_taken = xp.zeros(m, dtype=bool)

    def pair(self, tp, sp):
        self.emitted_at[tp] = sp
        self.partner[tp] = sp
        self.s_taken[sp] = True


class _Runs:
    """The merges still to solve: the active entries of each operand (position, key, run), run-major and in
    stored order within a run; per run, where its entries of ``s`` end (exclusive) and its leader's key."""

    def __init__(self, pos_t, val_t, grp_t, pos_s, val_s, grp_s, s_end, lead):
        self.pos_t, self.val_t, self.grp_t = pos_t, val_t, grp_t
        self.pos_s, self.val_s, self.grp_s = pos_s, val_s, grp_s
        self.s_end, self.lead = s_end, lead

    def keep(self, keep_t, keep_s, grp_t=None, grp_s=None):
        self.pos_t, self.val_t = self.pos_t[keep_t], self.val_t[keep_t]
        self.grp_t = (self.grp_t if grp_t is None else grp_t)[keep_t]
        self.pos_s, self.val_s = self.pos_s[keep_s], self.val_s[keep_s]
        self.grp_s = (self.grp_s if grp_s is None else grp_s)[keep_s]


def _rank_in_run(xp, grp, num):
    """Each entry's 0-based rank within its run, and each run's first entry and size."""
    first = xp.searchsorted(grp, xp.arange(num, dtype=grp.dtype))
    size = xp.bincount(grp, minlength=num) if grp.shape[0] else xp.zeros(num, dtype=np.int64)
    return xp.arange(grp.shape[0], dtype=np.int64) - first[grp], first, size


def _count_in_run(xp, flags, grp, first):
    """How many of ``flags`` are set up to and including each entry, within its run."""
    csum = xp.cumsum(flags)
    before = xp.concatenate([xp.zeros(1, dtype=csum.dtype), csum])[first]
    return csum - before[grp]


def _pair_common_prefix(xp, runs, walk):
    """Where a run's two sequences start alike, the walk pairs them entry by entry (equal heads, then the
    next two): the prefix they share pairs up, and the run goes on from there (the walk has no memory)."""
    num = runs.s_end.shape[0]
    if not runs.pos_s.shape[0]:
        return
    rank_t, first_t, size_t = _rank_in_run(xp, runs.grp_t, num)
    _, first_s, size_s = _rank_in_run(xp, runs.grp_s, num)
    both = (size_t > 0) & (size_s > 0)
    last_s = runs.pos_s.shape[0] - 1
    heads_equal = both & (runs.val_t[xp.minimum(first_t, runs.pos_t.shape[0] - 1)] ==
                          runs.val_s[xp.minimum(first_s, last_s)])
    if not bool(heads_equal.any()):  # (the usual case: no run starts alike)
        return
    other = xp.minimum(first_s[runs.grp_t] + rank_t, last_s)
    alike = (rank_t < size_s[runs.grp_t]) & (runs.val_s[other] == runs.val_t)
    prefix = _count_in_run(xp, ~alike, runs.grp_t, first_t) == 0
    sp = other[prefix]
    walk.pair(runs.pos_t[prefix], runs.pos_s[sp])
    keep_s = xp.ones(runs.pos_s.shape[0], dtype=bool)
    keep_s[sp] = False
    runs.keep(~prefix, keep_s)


def _pair_repeated_leaders(xp, runs, walk):
    """Within a run (the followers of a leader of key ``a``, all <= a), the k-th entry equal to ``a`` in
    ``t`` pairs with the k-th in ``s`` (each leads the rest in both); the entries between two paired ones
    form a run of their own."""
    num = runs.s_end.shape[0]
    eq_t, eq_s = runs.val_t == runs.lead[runs.grp_t], runs.val_s == runs.lead[runs.grp_s]
    if not (bool(eq_t.any()) and bool(eq_s.any())):
        return
    first_t = xp.searchsorted(runs.grp_t, xp.arange(num, dtype=np.int64))
    first_s = xp.searchsorted(runs.grp_s, xp.arange(num, dtype=np.int64))
    cnt_t, cnt_s = _count_in_run(xp, eq_t, runs.grp_t, first_t), _count_in_run(xp, eq_s, runs.grp_s, first_s)
    pairs = xp.minimum(xp.bincount(runs.grp_t[eq_t], minlength=num), xp.bincount(runs.grp_s[eq_s], minlength=num))
    paired_t = eq_t & (cnt_t <= pairs[runs.grp_t])
    paired_s = eq_s & (cnt_s <= pairs[runs.grp_s])
    sp = runs.pos_s[paired_s]
    walk.pair(runs.pos_t[paired_t], sp)  # (run-major, in order, on both sides: they pair up)
    offset = xp.cumsum(pairs + 1) - (pairs + 1)  # run g's pieces: offset[g] .. offset[g] + pairs[g]
    s_end = xp.empty(int(pairs.sum()) + num, dtype=np.int64)
    s_end[offset + pairs] = runs.s_end  # (the last piece ends where the run did)
    s_end[offset[runs.grp_s[paired_s]] + cnt_s[paired_s] - 1] = sp  # (piece k ends at the k+1-th pair)
    grp_t = offset[runs.grp_t] + xp.minimum(cnt_t, pairs[runs.grp_t])
    grp_s = offset[runs.grp_s] + xp.minimum(cnt_s, pairs[runs.grp_s])
    runs.lead, runs.s_end = xp.repeat(runs.lead, pairs + 1), s_end
    runs.keep(~paired_t, ~paired_s, grp_t, grp_s)


def _run_leaders(xp, key):
    """Where a new key starts (the entries leading a segment of equal prefix maximum), and for each entry the
    index of its segment."""
    starts = xp.ones(key.shape[0], dtype=bool)
    starts[1:] = key[1:] != key[:-1]
    return xp.nonzero(starts)[0], xp.cumsum(starts) - 1


def _level(xp, runs, walk, top, m):
    """One level: in each run, keys are prefix maxima; a segment whose key only ``t`` has is emitted whole
    before ``s``'s first larger key; a key leading a segment in both pairs the two leaders, and the two
    segments' followers become a run of the next level."""
    key_t = _scan(xp, "maximum", runs.grp_t * top + runs.val_t, 0)
    key_s = _scan(xp, "maximum", runs.grp_s * top + runs.val_s, 0) if runs.pos_s.shape[0] else runs.val_s
    lead_t, seg_t = _run_leaders(xp, key_t)
    lead_s, seg_s = _run_leaders(xp, key_s)
    uk_t, uk_s = key_t[lead_t], key_s[lead_s]
    at = xp.searchsorted(uk_s, uk_t)  # per segment of t: the first segment of s with a key >= its own
    tie = xp.concatenate([uk_s, xp.full(1, -1, dtype=uk_s.dtype)])[at] == uk_t
    s_head = xp.concatenate([runs.pos_s[lead_s], xp.full(1, m, dtype=np.int64)])[at]
    emitted = xp.minimum(s_head, runs.s_end[runs.grp_t[lead_t]])
    tied_t = tie[seg_t]
    alone = ~tied_t
    walk.emitted_at[runs.pos_t[alone]] = emitted[seg_t[alone]]
    paired = lead_t[tie]  # (entries of t leading a tied segment, with the leaders of s they pair with)
    walk.pair(runs.pos_t[paired], s_head[tie])
    tied_seg_s = xp.zeros(uk_s.shape[0], dtype=bool)
    tied_seg_s[at[tie]] = True
    follow_t, follow_s = tied_t, tied_seg_s[seg_s]
    follow_t[paired] = False
    follow_s[lead_s] = False
    # (a tied segment of s ends at s's next segment start or the run's end)
    seg_end = xp.concatenate([runs.pos_s[lead_s][1:], xp.full(1, m, dtype=np.int64)])
    runs.s_end = xp.minimum(seg_end[at[tie]], runs.s_end[runs.grp_t[paired]])
    runs.lead = runs.val_t[paired]
    # the next level's runs: the tied segments, numbered in key order on both sides
    runs.keep(follow_t, follow_s, (xp.cumsum(tie) - 1)[seg_t], (xp.cumsum(tied_seg_s) - 1)[seg_s])


def _walk_rest(xp, runs, walk, top, m):
    """The plain two-pointer walk of the runs left, one entry at a time (see :data:`STALL`)."""
    kt = (runs.grp_t * top + runs.val_t).tolist()
    ks = (runs.grp_s * top + runs.val_s).tolist()
    pos_t, pos_s, grp_t = runs.pos_t.tolist(), runs.pos_s.tolist() + [m], runs.grp_t.tolist()
    s_end = runs.s_end.tolist()
    out_t, out_at, pair_t, pair_s = [], [], [], []
    i = j = 0
    n_t, n_s = len(kt), len(ks)
    while i < n_t:
        if j < n_s and ks[j] < kt[i]:
            j += 1
            continue
        out_t.append(pos_t[i])
        out_at.append(min(pos_s[j], s_end[grp_t[i]]))
        if j < n_s and ks[j] == kt[i]:
            pair_t.append(pos_t[i])
            pair_s.append(pos_s[j])
            j += 1
        i += 1
    walk.emitted_at[xp.asarray(out_t, dtype=np.int64)] = xp.asarray(out_at, dtype=np.int64)
    walk.pair(xp.asarray(pair_t, dtype=np.int64), xp.asarray(pair_s, dtype=np.int64))


def _merge_sorted(xp, t, s, walk):
    """Both operands' keys nondecreasing (coalesced operands, say): a plain merge, where the k-th repeat of a
    key in ``t`` pairs with the k-th in ``s`` and the repeats left over go before ``s``'s next key."""
    n = t.shape[0]
    low, high = xp.searchsorted(s, t, side="left"), xp.searchsorted(s, t, side="right")
    starts = xp.ones(n, dtype=bool)
    starts[1:] = t[1:] != t[:-1]
    position = xp.arange(n, dtype=np.int64)
    rank = position - _scan(xp, "maximum", xp.where(starts, position, 0), 0)  # (among t's repeats of its key)
    paired = rank < high - low
    walk.emitted_at[...] = xp.where(paired, low + rank, high)
    walk.pair(position[paired], (low + rank)[paired])


def merge_order(t, s, free_levels=None):
    """PyTorch's two-pointer walk of the keys ``t`` (n,) and ``s`` (m,) (int64, any order, repeats allowed).

    Returns ``(emitted_at, partner, s_taken)``: ``emitted_at[u]`` (n,) is how many entries of ``s`` the walk
    emits before (or together with) entry ``u`` of ``t`` (nondecreasing in ``u``), ``partner[u]`` the entry
    of ``s`` summed into ``u``'s, or -1, and ``s_taken`` (m,) bool marks the entries of ``s`` so summed.
    """
    xp = get_array_module(t)
    n, m = int(t.shape[0]), int(s.shape[0])
    walk = _Walk(xp, n, m)
    if n == 0 or m == 0:
        walk.emitted_at[:] = m
        return walk.emitted_at, walk.partner, walk.s_taken
    top = int(max(int(t.max()), int(s.max()))) + 1
    if top * (n + m + 1) >= 2 ** 62:  # (run * top + key must fit: rank the keys instead)
        _, inverse = xp.unique(xp.concatenate([t, s]), return_inverse=True)
        inverse = inverse.reshape(-1).astype(np.int64)
        t, s, top = inverse[:n], inverse[n:], n + m
    if bool((t[1:] >= t[:-1]).all()) and bool((s[1:] >= s[:-1]).all()):
        _merge_sorted(xp, t, s, walk)
        return walk.emitted_at, walk.partner, walk.s_taken
    runs = _Runs(xp.arange(n, dtype=np.int64), t, xp.zeros(n, dtype=np.int64),
                 xp.arange(m, dtype=np.int64), s, xp.zeros(m, dtype=np.int64),
                 xp.full(1, m, dtype=np.int64), None)
    free, last_active = (FREE_LEVELS if free_levels is None else free_levels), 0
    while runs.pos_t.shape[0]:
        active = runs.pos_t.shape[0] + runs.pos_s.shape[0]
        if free < 0 and active > STALL * last_active:
            _walk_rest(xp, runs, walk, top, m)
            break
        free, last_active = free - 1, active
        _pair_common_prefix(xp, runs, walk)
        if runs.lead is not None and runs.pos_t.shape[0]:
            _pair_repeated_leaders(xp, runs, walk)
        if runs.pos_t.shape[0]:
            _level(xp, runs, walk, top, m)
    return walk.emitted_at, walk.partner, walk.s_taken


__all__ = ["merge_order"]
