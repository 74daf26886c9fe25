"""skimviz.data.images: safe decoding of uploads (PNG and JPEG only, size and pixel limits, clear
messages), MNIST's preparation of photos, and the "does this look like a digit" check.

The photo-like digits are drawn here: a dark stroke, slightly blurred, on paper whose brightness
runs from grey to white across the sheet (uneven lighting), with sensor noise, saved as PNG or
JPEG.
"""
from __future__ import annotations

import io
import struct
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from skimviz import safety
from skimviz.data import images, mnist

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist"


# --- drawing ---------------------------------------------------------------------------------------
def encode(arr_or_image, fmt: str = "PNG", **kw) -> bytes:
    im = arr_or_image if isinstance(arr_or_image, Image.Image) else Image.fromarray(arr_or_image)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def strokes(kind: str, width: int, h: int = 300, w: int = 240) -> np.ndarray:
    """A digit's strokes (0–1, anti-aliased) on an h×w sheet."""
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    if kind == "1":
        d.line([(125, 60), (115, 240)], fill=255, width=width)
    elif kind == "7":
        d.line([(70, 70), (175, 70), (110, 240)], fill=255, width=width, joint="curve")
    elif kind == "0":
        d.ellipse([75, 55, 170, 245], outline=255, width=width)
    else:
        raise ValueError(kind)
    return np.asarray(m.filter(ImageFilter.GaussianBlur(1.5)), np.float32) / 255.0


def photo(kind: str, width: int = 12, paper=(110, 240), ink: float = 40.0, seed: int = 0,
          light_on_dark: bool = False) -> np.ndarray:
    """A photo-like digit: ``paper`` brightness rising from one corner to the other (uneven
    light), noise of σ = 4 grey levels; dark ink on it, or chalk on a dark board."""
    m = strokes(kind, width)
    h, w = m.shape
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = 0.6 * xx / w + 0.4 * yy / h
    sheet = paper[0] + (paper[1] - paper[0]) * ramp
    sheet = sheet + np.random.default_rng(seed).normal(0, 4, sheet.shape)
    img = sheet * (1 - m) + ink * m
    if light_on_dark:
        img = 255 - img
    return np.clip(img, 0, 255).astype(np.uint8)


def centre_of_mass(d: np.ndarray) -> tuple[float, float]:
    iy, ix = np.indices(d.shape)
    t = d.astype(float).sum()
    return float((iy * d).sum() / t), float((ix * d).sum() / t)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming ``width``×``height`` (no pixel data): opening it reads
    the size, loading it would fail."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


# --- formats and limits --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["TIFF", "WEBP", "GIF", "BMP"])
def test_only_png_and_jpeg_are_opened(fmt):
    data = encode(photo("7"), fmt)
    with pytest.raises(images.ImageError, match="only PNG and JPEG"):
        images.image_to_digit(data)


def test_an_eps_renamed_png_never_reaches_ghostscript(monkeypatch):
    """EPS is opened by Pillow through Ghostscript (an external interpreter): a file that says
    it is a PNG must never get there."""
    from PIL import EpsImagePlugin

    calls = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    eps = encode(Image.fromarray(photo("1")).convert("RGB"), "EPS")
    with pytest.raises(images.ImageError, match="only PNG and JPEG"):
        images.image_to_digit(eps)
    assert calls == []


@pytest.mark.parametrize("data", [
    b"hello, not an image",
    b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
    encode(photo("7"))[:400],                 # truncated PNG
    encode(photo("7"), "JPEG")[:600],         # truncated JPEG
    b"\xff\xd8\xff\xe0" + b"\0" * 50,          # a JPEG header and nothing else
])
def test_decoder_errors_are_plain_messages(data):
    with pytest.raises(images.ImageError) as e:
        images.image_to_digit(data)
    msg = str(e.value)
    assert "PNG and JPEG" in msg
    for leak in ("BytesIO", "<", "0x", "Traceback", "Error"):
        assert leak not in msg


def test_size_limit_message_states_true_sizes():
    assert images.MAX_UPLOAD_BYTES == 2 * 2**20
    with pytest.raises(images.ImageError) as e:
        images.check_size(27 * 2**20 + 5)
    assert str(e.value) == "the file is 27.0 MiB; the limit is 2.0 MiB"
    # just over the limit: both round to "2.0 MiB", so the exact bytes are given
    with pytest.raises(images.ImageError) as e:
        images.image_to_digit(b"\0" * (images.MAX_UPLOAD_BYTES + 1))
    assert "2,097,153 bytes" in str(e.value) and "2,097,152 bytes" in str(e.value)
    with pytest.raises(images.ImageError, match="empty"):
        images.check_size(0)
    images.check_size(images.MAX_UPLOAD_BYTES)  # the limit itself is allowed


