"""Small Tensor methods against torch: ``H``, the complex casts (``chalf`` refused: numpy has no complex32),
``data_ptr`` of views, ``get_device``, ``layout`` and the device/layout flags, ``dim_order``, ``output_nr``,
``new_empty_strided``, ``hardshrink``/``prelu`` methods, ``nonzero_static``, ``is_pinned``/``pin_memory``, and the
Python callables ``apply_``/``map_``/``map2_`` with torch's refusals."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

A = np.arange(12.0, dtype=np.float32).reshape(3, 4) - 5


def _both(array=A, grad=False):
    return distnn.Tensor(array.copy(), requires_grad=grad), torch.tensor(array, requires_grad=grad)


def _raises_as_torch(fd, ft, exact=True):
    with pytest.raises(Exception) as et:
        ft()
    with pytest.raises(type(et.value)) as ed:
        fd()
    if exact:
        assert str(ed.value) == str(et.value)
    return ed.value, et.value


def test_conjugate_transpose_H():
    xd, xt = _both()
    hd, ht = xd.H, xt.H
    np.testing.assert_array_equal(hd.data, ht.numpy())
    assert hd.stride() == ht.stride()
    hd.mul_(2.0), ht.mul_(2.0)  # (a view, as torch's for a real matrix)
    np.testing.assert_array_equal(xd.data, xt.numpy())
    z = A[:2, :3] + 1j * A[1:, 1:]
    np.testing.assert_array_equal(distnn.Tensor(z).H.data, torch.tensor(z).H.resolve_conj().numpy())
    for shape in ((3,), (2, 2, 2)):
        _raises_as_torch(lambda: distnn.Tensor(np.zeros(shape)).H, lambda: torch.zeros(shape).H)


def test_complex_casts_and_chalf_refused():
    xd, xt = _both()
    for name in ("cfloat", "cdouble"):
        rd, rt = getattr(xd, name)(), getattr(xt, name)()
        assert rd.dtype == np.dtype(str(rt.dtype).replace("torch.", ""))
        np.testing.assert_array_equal(rd.data, rt.numpy())
    with pytest.raises(TypeError, match="numpy has no complex32"):
        xd.chalf()


def test_data_ptr_of_views_and_get_device():
    xd, xt = _both()
    for view in (lambda x: x[1], lambda x: x[1:, 2:], lambda x: x.t()[2], lambda x: x.reshape(-1)[5:]):
        assert view(xd).data_ptr() - xd.data_ptr() == view(xt).data_ptr() - xt.data_ptr()
    assert xd.clone().data_ptr() != xd.data_ptr()
    assert distnn.Tensor(np.zeros(0)).data_ptr() == torch.zeros(0).data_ptr() == 0
    assert xd.get_device() == xt.get_device() == -1


FLAGS = ("is_meta", "is_sparse", "is_sparse_csr", "is_quantized", "is_nested", "is_mkldnn", "is_vulkan", "is_xla",
         "is_xpu", "is_ipu", "is_maia", "is_mps", "is_mtia")


def test_layout_and_flags():
    xd, xt = _both()
    assert [getattr(xd, f) for f in FLAGS] == [getattr(xt, f) for f in FLAGS] == [False] * len(FLAGS)
    assert xd.layout is distnn.strided and repr(distnn.strided) == repr(xt.layout).replace("torch", "distnn")
    assert isinstance(distnn.strided, distnn.layout)
    assert xd.is_pinned() is xt.is_pinned() is False


@pytest.mark.skipif(distnn.backend.gpu_available(), reason="pins memory where there is a GPU")
def test_pin_memory_without_an_accelerator_as_torch():
    if torch.cuda.is_available():
        pytest.skip("torch has a GPU here")
    xd, xt = _both()
    _raises_as_torch(lambda: xd.pin_memory(), lambda: xt.pin_memory())


@pytest.mark.parametrize("make", [lambda lib, x: x, lambda lib, x: x.t(), lambda lib, x: x.reshape(1, 3, 4, 1),
                                  lambda lib, x: x.reshape(1, 3, 2, 2).contiguous(memory_format=lib.channels_last),
                                  lambda lib, x: x.reshape(3, 1, 4)])
def test_dim_order(make):
    xd, xt = _both()
    assert make(distnn, xd).dim_order() == make(torch, xt).dim_order()


def test_dim_order_ambiguity_check():
    _raises_as_torch(lambda: distnn.Tensor(np.zeros((2, 1, 3))).dim_order(ambiguity_check=True),
                     lambda: torch.zeros(2, 1, 3).dim_order(ambiguity_check=True))
    assert distnn.Tensor(np.zeros((2, 3))).dim_order(ambiguity_check=True) == (0, 1)


def test_output_nr_of_a_single_output():
    xd, xt = _both(grad=True)
    assert xd.output_nr == xt.output_nr == 0
    assert (xd * 2).output_nr == (xt * 2).output_nr == 0


@pytest.mark.parametrize("size,stride", [((2, 3), (1, 2)), ((2, 3), (3, 1)), ((4,), (3,)), ((2, 0), (1, 1))])
def test_new_empty_strided(size, stride):
    xd, xt = _both(A.astype(np.float64))
    rd, rt = xd.new_empty_strided(size, stride), xt.new_empty_strided(size, stride)
    assert rd.shape == tuple(rt.shape) and rd.stride() == rt.stride() and rd.dtype == np.float64
    assert xd.new_empty_strided(size, stride, dtype=np.int32).dtype == np.int32
    assert xd.new_empty_strided(size, stride, requires_grad=True).requires_grad


def test_hardshrink_and_prelu_methods():
    xd, xt = _both(A.astype(np.float64) / 3, grad=True)
    wd, wt = distnn.Tensor(np.array([0.25]), requires_grad=True), torch.tensor([0.25], dtype=torch.float64,
                                                                               requires_grad=True)
    rd, rt = xd.hardshrink(1.0) + xd.prelu(wd), xt.hardshrink(1.0) + xt.prelu(wt)
    np.testing.assert_allclose(rd.data, rt.detach().numpy(), rtol=1e-13)
    rd.sum().backward(), rt.sum().backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(wd.grad, wt.grad.numpy(), rtol=1e-13)


@pytest.mark.parametrize("array,size,fill", [(np.array([[0, 1], [2, 0]]), 4, -1), (np.array([[0, 1], [2, 0]]), 1, 7),
                                             (np.array([0.0, 1.0]), 0, -1), (np.array(3.0), 2, -1),
                                             (np.zeros((2, 0)), 2, -1), (np.array([1.0, 2, 3]), 3, 5)])
def test_nonzero_static(array, size, fill):
    rd = distnn.nonzero_static(distnn.Tensor(array), size=size, fill_value=fill)
    rt = torch.nonzero_static(torch.tensor(array), size=size, fill_value=fill)
    assert rd.dtype == np.int64 and rd.shape == tuple(rt.shape)
    np.testing.assert_array_equal(rd.data, rt.numpy())
    np.testing.assert_array_equal(distnn.Tensor(array).nonzero_static(size=size, fill_value=fill).data, rt.numpy())
    _raises_as_torch(lambda: distnn.nonzero_static(distnn.Tensor(array), size=-1),
                     lambda: torch.nonzero_static(torch.tensor(array), size=-1))


def test_apply_map_map2_values():
    xd, xt = _both()
    assert xd.apply_(lambda v: v * 2 + 1) is xd and xt.apply_(lambda v: v * 2 + 1) is xt
    np.testing.assert_array_equal(xd.data, xt.numpy())
    od, ot = _both(np.arange(4.0, dtype=np.float32))
    xd.map_(od, lambda a, b: a - b), xt.map_(ot, lambda a, b: a - b)  # (the other broadcast)
    np.testing.assert_array_equal(xd.data, xt.numpy())
    yd, yt = _both(np.full((3, 1), 0.5, dtype=np.float32))
    xd.map2_(od, yd, lambda a, b, c: a * c + b), xt.map2_(ot, yt, lambda a, b, c: a * c + b)
    np.testing.assert_array_equal(xd.data, xt.numpy())
    # (torch 2.13 leaves the version as it was, so a graph that saved the tensor would not notice the change:
    # distnn counts each as an in-place write)
    assert xd._version == 3
    id_, it = _both(np.arange(3))
    id_.apply_(lambda v: v * 2.7), it.apply_(lambda v: v * 2.7)  # (a float into an integer tensor truncates)
    np.testing.assert_array_equal(id_.data, it.numpy())


def test_apply_map_refusals_as_torch():
    gd, gt = _both(grad=True)
    xd, xt = _both()
    _raises_as_torch(lambda: gd.apply_(lambda v: v), lambda: gt.apply_(lambda v: v))
    _raises_as_torch(lambda: xd.map_(gd, lambda a, b: a), lambda: xt.map_(gt, lambda a, b: a))
    _raises_as_torch(lambda: xd.map2_(xd, gd, lambda a, b, c: a), lambda: xt.map2_(xt, gt, lambda a, b, c: a))
    _raises_as_torch(lambda: xd.apply_(lambda v: "s"), lambda: xt.apply_(lambda v: "s"))
    ed, et = _raises_as_torch(lambda: xd.map_(distnn.Tensor(np.ones(4)), lambda a, b: a),
                              lambda: xt.map_(torch.ones(4, dtype=torch.float64), lambda a, b: a), exact=False)
    assert str(ed) == str(et).replace("torch.", "distnn.")
    _raises_as_torch(lambda: xd.map_(distnn.Tensor(np.ones(5, np.float32)), lambda a, b: a),
                     lambda: xt.map_(torch.ones(5), lambda a, b: a), exact=False)
