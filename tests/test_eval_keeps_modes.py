"""Evaluation restores every submodule's own mode, not just the top module's.

A model in training mode with a frozen part (``model.bn.eval()``: fine-tuning with fixed batch-norm
statistics) came out of ``predict_proba``/``evaluate_arrays`` (and ``CharLM.generate``) with the frozen
part back in training mode: they restored the mode with ``model.train(was_training)``, which sets every
submodule. Lightning (2.2 on) likewise restores each submodule's mode after validation.
"""
import numpy as np

import distnn
from distnn import models, nn
from distnn.train.batch_eval import evaluate_arrays
from distnn.train.inference import predict_proba


def _model_with_frozen_norm():
    m = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3))
    m.train()
    m[1].eval()
    return m


def _modes(m):
    return [sub.training for sub in m.modules()]


def test_predict_proba_keeps_each_submodules_mode():
    m = _model_with_frozen_norm()
    before = _modes(m)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    predict_proba(m, x, None)
    assert _modes(m) == before
    predict_proba(m, x, None, mc_samples=3)
    assert _modes(m) == before
    assert not m[1].training and m.training and m[3].training


def test_evaluate_arrays_keeps_each_submodules_mode():
    m = _model_with_frozen_norm()
    before = _modes(m)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    evaluate_arrays(m, x, np.array([0, 1, 2, 0, 1]), np.ones(5, bool), None, 2, num_classes=3)
    assert _modes(m) == before


def test_generate_keeps_each_submodules_mode():
    lm = models.CharLM(vocab_size=5, arch="lstm", hidden_size=4, num_layers=1)
    lm.train()
    lm.embedding.eval()
    before = _modes(lm)
    lm.generate(np.zeros((1, 2), np.int64), 2, generator=np.random.default_rng(0))
    assert _modes(lm) == before


def test_a_model_in_eval_mode_stays_there():
    m = _model_with_frozen_norm().eval()
    predict_proba(m, np.zeros((2, 4), np.float32), None)
    assert not any(_modes(m))
    assert distnn.is_grad_enabled()


def test_predict_proba_takes_a_tensor_or_lists_and_no_transform():
    """``predict_proba(model, x)`` as a PyTorch user calls a model: a Tensor input failed with
    "'Tensor' object has no attribute 'copy'", a list with "'list' object has no attribute 'dtype'",
    and ``transform`` had no default."""
    m = _model_with_frozen_norm()
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    expected = predict_proba(m, x, None)
    np.testing.assert_array_equal(predict_proba(m, distnn.tensor(x)), expected)
    np.testing.assert_array_equal(predict_proba(m, x.tolist()), expected)


def test_predict_proba_of_no_rows_has_the_class_axis():
    """0 rows give (0, C) (and (0, T, C) for a model that predicts every position), as the docstring says, in the
    dtype the rows would have had."""
    m = _model_with_frozen_norm()
    before = _modes(m)
    probs = predict_proba(m, np.zeros((0, 4), dtype=np.float32), None)
    assert probs.shape == (0, 3) and probs.dtype == np.float32
    assert _modes(m) == before
    assert predict_proba(m, np.zeros((0, 4), dtype=np.float32), None, mc_samples=3).shape == (0, 3)
    lm = models.CharLM(vocab_size=7, d_model=8, nhead=2, num_layers=1, dim_feedforward=16)
    assert predict_proba(lm, np.zeros((0, 6), dtype=np.int64), None).shape == (0, 6, 7)
