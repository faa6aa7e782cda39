"""The ops of the random autograd programs (tests/test_autograd_fuzz.py): Program, tests/autograd_fuzz_harness.py's
ProgramRunner with its ``op_*`` generators (constants, unary, binary, reductions, shape ops, new tensors, losses,
in-place changes with and without grad, hooks, retain_grad), each drawn by ``step()`` with its weight."""
from __future__ import annotations

import numpy as np

import distnn
import distnn.functional as DF
from autograd_fuzz_harness import (TF, Mismatch, ProgramRunner, Skip, _both, _broadcasts, _broadcasts_to,
                                   _Diverged, _unannotated_refusal, torch)


class Program(ProgramRunner):
    """A random program: ProgramRunner's machinery and the ops it draws from."""

    # ------------------------------------------------------------ ops
    def step(self):
        kind = self.rng.choices(
            ["unary", "const", "binary", "reduce", "shape", "new", "inplace_rec", "inplace_nograd", "hook",
             "retain", "loss"],
            [10, 6, 8, 5, 6, 6, 4, 3, 3, 2, 2])[0]
        getattr(self, "op_" + kind)()

    def op_const(self):
        v = self.pick()
        c = self.rng.choice([2.0, -0.5, 3.0, 1.5])
        op = self.rng.choice(["add", "rsub", "mul", "div", "rdiv", "pow2", "pow3", "powhalf", "neg", "rpow"])
        if not v.values().size and op in ("rdiv", "powhalf", "rpow"):
            raise Skip
        if op == "rdiv" and np.abs(v.values()).min() < 0.2:
            raise Skip
        if op == "powhalf" and v.values().min() < 0.1:
            raise Skip
        if op == "rpow" and v.values().max() > 4:
            raise Skip
        f = {"add": lambda x: x + c, "rsub": lambda x: c - x, "mul": lambda x: x * c, "div": lambda x: x / c,
             "rdiv": lambda x: c / x, "pow2": lambda x: x ** 2, "pow3": lambda x: x ** 3,
             "powhalf": lambda x: x ** 0.5, "neg": lambda x: -x, "rpow": lambda x: 2.0 ** x}[op]
        self.run(f"{op}({v.name}, {c})", lambda: f(v.d), lambda: f(v.t))

    def op_unary(self):
        v = self.pick()
        vals = v.values()
        dim = self.rng.randrange(len(v.shape)) if v.shape else None
        ops = {
            "exp": (lambda x: x.exp(), lambda x: x.exp(), vals.max() < 5 if vals.size else True),
            "log": (lambda x: x.log(), lambda x: x.log(), vals.size and vals.min() > 0.1),
            "sqrt": (lambda x: x.sqrt(), lambda x: x.sqrt(), vals.size and vals.min() > 0.1),
            "abs": (lambda x: x.abs(), lambda x: x.abs(), vals.size and np.abs(vals).min() > 1e-3),
            "relu": (lambda x: DF.relu(x), lambda x: TF.relu(x), vals.size and np.abs(vals).min() > 1e-6),
            "sigmoid": (lambda x: DF.sigmoid(x), lambda x: torch.sigmoid(x), True),
            "tanh": (lambda x: DF.tanh(x), lambda x: torch.tanh(x), True),
            "leaky_relu": (lambda x: DF.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1), True),
            "elu": (lambda x: DF.elu(x), lambda x: TF.elu(x), True),
            "gelu": (lambda x: DF.gelu(x), lambda x: TF.gelu(x), True),
            "gelu_tanh": (lambda x: DF.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh"), True),
            "softplus": (lambda x: DF.softplus(x), lambda x: TF.softplus(x), True),
            "logsigmoid": (lambda x: DF.logsigmoid(x), lambda x: TF.logsigmoid(x), True),
            "softmax": (lambda x: DF.softmax(x, dim=dim), lambda x: TF.softmax(x, dim=dim), dim is not None),
            "log_softmax": (lambda x: DF.log_softmax(x, dim=dim), lambda x: TF.log_softmax(x, dim=dim),
                            dim is not None),
            "clamp": (lambda x: x.clip(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7),
                      vals.size and np.abs(np.abs(vals - 0.1) - 0.6).min() > 1e-6),
            "clone": (lambda x: x.clone(), lambda x: x.clone(), True),
            "round": (lambda x: x.round(), lambda x: x.round(), True),
            "floor": (lambda x: x.floor(), lambda x: x.floor(), True),
            "sign": (lambda x: x.sign(), lambda x: x.sign(), True),
            "normalize": (lambda x: DF.normalize(x, dim=dim), lambda x: TF.normalize(x, dim=dim),
                          dim is not None),
            "normalize3": (lambda x: DF.normalize(x, p=3, dim=dim), lambda x: TF.normalize(x, p=3, dim=dim),
                           dim is not None and vals.size and np.abs(vals).min() > 1e-3),
        }
        name = self.rng.choice(sorted(ops))
        fd, ft, ok = ops[name]
        if not ok:
            raise Skip
        self.run(f"{name}({v.name}, dim={dim})", lambda: fd(v.d), lambda: ft(v.t))

    def op_binary(self):
        a = self.pick()
        b = self.pick(lambda p: _broadcasts(p.shape, a.shape))
        op = self.rng.choice(["add", "sub", "mul", "div", "maximum", "minimum", "pow", "where", "matmul",
                              "linear", "einsum", "clampT"])
        bv, av = b.values(), a.values()
        if op == "div" and (not bv.size or np.abs(bv).min() < 0.2):
            raise Skip
        if op == "pow" and (not av.size or av.min() < 0.2 or np.abs(bv).max() > 3):
            raise Skip
        if op in ("maximum", "minimum", "clampT"):
            try:
                if (np.abs(np.broadcast_to(av, np.broadcast_shapes(av.shape, bv.shape))
                           - np.broadcast_to(bv, np.broadcast_shapes(av.shape, bv.shape))).min() < 1e-6):
                    raise Skip
            except ValueError:
                raise Skip from None
        if op == "matmul":
            b = self.pick(lambda p: len(p.shape) >= 1 and len(a.shape) >= 1 and p.shape[0 if len(p.shape) == 1
                                                                                       else -2] == a.shape[-1])
        if op == "linear":
            b = self.pick(lambda p: len(p.shape) == 2 and len(a.shape) >= 1 and p.shape[1] == a.shape[-1])
        if op == "einsum":
            if len(a.shape) != 2:
                raise Skip
            b = self.pick(lambda p: len(p.shape) == 2 and p.shape[1] == a.shape[1])
        f = {
            "add": (lambda x, y: x + y,) * 2, "sub": (lambda x, y: x - y,) * 2, "mul": (lambda x, y: x * y,) * 2,
            "div": (lambda x, y: x / y,) * 2, "pow": (lambda x, y: x ** y,) * 2,
            "maximum": (lambda x, y: DF.maximum(x, y), lambda x, y: torch.maximum(x, y)),
            "minimum": (lambda x, y: DF.minimum(x, y), lambda x, y: torch.minimum(x, y)),
            "clampT": (lambda x, y: DF.clip(x, y, None), lambda x, y: torch.clamp(x, y, None)),
            "where": (lambda x, y: DF.where(x > 0.1, x, y), lambda x, y: torch.where(x > 0.1, x, y)),
            "matmul": (lambda x, y: x @ y,) * 2,
            "linear": (lambda x, y: DF.linear(x, y), lambda x, y: TF.linear(x, y)),
            "einsum": (lambda x, y: distnn.einsum("ij,kj->ik", x, y), lambda x, y: torch.einsum("ij,kj->ik", x, y)),
        }[op]
        self.run(f"{op}({a.name}, {b.name})", lambda: f[0](a.d, b.d), lambda: f[1](a.t, b.t))

    def op_reduce(self):
        v = self.pick(lambda p: len(p.shape) >= 1 and 0 not in p.shape)
        dim = self.rng.randrange(len(v.shape))
        keep = self.rng.random() < 0.4
        vals = v.values()
        ops = {
            "sum": (lambda x: x.sum(dim, keepdim=keep), lambda x: x.sum(dim, keepdim=keep), True),
            "sum_all": (lambda x: x.sum(), lambda x: x.sum(), True),
            "mean": (lambda x: x.mean(dim, keepdim=keep), lambda x: x.mean(dim, keepdim=keep), True),
            "var": (lambda x: x.var(dim, keepdim=keep), lambda x: x.var(dim, keepdim=keep), v.shape[dim] > 1),
            "std": (lambda x: x.std(dim, keepdim=keep), lambda x: x.std(dim, keepdim=keep), v.shape[dim] > 1),
            "norm": (lambda x: x.norm(dim=dim, keepdim=keep), lambda x: x.norm(dim=dim, keepdim=keep), True),
            "amax": (lambda x: x.amax(dim, keepdim=keep), lambda x: x.amax(dim, keepdim=keep), True),
            "max_dim": (lambda x: x.max(dim, keepdim=keep)[0], lambda x: x.max(dim, keepdim=keep)[0], True),
            "logsumexp": (lambda x: x.logsumexp(dim, keepdim=keep), lambda x: x.logsumexp(dim, keepdim=keep), True),
            "prod": (lambda x: x.prod(dim, keepdim=keep), lambda x: x.prod(dim, keepdim=keep), True),
            "cumsum": (lambda x: x.cumsum(dim), lambda x: x.cumsum(dim), True),
        }
        name = self.rng.choice(sorted(ops))
        fd, ft, ok = ops[name]
        if not ok:
            raise Skip
        self.run(f"{name}({v.name}, {dim}, keep={keep})", lambda: fd(v.d), lambda: ft(v.t))

    def op_shape(self):
        v = self.pick(lambda p: len(p.shape) >= 1)
        nd = len(v.shape)
        ops = {
            "T": (lambda x: x.transpose(0, 1), nd == 2),
            "reshape": (lambda x: x.reshape(-1), True),
            "unsqueeze": (lambda x: x.unsqueeze(0), True),
            "row": (lambda x: x[0], v.shape[0] > 0),
            "cols": (lambda x: x[:, 1:3], nd == 2 and v.shape[1] >= 3),
            "step": (lambda x: x[::2], True),
            "fancy": (lambda x: x[[0, 0, -1]], v.shape[0] > 0),
            "mask": (lambda x: x[x > 0], True),
        }
        name = self.rng.choice(sorted(ops))
        f, ok = ops[name]
        if not ok:
            raise Skip
        self.run(f"{name}({v.name})", lambda: f(v.d), lambda: f(v.t), view=name not in ("fancy", "mask"))

    def op_new(self):
        v = self.pick(lambda p: len(p.shape) >= 1 and 0 not in p.shape)
        nd = len(v.shape)
        dim = self.rng.randrange(nd)
        n = v.shape[dim]
        idx = self.np.integers(0, n, size=self.rng.randrange(1, 5))
        gidx = self.np.integers(0, n, size=v.shape)
        di, ti = distnn.tensor(idx), torch.tensor(idx)
        dg, tg = distnn.tensor(gidx), torch.tensor(gidx)
        k = self.rng.randrange(1, n + 1)
        vals = v.values()
        distinct = len(np.unique(vals)) == vals.size
        ops = {
            "flip": (lambda x: x.flip(dim), lambda x: x.flip(dim), True),
            "roll": (lambda x: x.roll(1, dim), lambda x: x.roll(1, dim), True),
            "roll_flat": (lambda x: x.roll(2), lambda x: x.roll(2), True),
            "narrow": (lambda x: x.narrow(dim, 0, max(1, n - 1)), lambda x: x.narrow(dim, 0, max(1, n - 1)), True),
            "index_select": (lambda x: x.index_select(dim, di), lambda x: x.index_select(dim, ti), True),
            "gather": (lambda x: x.gather(dim, dg), lambda x: x.gather(dim, tg), True),
            "sort": (lambda x: x.sort(dim)[0], lambda x: x.sort(dim)[0], distinct),
            "sort_desc": (lambda x: x.sort(dim, descending=True)[0], lambda x: x.sort(dim, descending=True)[0],
                          distinct),
            "topk": (lambda x: x.topk(k, dim)[0], lambda x: x.topk(k, dim)[0], distinct),
            "topk_small": (lambda x: x.topk(k, dim, largest=False)[0], lambda x: x.topk(k, dim, largest=False)[0],
                           distinct),
        }
        name = self.rng.choice(sorted(ops))
        fd, ft, ok = ops[name]
        if not ok:
            raise Skip
        p = self.run(f"{name}({v.name}, dim={dim})", lambda: fd(v.d), lambda: ft(v.t), view=name == "narrow")
        if name in ("index_select", "gather") and self.rng.random() < 0.3:  # change the index afterwards
            with distnn.no_grad():
                target = di if name == "index_select" else dg
                target[0] = (int(target.data.reshape(-1)[0]) + 1) % n if n > 1 else 0
            with torch.no_grad():
                target = ti if name == "index_select" else tg
                target.view(-1)[0] = (int(target.view(-1)[0]) + 1) % n if n > 1 else 0
            self.trace.append(f"  index of {p.name} changed in place")

    def op_loss(self):
        """cross_entropy / nll_loss / embedding with a Tensor of class indices, changed in place afterwards
        (under no_grad) now and then: both must refuse the backward, as the indices are saved."""
        v = self.pick(lambda p: len(p.shape) == 2 and 0 not in p.shape)
        n, c = v.shape
        idx = self.np.integers(0, c, size=n)
        w = np.abs(self.const(c)) + 0.1
        di, ti = distnn.tensor(idx), torch.tensor(idx)
        dw, tw = distnn.tensor(w), torch.tensor(w)
        op = self.rng.choice(["ce", "ce_w", "ce_smooth", "nll", "embedding"])
        f = {
            "ce": (lambda: DF.cross_entropy(v.d, di), lambda: TF.cross_entropy(v.t, ti)),
            "ce_w": (lambda: DF.cross_entropy(v.d, di, weight=dw), lambda: TF.cross_entropy(v.t, ti, weight=tw)),
            "ce_smooth": (lambda: DF.cross_entropy(v.d, di, weight=dw, label_smoothing=0.2),
                          lambda: TF.cross_entropy(v.t, ti, weight=tw, label_smoothing=0.2)),
            "nll": (lambda: DF.nll_loss(v.d, di), lambda: TF.nll_loss(v.t, ti)),
        }.get(op)
        if op == "embedding":  # (v as the weight: n rows)
            di, ti = distnn.tensor(idx % n), torch.tensor(idx % n)
            f = (lambda: DF.embedding(di, v.d), lambda: TF.embedding(ti, v.t))
        p = self.run(f"{op}({v.name})", f[0], f[1])
        if self.rng.random() < 0.4:
            which = self.rng.choice(["index", "weight"] if op in ("ce_w", "ce_smooth") else ["index"])
            with distnn.no_grad(), torch.no_grad():
                if which == "index":
                    top = n if op == "embedding" else c
                    di[0] = (int(di.data[0]) + 1) % top
                    ti[0] = (int(ti[0]) + 1) % top
                else:
                    dw *= 2.0
                    tw *= 2.0
            self.trace.append(f"  {which} of {p.name} changed in place")

    def op_inplace_rec(self):
        # (not on a tensor PyTorch made a view of an internal base, e.g. einsum's result: its hooks are bypassed
        # after an in-place change there, an artefact of how the op is built, not of autograd's semantics)
        v = self.pick(lambda p: p.rg and p.d._node is not None and (p.view or not p.t._is_view())
                      and not self.shares_hooked_view(p))
        op = self.rng.choice(["iadd", "isub", "imul_c", "imul", "idiv_c", "setitem", "relu_", "view_iadd"])
        if op in ("iadd", "isub", "imul"):
            w = self.pick(lambda p: p is not v and _broadcasts_to(p.shape, v.shape))
        elif op == "setitem":
            if not v.shape or v.shape[0] < 1:
                raise Skip
            w = self.pick(lambda p: p is not v and _broadcasts_to(p.shape, v.shape[1:]))
        elif op == "view_iadd":
            if not v.shape:
                raise Skip
            w = None
        else:
            w = None
        if op == "relu_" and np.abs(v.values()).min() < 1e-6:
            raise Skip

        def change(x, other, relu):
            """The in-place op on ``x`` (``other``: ``w``'s tensor in the same framework)."""
            if op == "iadd":
                x += other
            elif op == "isub":
                x -= other
            elif op == "imul_c":
                x *= 1.5
            elif op == "imul":
                x *= other
            elif op == "idiv_c":
                x /= 2.0
            elif op == "setitem":
                x[0] = other
            elif op == "relu_":
                relu(x, inplace=True)
            else:
                u = x[0]
                u += 1.0
            return x

        def fd():
            return change(v.d, w.d if w is not None else None, DF.relu)

        def ft():
            return change(v.t, w.t if w is not None else None, TF.relu)

        (d, t), (ed, et) = _both(fd, ft)
        self.trace.append(f"{op}({v.name}{', ' + w.name if w is not None else ''}) [recording]")
        if (ed is None) != (et is None):
            if ed is not None and _unannotated_refusal(str(ed)):
                self.lax += 1
                raise _Diverged  # the two programs' states may differ now: stop here
            if et is not None and "refer to a single memory location" in str(et):
                # PyTorch refuses an operand overlapping the memory written; distnn computes the op out of place
                # and then writes (documented in the README): nothing to compare
                self.lax += 1
                raise _Diverged
            raise Mismatch(f"seed {self.seed}: in-place {op}: distnn {ed!r} torch {et!r}\n" + "\n".join(self.trace))
        if ed is not None:
            raise _Diverged  # both refused; the states may be partly written: stop
        self.check_values(v)

    def shares_hooked_view(self, p):
        ptr = p.t.untyped_storage().data_ptr()
        return any(h.untyped_storage().data_ptr() == ptr for h in self.hooked_views)

    def op_inplace_nograd(self):
        v = self.pick(lambda p: not self.shares_hooked_view(p))
        op = self.rng.choice(["add", "mul", "row", "zero_row"])
        with distnn.no_grad():
            if op == "add":
                v.d += 0.25
            elif op == "mul":
                v.d *= 1.25
            elif v.shape and v.shape[0]:
                v.d[0] = 0.0 if op == "zero_row" else 0.5
        with torch.no_grad():
            if op == "add":
                v.t += 0.25
            elif op == "mul":
                v.t *= 1.25
            elif v.shape and v.shape[0]:
                v.t[0] = 0.0 if op == "zero_row" else 0.5
        self.trace.append(f"{op}({v.name}) [no_grad]")
        for p in self.pool:  # views see it
            self.check_values(p)

    def op_hook(self):
        # (PyTorch 2.x crashes registering a hook on a view changed in place under no_grad: not drawn)
        v = self.pick(lambda p: p.rg and not (p.t._is_view() and p.t._version))
        kind = self.rng.choice(["scale", "log", "none"])
        k = self.rng.choice([2.0, -1.0, 0.5])
        tag = f"hook{len(self.trace)}"

        def make(lib):
            def hook(g):
                arr = np.array(g.data if lib == "d" else g.detach().numpy(), dtype=np.float64)
                self.log[lib].append((tag, arr))
                if kind == "scale":
                    return g * k
                return None
            return hook

        v.d.register_hook(make("d"))
        v.t.register_hook(make("t"))
        if v.t._is_view():
            self.hooked_views.append(v.t)
        self.trace.append(f"{tag}: {kind} {k} on {v.name}")

    def op_retain(self):
        v = self.pick(lambda p: p.rg and p.d._node is not None)
        v.d.retain_grad()
        v.t.retain_grad()
        if v.t._is_view():  # (the same regeneration: PyTorch's retained gradient then counts only later uses)
            self.hooked_views.append(v.t)
        if v not in self.retained:
            self.retained.append(v)
        self.trace.append(f"retain_grad({v.name})")

