"""Generators of the Skip RNN paper's synthetic tasks (Sec. 4.1 and 4.2)."""
import pytest
import torch

from skimviz.data import synthetic


def test_adding_task_shapes_markers_and_target():
    x, y = synthetic.adding_task(2000, 50, seed=1)
    assert x.shape == (2000, 50, 2) and y.shape == (2000,)
    m = x[..., 1]
    assert torch.equal(m.sum(1), torch.full((2000,), 2.0))
    pos = m.nonzero()[:, 1].view(2000, 2)
    assert pos[:, 0].max() < 5 and pos[:, 1].min() >= 25  # first 10 %, last half
    assert set(pos[:, 0].tolist()) == set(range(5))
    torch.testing.assert_close(y, (x[..., 0] * m).sum(1))
    assert x[..., 0].min() >= -0.5 and x[..., 0].max() < 0.5
    assert y.var().item() == pytest.approx(synthetic.ADDING_TARGET_VARIANCE, rel=0.1)


def test_adding_task_is_seeded():
    a, b = synthetic.adding_task(10, seed=3), synthetic.adding_task(10, seed=3)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], synthetic.adding_task(10, seed=4)[0])


@pytest.mark.parametrize("ts,T", [(1.0, 100), (0.5, 200)])
def test_frequency_task(ts, T):
    x, y, period = synthetic.frequency_task(4000, ts, seed=0)
    assert x.shape == (4000, T, 1) and y.float().mean() == 0.5
    assert torch.equal(y[:8], torch.tensor([1, 0] * 4))  # stratified: any even batch is balanced
    pos, neg = period[y == 1], period[y == 0]
    assert pos.min() > 5 and pos.max() < 6
    assert neg.min() > 1 and neg.max() < 100
    assert not ((neg > 5) & (neg < 6)).any()
    assert 0.02 < (neg < 5).float().mean() < 0.07  # 4 of the 98 ms of negative range
    assert x.abs().max() <= 1.0


def test_frequency_task_bad_sampling():
    with pytest.raises(ValueError):
        synthetic.frequency_task(2, 0.0)
