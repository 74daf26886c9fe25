"""Attributions (captum) vs the Skip RNN's decisions: shapes, and the agreement metrics on
constructed cases whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from skimviz.attribution import pixels as A
from skimviz.tasks import mnist as task


def _mask(T=100, used=30, seed=0):
    rng = np.random.default_rng(seed)
    u = np.zeros(T)
    u[rng.choice(T, used, replace=False)] = 1
    return u


def test_all_mass_on_used_gives_one():
    u = _mask()
    attr = u * np.random.default_rng(1).uniform(0.1, 1.0, u.size)
    assert A.mass_on_used(attr, u) == 1.0
    assert A.used_auc(attr, u, k=int(u.sum())) == 1.0
    # a k smaller than the used count: every top-k is used, but so are some others
    auc = A.used_auc(attr, u, k=10)
    assert 0.5 < auc < 1.0


def test_all_mass_on_skipped_gives_zero():
    u = _mask()
    attr = (1 - u) * np.random.default_rng(2).uniform(0.1, 1.0, u.size)
    assert A.mass_on_used(attr, u) == 0.0
    assert A.used_auc(attr, u, k=int((1 - u).sum())) == 0.0


def test_negative_attribution_counts_by_magnitude():
    u = _mask()
    attr = -u * 3.0
    assert A.mass_on_used(attr, u) == 1.0


def test_random_attribution_is_at_chance():
    rng = np.random.default_rng(3)
    u = (rng.random(20_000) < 0.5).astype(float)
    attr = rng.normal(size=u.size)
    assert A.mass_on_used(attr, u) == pytest.approx(0.5, abs=0.02)
    assert A.used_auc(attr, u) == pytest.approx(0.5, abs=0.02)


def test_auc_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(4)
    y = rng.random(60) < 0.3
    s = rng.integers(0, 4, 60).astype(float)  # many ties
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert A.roc_auc(y, s) == pytest.approx(pairs)
    assert np.isnan(A.roc_auc(np.zeros(5, bool), s[:5]))


def test_rankdata_average_ties():
    np.testing.assert_allclose(A.rankdata([10, 20, 20, 5]), [2, 3.5, 3.5, 1])


def test_metric_input_checks():
    with pytest.raises(ValueError):
        A.mass_on_used([1, 2], [1])
    with pytest.raises(ValueError):
        A.mass_on_used([1, 2], [0.5, 1])
    with pytest.raises(ValueError):
        A.used_auc([1, 2, 3], [0, 1, 1], k=3)
    assert np.isnan(A.mass_on_used([0, 0], [0, 1]))


# --- a tiny model, dry-run style -----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = task.make_model("gru", 8).eval()
    model.rnn.gate.bias.data.fill_(-1.0)  # skip some pixels so both classes of "used" exist
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 28, 28)).astype(np.uint8)
    images[:, :, :4] = 0
    return model, images


@pytest.mark.parametrize("method", ["ig", "saliency"])
def test_attribution_shape_and_finite(tiny, method):
    model, images = tiny
    a = A.attribute_digit(model, images[0], side=7, method=method, steps=8)
    assert a.shape == (49,) and a.dtype == np.float64 and np.isfinite(a).all()
    assert np.abs(a).sum() > 0
    assert not model.training  # mode restored


def test_blend_path_takes_the_inference_decisions(tiny):
    """With an input that requires grad, eval() takes the differentiable path: same decisions."""
    model, images = tiny
    pred = task.predict_digit(model, images[0], 7)
    x = torch.tensor(images[:1] / 255.0, dtype=torch.float32)
    x = torch.nn.functional.avg_pool2d(x[:, None], 4).reshape(1, 49, 1).requires_grad_(True)
    _, trace = model(x, return_trace=True)
    assert trace.update.requires_grad  # the straight-through path
    assert trace.update[0].detach().tolist() == pred["update"]
    assert 0 < pred["updates"] < 49


def test_saliency_is_zero_on_skipped_pixels(tiny):
    """Known answer: with the decisions fixed, a skipped pixel never reaches the output (Eq. 3
    multiplies its candidate state by u_t = 0), so its gradient is exactly 0."""
    model, images = tiny
    pred = task.predict_digit(model, images[1], 7)
    a = A.attribute_digit(model, images[1], side=7, method="saliency")
    skipped = np.asarray(pred["update"]) == 0
    assert skipped.any() and (a[skipped] == 0).all()
    assert A.mass_on_used(a, pred["update"]) == 1.0


def test_ig_black_pixels_get_zero(tiny):
    """IG's baseline is the black image: a black pixel's attribution is exactly 0."""
    model, images = tiny
    a = A.attribute_digit(model, images[0], side=7, method="ig", steps=8)
    black = (images[0].reshape(7, 4, 7, 4).mean(axis=(1, 3)) == 0).reshape(-1)
    assert black.any() and (a[black] == 0).all()


@pytest.mark.parametrize("method", ["ig", "saliency"])
def test_agreement_over_set(tiny, method):
    model, images = tiny
    s = A.agreement_over_set(model, images, side=7, n=5, method=method, steps=4, batch_size=2)
    assert s["n"] == 5 and len(s["mass_on_used"]) == 5 and len(s["used_auc"]) == 5
    assert 0.0 <= s["mass_on_used_mean"] <= 1.0 and 0.0 < s["used_fraction_mean"] <= 1.0
    assert s["k"] == 5
    one = A.attribute_digit(model, images[2], side=7, method=method, steps=4)
    pred = task.predict_digit(model, images[2], 7)
    assert s["mass_on_used"][2] == pytest.approx(A.mass_on_used(one, pred["update"]), rel=1e-4)


def test_integrated_gradients_are_complete_on_a_dense_model():
    """IG's completeness (Sundararajan et al. 2017): for a smooth model the scores sum to
    logit(x) − logit(black). Gauss–Legendre weights sum to 1, so 32 points get within 1 %;
    captum's riemann_trapezoid would miss by its weights' sum, (n − 1)/n ≈ 3 %."""
    torch.manual_seed(0)
    model = task.make_model("gru", hidden=16, skip=False).eval()
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(28, 28)).astype(np.uint8)
    a = A.attribute_digit(model, image, side=7, method="ig", target=3)
    from skimviz.data import mnist
    x = mnist.to_sequence(image[None], 7)
    with torch.no_grad():
        gap = float(model(x)[0, 3] - model(torch.zeros_like(x))[0, 3])
    assert abs(gap) > 1e-3
    assert a.sum() == pytest.approx(gap, rel=0.01)
