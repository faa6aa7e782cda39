"""Shared by the tests/test_torch_edge_cases_*.py files: one array as a distnn and a torch tensor that require grad
(pair), and a comparison relative to the dtype's precision (assert_relative)."""
from distnn import Tensor


def pair(torch, a):
    return Tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)