def test_server_upload_limit_matches_the_uploaders():
    """The server refuses what the uploader's help text promises it refuses (the browser-only
    check is not a limit: see tests/browser/test_upload_journeys.py for the real server)."""
    cfg = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["maxUploadSize"] * 2**20 == images.MAX_UPLOAD_BYTES


@pytest.mark.parametrize("side", [5000, 10_000, 20_000, 100_000])
def test_too_many_pixels_is_refused_before_decoding(side):
    """A few bytes can claim a huge image (a decompression bomb): the size in the header is
    checked first, with the limit in the message, whether or not Pillow's own bomb guard
    (about 179 megapixels) fires first."""
    with pytest.raises(images.ImageError, match="4096×4096"):
        images.image_to_digit(png_header_only(side, side))


def test_a_real_bomb_is_refused():
    data = encode(Image.new("1", (5000, 5000)))  # a small file, 25 megapixels
    assert len(data) < images.MAX_UPLOAD_BYTES
    with pytest.raises(images.ImageError, match="5000×5000 pixels; the limit is 4096×4096"):
        images.image_to_digit(data)


# --- MNIST's preparation -------------------------------------------------------------------------------
def _assert_mnist_like(d: np.ndarray) -> None:
    assert d.shape == (28, 28) and d.dtype == np.uint8
    # black background: the corners are empty, and the paper left no grey wash
    assert max(d[:3, :3].max(), d[:3, -3:].max(), d[-3:, :3].max(), d[-3:, -3:].max()) == 0
    assert (d > 25).mean() < 0.4, (d > 25).mean()
    assert d.max() == 255  # bright ink
    ink = (d > 127).mean()
    assert 0.03 < ink < 0.35, ink  # strokes, not a grey box
    ys, xs = np.nonzero(d > 25)
    assert max(np.ptp(ys), np.ptp(xs)) + 1 in (20, 21)  # the longer side fits MNIST's 20-px box
    cy, cx = centre_of_mass(d)
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75  # centred by mass, as MNIST (14, 14)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("kind", ["1", "7", "0"])
def test_dark_digit_on_unevenly_lit_paper(kind, fmt):
    """Paper from grey (110) to white (240), ink at 40: the dark corner of the paper is darker
    than the ink is far from it, so a global threshold (or the 5th percentile) leaves a grey
    wedge of paper in the digit."""
    d = images.image_to_digit(encode(photo(kind), fmt))
    _assert_mnist_like(d)


def test_chalk_on_a_board_is_not_inverted():
    d = images.image_to_digit(encode(photo("7", light_on_dark=True)))
    _assert_mnist_like(d)


def test_a_ring_keeps_its_hole():
    d = images.image_to_digit(encode(photo("0", width=16)))
    _assert_mnist_like(d)
    assert d[12:17, 12:17].max() < 40  # the middle of the 0 stays dark
    assert images.digit_features(d)["holes"] == 1


def test_a_thin_pen_stroke_is_thickened_to_mnist_width():
    d = images.image_to_digit(encode(photo("1", width=3)))
    _assert_mnist_like(d)
    ys, xs = np.nonzero(d > 127)
    assert np.ptp(xs) + 1 >= 2  # not a one-pixel hairline


def test_transparent_drawings_keep_their_strokes():
    for ink, clear in (((0, 0, 0, 255), (0, 0, 0, 0)), ((255, 255, 255, 255), (255, 255, 255, 0))):
        im = Image.new("RGBA", (200, 240), clear)
        ImageDraw.Draw(im).line([(70, 40), (150, 40), (90, 200)], fill=ink, width=14)
        _assert_mnist_like(images.image_to_digit(encode(im)))


def test_sixteen_bit_grey_png():
    a = np.full((120, 100), 60000, np.uint16)
    a[20:100, 45:57] = 5000
    _assert_mnist_like(images.image_to_digit(encode(Image.fromarray(a))))


@pytest.mark.parametrize("data,msg", [
    (encode(np.full((50, 50), 200, np.uint8)), "blank"),
    (encode(np.random.default_rng(0).integers(0, 256, (300, 300)).astype(np.uint8)), "noise"),
])
def test_no_digit_found(data, msg):
    with pytest.raises(images.ImageError, match=msg):
        images.image_to_digit(data)


def test_shipped_model_reads_photo_digits():
    """The shipped skip-gru-mnist on photo-like digits after this preparation: a ring "0" and a
    "7" (a bar and a diagonal), each at three stroke widths, PNG and JPEG. These two read
    robustly (probability ≥ 0.75 in exploration over lighting, widths and jitter)."""
    from skimviz.tasks import mnist as task
    from skimviz.training import checkpoint

    try:
        model, _ = checkpoint.load("skip-gru-mnist", REPO_ROOT / "pretrained")
    except checkpoint.CheckpointError as e:
        pytest.skip(f"shipped checkpoint not available: {e}")
    for kind in ("0", "7"):
        for width in (8, 14, 20):
            for fmt in ("PNG", "JPEG"):
                d = images.image_to_digit(encode(photo(kind, width, seed=width), fmt))
                p = task.predict_digit(model, d, 28)
                assert p["label"] == int(kind), (kind, width, fmt, p["probabilities"])
                assert images.digit_check(d).looks_like_digit


