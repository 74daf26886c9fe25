"""MNIST loading (bundled and idx files), the split, pixel sequences and user images."""
import gzip
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from skimviz.data import images, mnist

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_bundled_digits():
    x, y = mnist.load_bundled()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (5000,) and set(np.unique(y)) == set(range(10))
    assert not x.flags.writeable  # shared between sessions: read-only
    assert x.max() == 255 and x.min() == 0


def _write_idx(d: Path, prefix: str, x: np.ndarray, y: np.ndarray):
    (d / "mnist").mkdir(parents=True, exist_ok=True)
    with gzip.open(d / "mnist" / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\0\0\x08\x03" + len(x).to_bytes(4, "big") + b"\0\0\0\x1c\0\0\0\x1c" + x.tobytes())
    with gzip.open(d / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\0\0\x08\x01" + len(y).to_bytes(4, "big") + y.astype(np.uint8).tobytes())


def test_idx_reader_and_split(tmp_path):
    bx, by = mnist.load_bundled()
    rng = np.random.default_rng(0)
    fresh = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    x = np.concatenate([bx[:3], fresh, bx[10:12]])
    y = np.concatenate([by[:3], np.arange(6), by[10:12]])
    _write_idx(tmp_path, "train", x, y)
    rx, ry = mnist.load_idx(tmp_path, "train")
    assert np.array_equal(rx, x) and np.array_equal(ry, y)
    sx, sy = mnist.train_split(tmp_path)  # bundled digits are held out
    assert np.array_equal(sx, fresh) and np.array_equal(sy, np.arange(6))
    with pytest.raises(FileNotFoundError):
        mnist.load_idx(tmp_path, "test")


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="../shared/data not present")
def test_full_mnist_split_holds_out_exactly_the_bundled_digits():
    x, y = mnist.train_split(SHARED)
    assert x.shape == (55000, 28, 28) and len(y) == 55000


def test_to_sequence():
    x, _ = mnist.load_bundled()
    s = mnist.to_sequence(x[:2])
    assert s.shape == (2, 784, 1) and s.dtype == torch.float32
    assert torch.allclose(s[0, :, 0].reshape(28, 28), torch.tensor(x[0] / 255.0, dtype=torch.float32))
    s14 = mnist.to_sequence(x[:2], 14)
    assert s14.shape == (2, 196, 1)
    assert s14[0, 0, 0].item() == pytest.approx(x[0, :2, :2].mean() / 255.0, abs=1e-6)
    with pytest.raises(ValueError):
        mnist.to_sequence(x[:1], 5)


def _png(arr: np.ndarray, mode="L") -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def test_image_to_digit_dark_on_light_is_inverted_and_centred():
    canvas = np.full((100, 80), 255, np.uint8)
    canvas[20:80, 30:40] = 0  # a black vertical stroke on white paper: a "1"
    d = images.image_to_digit(_png(canvas, "RGB"))
    assert d.shape == (28, 28) and d.dtype == np.uint8
    assert d[14, 14] > 200 and d[0, 0] == 0 and d[:, :4].max() == 0
    ys, xs = np.nonzero(d)
    assert ys.max() - ys.min() + 1 == 20  # scaled to fit a 20-pixel box, as MNIST


def test_image_to_digit_roundtrips_an_mnist_digit():
    x, _ = mnist.load_bundled()
    d = images.image_to_digit(_png(np.ascontiguousarray(x[7])))
    assert np.corrcoef(d.ravel().astype(float), x[7].ravel().astype(float))[0, 1] > 0.8


@pytest.mark.parametrize("data,msg", [
    (b"", "empty"),
    (b"hello, not an image", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not an image"),
])
def test_image_to_digit_rejects_junk(data, msg):
    with pytest.raises(images.ImageError, match=msg):
        images.image_to_digit(data)


def test_image_to_digit_rejects_huge_and_blank():
    with pytest.raises(images.ImageError, match="limit"):
        images.image_to_digit(b"\0" * (images.MAX_UPLOAD_BYTES + 1))
    with pytest.raises(images.ImageError, match="blank"):
        images.image_to_digit(_png(np.zeros((30, 30), np.uint8)))
    from PIL import Image
    buf = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buf, format="PNG")  # tiny file, 25 megapixels
    with pytest.raises(images.ImageError, match="4096"):
        images.image_to_digit(buf.getvalue())
