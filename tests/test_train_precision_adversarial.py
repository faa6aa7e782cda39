"""Adversarial training (``adversarial_eps``) under ``precision = "16-mixed"``: the FGSM input gradient.

Under autocast the input gradient flows back through float16 activations. Taken on the unscaled loss, it
underflows to zero for confidently classified samples (their ``p - y`` is below float16's range), and a zero
gradient leaves the input unperturbed: a well-trained model then trains on fewer and fewer adversarial
inputs (a loss scale large enough for those overflows on the misclassified ones). The trainer takes FGSM's
gradient in float32. Oracle: the float32 FGSM perturbation of the same weights.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.amp import GradScaler
from distnn.data import Dataset, build_transforms, load_dataset
from distnn.distributed import LocalCommunicator
from distnn.models import build_model
from distnn.optim import SGD, Adam
from distnn.train import adversarial
from distnn.train.trainer import Trainer


@pytest.fixture(scope="module")
def confident():
    """A digits MLP trained in float32 until most training samples are classified with p(y) > 1 - 1e-3."""
    splits = load_dataset("digits")
    aug_tf, eval_tf = build_transforms(splits)
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[64], input_shape=splits.input_shape, num_classes=10)
    Trainer(model, Adam(model.parameters(), lr=3e-3), splits.train, comm=LocalCommunicator(), batch_size=64,
            epochs=12, transform=aug_tf, seed=3).fit()
    last = [p for n, p in model.named_parameters() if n.endswith("weight")][-1]
    last.data *= 2.0  # (sharper still: the regime of a long run's last epochs)
    x, y = np.asarray(eval_tf(splits.train.x[:128]), dtype=np.float32), splits.train.y[:128]
    return model, x, y


def _adversarial_step(model, x, y, eps, scaler):
    """One 16-mixed adversarial training step on (x, y); the inputs FGSM made for it."""
    made = []
    fgsm = adversarial.fgsm

    def recording(*args, **kw):
        made.append(fgsm(*args, **kw))
        return made[-1]

    adversarial.fgsm = recording
    try:
        Trainer(model, SGD(model.parameters(), lr=0.0), Dataset(x, y, 10), comm=LocalCommunicator(),
                batch_size=len(x), epochs=1, shuffle=False, adversarial_eps=eps, precision="16-mixed",
                grad_scaler=scaler).fit()
    finally:
        adversarial.fgsm = fgsm
    assert len(made) == 1
    return made[0]


def test_fgsm_under_16_mixed_takes_the_float32_signs(confident):
    model, x, y = confident
    eps = 0.25
    model.train()
    loss = float(F.cross_entropy(model(distnn.Tensor(x)), y).data)
    assert loss < 5e-3
    # the float32 oracle on the same weights, and the gradient it takes its signs from
    inp = distnn.Tensor(x.copy(), requires_grad=True)
    F.cross_entropy(model(inp), y, reduction="sum").backward()
    g32 = inp.grad
    ref = adversarial.fgsm(model, lambda o, t: F.cross_entropy(o, t, reduction="sum"), x, y, eps)
    assert np.count_nonzero(ref == x) == 0
    x_adv = _adversarial_step(model, x, y, eps, GradScaler("cpu"))  # (lr 0: the weights stay)
    clear = np.abs(g32) > 1e-3 * np.abs(g32).max(axis=1, keepdims=True)  # not tiny within its own sample
    unmoved = np.mean(x_adv == x)
    # before: 17 % of the input components unmoved (float16 underflow), the signs lost there
    assert unmoved < 1e-3, f"{unmoved:.1%} of the inputs were not perturbed (their float16 gradient underflowed)"
    np.testing.assert_array_equal(np.sign(x_adv - x)[clear], np.sign(ref - x)[clear])
    assert np.isfinite(x_adv).all()