# --- does it look like a digit? -----------------------------------------------------------------------
def _checker(square: int) -> np.ndarray:
    return (((np.indices((28, 28)) // square).sum(0) % 2) * 255).astype(np.uint8)


NOT_DIGITS = {
    "uniform noise": np.random.default_rng(1).integers(0, 256, (28, 28)).astype(np.uint8),
    "sparse noise": ((np.random.default_rng(2).random((28, 28)) < 0.15) * 255).astype(np.uint8),
    "blank": np.zeros((28, 28), np.uint8),
    "all ink": np.full((28, 28), 255, np.uint8),
    "checkerboard 1": _checker(1),
    "checkerboard 2": _checker(2),
    "checkerboard 4": _checker(4),
    "checkerboard 7": _checker(7),
}


@pytest.mark.parametrize("name", sorted(NOT_DIGITS))
def test_non_digits_are_flagged(name):
    c = images.digit_check(NOT_DIGITS[name])
    assert not c.looks_like_digit and c.reason


def test_two_digits_side_by_side_are_flagged():
    x, y = mnist.load_bundled()
    i, j = int(np.nonzero(y == 4)[0][0]), int(np.nonzero(y == 2)[0][0])
    pair = np.zeros((28, 28), np.uint8)
    for k, left in ((i, 3), (j, 15)):  # each cropped to its ink, 10×20, two pixels apart
        ys, xs = np.nonzero(x[k])
        crop = x[k][ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        pair[4:24, left:left + 10] = np.asarray(Image.fromarray(crop).resize((10, 20)))
    c = images.digit_check(pair)
    assert not c.looks_like_digit and "side by side" in c.reason


def test_bundled_mnist_digits_look_like_digits():
    x, _ = mnist.load_bundled()
    ok = np.mean([images.digit_check(a).looks_like_digit for a in x[::5]])  # 1,000 digits
    assert ok >= 0.99, ok


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data/mnist not available")
def test_real_mnist_digits_look_like_digits():
    x, _ = mnist.load_idx(SHARED_MNIST.parent, "train")
    pick = x[np.random.default_rng(0).choice(len(x), 1000, replace=False)]
    ok = np.mean([images.digit_check(a).looks_like_digit for a in pick])
    assert ok >= 0.98, ok


def test_prepared_mnist_digits_still_look_like_digits():
    """An MNIST digit saved as a PNG and uploaded goes through the whole preparation."""
    x, _ = mnist.load_bundled()
    ok = np.mean([images.digit_check(images.image_to_digit(encode(np.ascontiguousarray(a))))
                  .looks_like_digit for a in x[:300]])
    assert ok >= 0.98, ok


def test_components():
    m = np.array([[1, 0, 0, 1],
                  [0, 1, 0, 1],
                  [0, 0, 0, 0],
                  [1, 1, 0, 1]], bool)
    labels, n = images.components(m, 8)
    assert n == 4 and labels[0, 0] == labels[1, 1] and labels[0, 3] == labels[1, 3]
    labels4, n4 = images.components(m, 4)
    assert n4 == 5 and labels4[0, 0] != labels4[1, 1]
    assert images.components(np.zeros((3, 3), bool))[1] == 0


def _flood_fill(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """Reference labelling: a depth-first flood fill, pieces numbered row-major."""
    h, w = mask.shape
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    lab, n = np.zeros((h, w), np.int64), 0
    for i in range(h):
        for j in range(w):
            if mask[i, j] and not lab[i, j]:
                n += 1
                lab[i, j], todo = n, [(i, j)]
                while todo:
                    a, b = todo.pop()
                    for dy, dx in steps:
                        c, d = a + dy, b + dx
                        if 0 <= c < h and 0 <= d < w and mask[c, d] and not lab[c, d]:
                            lab[c, d] = n
                            todo.append((c, d))
    return lab, n


def test_components_match_a_flood_fill():
    rng = np.random.default_rng(0)
    for _ in range(60):
        m = rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 30)))) < rng.random()
        for conn in (4, 8):
            labels, n = images.components(m, conn)
            ref, n_ref = _flood_fill(m, conn)
            assert n == n_ref and np.array_equal(labels, ref)


def test_label_for_messages_is_inert():
    """The page names a bad upload by its file name through safety.label: Markdown's emphasis
    characters in a name are shown, not applied."""
    assert safety.label("my_best_digit_.png") == r"my\_best\_digit\_\.png"
    assert safety.label("**bold**.png").count("\\*") == 4
