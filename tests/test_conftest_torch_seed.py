"""tests/conftest.py starts torch's generator from each test's own seed, as torch.manual_seed would."""
from conftest import _seed_for


def test_each_test_draws_from_torch_as_after_torch_manual_seed_of_its_seed(request, torch):
    first = torch.rand(6), torch.randn(4, dtype=torch.float64), torch.randint(0, 1000, (5,))
    torch.manual_seed(_seed_for(request.node.nodeid))
    again = torch.rand(6), torch.randn(4, dtype=torch.float64), torch.randint(0, 1000, (5,))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
