"""Synthetic sequence tasks of the Skip RNN paper (Campos et al., ICLR 2018), generated in code
from a seed (no files needed).

* :func:`adding_task` (Sec. 4.1, after Neil et al.): (value, marker) pairs; the target is the sum
  of the two marked values.
* :func:`frequency_task` (Sec. 4.2): sine waves, period in (5, 6) ms (class 1) or in
  (1, 5) ∪ (6, 100) ms (class 0), random phase, 100 ms sampled every ``sampling_ms``.
"""
from __future__ import annotations

from typing import Tuple

import torch

ADDING_TARGET_VARIANCE = 2.0 / 12.0  # Var(a + b) for a, b ~ U(-0.5, 0.5) independent


def adding_task(n: int, length: int = 50, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Returns x (n, length, 2) = (value, marker) and y (n,) = sum of the two marked values.

    Values ~ U(−0.5, 0.5). The first marker is uniform over the first 10 % of the steps, the
    second over the last half (Sec. 4.1), so at least 40 % of the steps are pure distractors.
    """
    if length < 10:
        raise ValueError("length must be at least 10")
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, length, generator=g) - 0.5
    first = torch.randint(0, max(1, length // 10), (n,), generator=g)
    second = torch.randint(length - length // 2, length, (n,), generator=g)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], dim=-1), y


def sample_periods(n: int, positive: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Periods in ms: U(5, 6) for positives; uniform over (1, 5) ∪ (6, 100) for negatives."""
    u = torch.rand(n, generator=g)
    neg = torch.where(u < 4.0 / 98.0, 1.0 + u * 98.0, 6.0 + (u * 98.0 - 4.0))  # length 4 + 94
    pos = 5.0 + torch.rand(n, generator=g)
    return torch.where(positive, pos, neg)


def frequency_task(n: int, sampling_ms: float = 1.0, duration_ms: float = 100.0, seed: int = 0
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns x (n, T, 1) amplitudes, y (n,) class (1: period in (5, 6) ms) and the periods.

    T = duration / sampling period (100 at 1 ms, 200 at 0.5 ms). Classes alternate, so any
    batch of an even size is stratified (half of each class), as in the paper.
    """
    if sampling_ms <= 0:
        raise ValueError("sampling_ms must be positive")
    g = torch.Generator().manual_seed(seed)
    T = int(round(duration_ms / sampling_ms))
    y = (torch.arange(n) % 2 == 0).long()
    period = sample_periods(n, y.bool(), g)
    phase = torch.rand(n, generator=g) * period  # shift ~ U(0, T_period)
    t = torch.arange(T, dtype=torch.float32) * sampling_ms
    x = torch.sin(2 * torch.pi * (t[None, :] + phase[:, None]) / period[:, None])
    return x.unsqueeze(-1), y, period
