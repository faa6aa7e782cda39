"""Sparse gradients (nn.Embedding(sparse=True)) in the optimizers, against torch.optim in float64: SGD (plain,
momentum, Nesterov, dampening, maximize), Adagrad and SparseAdam over several steps from the same weights
and batches; SparseAdam's state_dict round trip resumes exactly; PyTorch's refusals (the other optimizers,
weight decay, SparseAdam's dense gradients and arguments); clipping's refusal. (Sparse gradients under
DataParallel: test_data_parallel_sparse.py.)"""
import numpy as np
import pytest

import distnn
import distnn.optim as O
from distnn import nn
from state_io import saved_and_loaded

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")  # (torch's, not ours)
STEPS, NUM, DIM = 6, 7, 3
RTOL, ATOL = 1e-12, 1e-13


def _batches(steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, NUM, (4, 2)), rng.standard_normal((4, 2, DIM))) for _ in range(steps)]


class _Net(nn.Module):  # a sparse table and a dense layer: one optimizer takes both kinds of gradient
    def __init__(self, w, lin, padding_idx=None):
        super().__init__()
        self.emb = nn.Embedding(NUM, DIM, padding_idx=padding_idx, sparse=True, _weight=w, dtype=np.float64)
        self.lin = nn.Linear(DIM, DIM, dtype=np.float64)
        self.lin.weight.data[...] = lin

    def forward(self, idx):
        return self.lin(self.emb(idx))


def _models(torch, padding_idx=None):
    rng = np.random.default_rng(0)
    w, lin = rng.standard_normal((NUM, DIM)), rng.standard_normal((DIM, DIM))
    d = _Net(w, lin, padding_idx)
    t = torch.nn.Sequential(torch.nn.Embedding(NUM, DIM, padding_idx=padding_idx, sparse=True,
                                               _weight=torch.tensor(w)),
                            torch.nn.Linear(DIM, DIM, dtype=torch.float64))
    with torch.no_grad():
        t[1].weight.copy_(torch.tensor(lin))
        t[1].bias.copy_(torch.tensor(d.lin.bias.data))
    return d, t


def _step(torch, d, t, od, ot, idx, y):
    od.zero_grad()
    ot.zero_grad()
    ((d(distnn.tensor(idx)) - distnn.tensor(y)) ** 2).sum().backward()
    ((t(torch.from_numpy(idx)) - torch.tensor(y)) ** 2).sum().backward()
    od.step()
    ot.step()


def _assert_same(d, t):
    np.testing.assert_allclose(d.emb.weight.data, t[0].weight.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(d.lin.weight.data, t[1].weight.detach().numpy(), rtol=RTOL, atol=ATOL)


CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2, eps=1e-6, maximize=True)),
    ("SparseAdam", dict(lr=0.05)),
    ("SparseAdam", dict(lr=0.05, betas=(0.7, 0.9), eps=1e-6, maximize=True)),
]


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_steps_match_torch(torch, name, kw):
    d, t = _models(torch, padding_idx=2 if name != "SGD" else None)
    if name == "SparseAdam":  # (dense gradients are refused: the Linear layer goes to Adam)
        od = O.SparseAdam(d.emb.parameters(), **kw)
        ot = torch.optim.SparseAdam(list(t[0].parameters()), **kw)
        d.lin.weight.requires_grad_(False)
        d.lin.bias.requires_grad_(False)
        t[1].requires_grad_(False)
    else:
        od, ot = getattr(O, name)(d.parameters(), **kw), getattr(torch.optim, name)(t.parameters(), **kw)
    for idx, y in _batches():
        _step(torch, d, t, od, ot, idx, y)
        _assert_same(d, t)


def test_sparse_adam_state_dict_round_trip_resumes_exactly(torch):
    d, t = _models(torch)
    od = O.SparseAdam(d.emb.parameters(), lr=0.05)
    ot = torch.optim.SparseAdam(list(t[0].parameters()), lr=0.05)
    batches = _batches(8)
    for idx, y in batches[:4]:
        _step(torch, d, t, od, ot, idx, y)
    sd = od.state_dict()
    assert sd["state"][0]["step"] == 4 and set(sd["state"][0]) == set(ot.state_dict()["state"][0])
    np.testing.assert_allclose(sd["state"][0]["exp_avg_sq"], ot.state_dict()["state"][0]["exp_avg_sq"].numpy(),
                               rtol=RTOL, atol=ATOL)
    again = O.SparseAdam(d.emb.parameters(), lr=0.05)
    again.load_state_dict(saved_and_loaded(sd, "npz"))
    for idx, y in batches[4:]:
        _step(torch, d, t, again, ot, idx, y)
        _assert_same(d, t)


