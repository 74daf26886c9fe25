"""Which Transkimmer evaluation is exported: FLOP reduction and per-layer drop limits."""
import pytest

from skimviz.tasks import transkimmer as tk


def test_layer_drops_are_shares_of_all_tokens():
    assert tk.layer_drops([1.0, 0.0613, 0.0613, 0.0613]) == pytest.approx([0, 0.9387, 0, 0])
    assert tk.layer_drops([0.5, 0.25, 0.1, 0.1]) == pytest.approx([0.5, 0.25, 0.15, 0])


def test_score_prefers_layer_wise_skimming_within_the_limits():
    one_layer = {"accuracy": 0.81, "flops_reduction": 3.1,
                 "kept_fraction_per_layer": [1.0, 0.06, 0.06, 0.06]}
    spread = {"accuracy": 0.80, "flops_reduction": 2.4,
              "kept_fraction_per_layer": [0.5, 0.3, 0.1, 0.1]}
    weak = {"accuracy": 0.82, "flops_reduction": 1.3,
            "kept_fraction_per_layer": [1.0, 1.0, 0.4, 0.4]}
    pick = lambda vs, **kw: max(vs, key=lambda v: tk._score(v, 1.8, False, **kw))  # noqa: E731
    assert pick([one_layer, spread, weak]) is one_layer               # no limit: best accuracy
    assert pick([one_layer, spread, weak], max_drop=0.75) is spread   # the limit rules it out
    assert tk._score(weak, 1.8, True) == (1, 0.82)                    # dense: accuracy only


def test_layer_drop_penalty_is_zero_within_the_limit_and_grows_beyond():
    import torch
    ratios = torch.tensor([[1.0, 0.5, 0.3, 0.3], [1.0, 0.05, 0.05, 0.05]], requires_grad=True)
    pen = tk.layer_drop_penalty(ratios, 0.7)
    # row 0 never drops more than 0.5; row 1 drops 0.95 before layer 2: (0.95 − 0.7) / 2 rows
    assert float(pen) == pytest.approx(0.125)
    pen.backward()
    assert ratios.grad[1, 1] < 0 and ratios.grad[0].abs().sum() == 0   # only the big drop
    assert float(tk.layer_drop_penalty(ratios.detach(), 1.0)) == 0.0