def _with_sparse_grad():
    e = nn.Embedding(NUM, DIM, sparse=True)
    e(distnn.tensor(np.array([1, 1, 3]))).sum().backward()
    return e


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD",
                                  "Rprop"])
def test_optimizers_without_sparse_updates_refuse_as_torch(torch, name):
    e = _with_sparse_grad()
    before = e.weight.data.copy()
    t = torch.nn.Embedding(NUM, DIM, sparse=True)
    t(torch.tensor([1, 1, 3])).sum().backward()
    with pytest.raises(RuntimeError) as theirs:
        getattr(torch.optim, name)(t.parameters(), lr=0.1).step()
    with pytest.raises(RuntimeError) as ours:
        getattr(O, name)(e.parameters(), lr=0.1).step()
    assert str(ours.value) == str(theirs.value)
    np.testing.assert_array_equal(e.weight.data, before)


def test_weight_decay_and_dense_gradient_refusals_match_torch(torch):
    for name, msg in [("Adagrad", "weight_decay option is not compatible with sparse gradients"),
                      ("SGD", r"add\(sparse, dense\) is not supported")]:
        t = torch.nn.Embedding(NUM, DIM, sparse=True)
        t(torch.tensor([1])).sum().backward()
        with pytest.raises(RuntimeError, match=msg):
            getattr(torch.optim, name)(t.parameters(), lr=0.1, weight_decay=0.1).step()
        with pytest.raises(RuntimeError, match=msg):
            getattr(O, name)(_with_sparse_grad().parameters(), lr=0.1, weight_decay=0.1).step()
    lin = nn.Linear(2, 2)
    lin(distnn.ones(1, 2)).sum().backward()
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients, please consider Adam"):
        O.SparseAdam(lin.parameters()).step()
    for kw, msg in [(dict(lr=0.0), "Invalid learning rate"), (dict(eps=0.0), "Invalid epsilon value"),
                    (dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0"),
                    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1")]:
        with pytest.raises(ValueError, match=msg):
            O.SparseAdam(lin.parameters(), **kw)
        with pytest.raises(ValueError, match=msg):
            torch.optim.SparseAdam([torch.nn.Parameter(torch.ones(2))], **kw)


def test_lbfgs_takes_a_sparse_gradient_densified_as_torch(torch):
    w = np.random.default_rng(5).standard_normal((NUM, DIM))
    d = nn.Embedding(NUM, DIM, sparse=True, _weight=w, dtype=np.float64)
    t = torch.nn.Embedding(NUM, DIM, sparse=True, _weight=torch.tensor(w))
    idx = np.array([0, 2, 2, 5])
    od, ot = O.LBFGS(d.parameters(), max_iter=5), torch.optim.LBFGS(t.parameters(), max_iter=5)

    def closure_d():
        od.zero_grad()
        loss = (d(distnn.tensor(idx)) ** 2).sum()
        loss.backward()
        return loss

    def closure_t():
        ot.zero_grad()
        loss = (t(torch.from_numpy(idx)) ** 2).sum()
        loss.backward()
        return loss

    od.step(closure_d)
    ot.step(closure_t)
    np.testing.assert_allclose(d.weight.data, t.weight.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_clipping_refuses_sparse_gradients_as_torch(torch):
    e = _with_sparse_grad()
    t = torch.nn.Embedding(NUM, DIM, sparse=True)
    t(torch.tensor([1])).sum().backward()
    for clip in (lambda ps: torch.nn.utils.clip_grad_norm_(ps, 1.0), lambda ps: torch.nn.utils.clip_grad_value_(ps, 1)):
        with pytest.raises(NotImplementedError, match="SparseCPU"):
            clip(t.parameters())
    for clip in (lambda ps: nn.utils.clip_grad_norm_(ps, 1.0), lambda ps: nn.utils.clip_grad_value_(ps, 1.0)):
        with pytest.raises(NotImplementedError, match="gradient clipping does not support sparse gradients"):
            clip(e.parameters())


def test_grad_scaler_unscales_sparse_gradients_as_torch(torch):
    d, t = _models(torch)
    od, ot = O.SGD(d.parameters(), lr=0.1), torch.optim.SGD(t.parameters(), lr=0.1)
    sd, st = distnn.amp.GradScaler("cpu", init_scale=8.0), torch.amp.GradScaler("cpu", init_scale=8.0)
    for idx, y in _batches(3):
        od.zero_grad()
        ot.zero_grad()
        sd.scale(((d(distnn.tensor(idx)) - distnn.tensor(y)) ** 2).sum()).backward()
        st.scale(((t(torch.from_numpy(idx)) - torch.tensor(y)) ** 2).sum()).backward()
        sd.step(od)
        st.step(ot)
        sd.update()
        st.update()
        _assert_same(d, t)
