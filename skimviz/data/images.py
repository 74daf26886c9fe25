"""Turn a user's image (an upload) into an MNIST-like 28×28 digit, safely, and say whether the
result looks like a digit at all.

Safety: only PNG and JPEG are opened (Pillow is told so: a TIFF, WebP or an EPS renamed ``.png``
is never handed to another decoder, nor to Ghostscript); the file size (:data:`MAX_UPLOAD_BYTES`)
and the pixel count (:data:`MAX_PIXELS`) are checked before anything is decoded; every decoder
error becomes an :class:`ImageError` whose message is meant for the user.

Preparation follows MNIST's own (LeCun et al.: size-normalised to fit a 20×20 box keeping the
aspect ratio, anti-aliased, centred by centre of mass in 28×28), after what a photo needs first:
the paper's uneven lighting is removed, the digit is made bright on dark whichever way it was
written, and thin pen strokes are thickened to MNIST's usual stroke width.

:func:`digit_check` is the out-of-distribution notice: a model trained on MNIST gives a confident
answer for any input (random noise reads "0" at 99 %), so the page says when an image does not
look like a digit, from a few measures calibrated on real MNIST digits.
"""
from __future__ import annotations

import io
from typing import NamedTuple

import numpy as np

from skimviz.safety import human_bytes

MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # 2 MiB; .streamlit/config.toml's server.maxUploadSize too
MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE
FORMATS = ("PNG", "JPEG")  # the only decoders Pillow may use
# Images are reduced to this many pixels on their longer side before anything else: enough for a
# digit that fills a tenth of a photo, and it keeps every later step fast.
WORK_SIDE = 512
# The lighting model is fitted on a grid this size (a smooth surface needs no more).
BACKGROUND_SIDE = 64
BOX, FRAME = 20, 28  # MNIST: the digit fits a 20×20 box, centred in 28×28
# Strokes are measured and thickened at this side (4× the box), where one pixel is a quarter
# of an MNIST pixel.
STROKE_SIDE = 4 * BOX
MIN_STROKE = 7.0    # at STROKE_SIDE: thinner than ~1.75 px of the 20-px box is thickened
TARGET_STROKE = 10.0  # … to ~2.5 px, MNIST's usual width
MIN_CONTRAST = 12.0  # grey levels the ink must stand out from the paper by
BLANK = "no digit found: the image is blank (all one shade)"
NO_INK = ("no digit found: nothing in the image stands out from its background as strokes do "
          "(it looks like an even texture or noise)")


class ImageError(ValueError):
    """An upload that cannot be used, with a message meant for the user."""


# --- decoding -----------------------------------------------------------------------------------
def check_size(n_bytes: int) -> None:
    """Refuse an empty file or one over :data:`MAX_UPLOAD_BYTES`, before anything reads it. Sizes
    are shown as a person reads them, exactly where rounding would make both read the same."""
    n_bytes = int(n_bytes)
    if n_bytes <= 0:
        raise ImageError("the file is empty")
    if n_bytes > MAX_UPLOAD_BYTES:
        size, limit = human_bytes(n_bytes), human_bytes(MAX_UPLOAD_BYTES)
        if size == limit:
            size, limit = f"{n_bytes:,} bytes", f"{MAX_UPLOAD_BYTES:,} bytes ({limit})"
        raise ImageError(f"the file is {size}; the limit is {limit}")


def decode(data: bytes) -> np.ndarray:
    """``data`` (PNG or JPEG) as a float32 grey image, 0 (black) to 255, at most
    :data:`WORK_SIDE` pixels on its longer side. Transparent pixels become the paper: a drawing
    exported on a transparent background keeps its strokes."""
    from PIL import Image

    if not isinstance(data, (bytes, bytearray)):
        raise ImageError("the upload is not a file's contents")
    check_size(len(data))
    try:
        # Pillow's own bomb guard (a warning past ~89 megapixels, an error past ~179) is left
        # as it is: changing warning filters is not thread-safe, and the check below is tighter.
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as im:
            # the header's size, before any pixel is decoded (a sliver 16,384 wide or more is
            # refused too)
            if im.width * im.height > MAX_PIXELS or max(im.size) > MAX_SIDE * 4:
                raise ImageError(f"the image is {im.width}×{im.height} pixels; the limit is "
                                 f"{MAX_SIDE}×{MAX_SIDE}")
            if im.format == "JPEG":  # decode at a reduced scale straight away
                im.draft(im.mode, (WORK_SIDE, WORK_SIDE))
            im.seek(0)  # the first frame of an animated PNG
            im.load()
            return _grey(im)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # past Pillow's cap
        raise ImageError(f"the image has too many pixels; the limit is {MAX_SIDE}×{MAX_SIDE}"
                         ) from None
    except Exception:  # any decoder error (truncated, corrupt, unsupported…): never a traceback
        raise ImageError("this file is not an image that can be read here: only PNG and JPEG "
                         "images are accepted") from None


def _grey(im) -> np.ndarray:
    """A loaded Pillow image as grey float32 (0–255), reduced to WORK_SIDE, alpha flattened."""
    from PIL import Image

    has_alpha = "A" in im.getbands() or "transparency" in im.info
    if im.mode.startswith("I") or im.mode == "F":  # 16-bit grey PNGs: scaled, not clipped
        a = np.asarray(im.convert("F"), np.float32)
        if a.max() > 255:
            a = a * (255.0 / 65535.0)
        im, has_alpha = Image.fromarray(a, "F"), False
    else:
        im = im.convert("LA" if has_alpha else "L")
    im.thumbnail((WORK_SIDE, WORK_SIDE), Image.LANCZOS, reducing_gap=2.0)
    if not has_alpha:
        return np.asarray(im, np.float32)
    grey = np.asarray(im.getchannel("L"), np.float32)
    alpha = np.asarray(im.getchannel("A"), np.float32) / 255.0
    if alpha.min() < 1.0:
        # The paper is the colour that contrasts with what is drawn: white behind dark strokes,
        # black behind light ones.
        drawn = alpha > 0.5
        paper = 0.0 if drawn.any() and grey[drawn].mean() > 127 else 255.0
        grey = grey * alpha + paper * (1.0 - alpha)
    return grey


# --- ink: lighting, polarity, noise -------------------------------------------------------------
def _background(grey: np.ndarray) -> np.ndarray:
    """The paper's brightness at every pixel: a quadratic surface fitted robustly (the ink, a
    minority of pixels, is left out as outliers), so a lighting gradient or a vignette is not
    mistaken for ink."""
    from PIL import Image

    h, w = grey.shape
    scale = min(1.0, BACKGROUND_SIDE / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(grey, "F").resize((sw, sh), Image.BOX), np.float64)

    def design(n_rows: int, n_cols: int) -> np.ndarray:
        yy, xx = np.meshgrid(np.linspace(-1, 1, n_rows), np.linspace(-1, 1, n_cols),
                             indexing="ij")
        yy, xx = yy.ravel(), xx.ravel()
        return np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], 1)

    a, g = design(sh, sw), small.ravel()
    # Start from the border (mostly paper): pixels close to its median are paper, the rest ink.
    border = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    coef = np.zeros(a.shape[1])
    coef[0] = float(np.median(border))
    spread = 1.4826 * float(np.median(np.abs(border - coef[0]))) + 1.0
    for _ in range(8):
        r = g - a @ coef
        keep = np.abs(r) < 2.5 * spread
        if keep.sum() < 2 * a.shape[1]:
            break
        new = np.linalg.lstsq(a[keep], g[keep], rcond=None)[0]
        r = g - a @ new
        spread = 1.4826 * float(np.median(np.abs(r[keep]))) + 1.0
        if np.allclose(new, coef, atol=0.05):
            coef = new
            break
        coef = new
    return (design(h, w) @ coef).reshape(h, w).astype(np.float32)


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Ink from 0 (paper) to 1 (a stroke's core), bright on dark whichever way the digit was
    written: the lighting is subtracted, the ink's side (darker or lighter than the paper) is
    the one with the heavier tail, and the paper's grain is cut off at three robust standard
    deviations."""
    if float(grey.max() - grey.min()) < MIN_CONTRAST:
        raise ImageError(BLANK)
    r = grey - _background(grey)
    noise = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 2.0)
    cut = 3.0 * noise
    dark = np.clip(-r - cut, 0, None)
    light = np.clip(r - cut, 0, None)
    ink = dark if dark.sum() > light.sum() else light
    if ink.max() < MIN_CONTRAST:
        raise ImageError(NO_INK)
    core = float(np.percentile(ink[ink > 0], 90))
    ink = np.clip(ink / max(core, MIN_CONTRAST), 0, 1)
    ink[ink < 0.15] = 0.0  # what is left of the paper's texture
    return ink


# --- connected pieces (8-connected), pure numpy ---------------------------------------------------
def components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Label the connected pieces of a boolean image: (labels, count), 0 outside ``mask``,
    1..count inside, numbered in order of first appearance (row-major). Minimum-label
    propagation with pointer jumping: a few vectorised passes for the small images used here."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    big = h * w + 1
    lab = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), big)
    shifts = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        shifts += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    flat_ids = np.append(np.arange(1, h * w + 1), big)  # a label is a pixel's id (index + 1)
    while True:
        pad = np.pad(lab, 1, constant_values=big)
        best = lab.copy()
        for dy, dx in shifts:
            np.minimum(best, pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w], out=best)
        best = np.where(mask, best, big)
        # pointer jumping: take the label of the pixel one's label names (fewer passes)
        flat_ids[:-1] = best.ravel()
        best = np.where(mask, np.minimum(best, flat_ids[best - 1]), big)
        if np.array_equal(best, lab):
            break
        lab = best
    roots = np.unique(lab[mask])
    out = np.zeros((h, w), np.int64)
    out[mask] = np.searchsorted(roots, lab[mask]) + 1
    return out, len(roots)


def _digit_box(ink: np.ndarray) -> tuple[slice, slice]:
    """The bounding box of the digit's ink: every piece holding at least a twentieth of the
    largest piece's ink (the strokes of a 5 or a 4), without specks of dust."""
    from PIL import Image

    h, w = ink.shape
    scale = min(1.0, 128 / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    coarse = np.asarray(Image.fromarray(ink.astype(np.float32), "F").resize((sw, sh), Image.BOX))
    mask = coarse > 0.1
    labels, n = components(mask)
    if n == 0:
        raise ImageError(NO_INK)
    mass = np.bincount(labels.ravel(), weights=coarse.ravel(), minlength=n + 1)[1:]
    keep = np.isin(labels, 1 + np.nonzero(mass >= 0.05 * mass.max())[0])
    ys, xs = np.nonzero(keep)
    y0, y1 = int(np.floor(ys.min() / scale)), int(np.ceil((ys.max() + 1) / scale))
    x0, x1 = int(np.floor(xs.min() / scale)), int(np.ceil((xs.max() + 1) / scale))
    sub = ink[y0:y1, x0:x1]  # tighten to the full-resolution ink inside the coarse box
    yy, xx = np.nonzero(sub > 0.1)
    if len(yy) == 0:
        return slice(y0, y1), slice(x0, x1)
    return slice(y0 + yy.min(), y0 + yy.max() + 1), slice(x0 + xx.min(), x0 + xx.max() + 1)


def stroke_width(mask: np.ndarray) -> float:
    """A stroke's width in pixels: area over half the outline (a W×L bar: W·L / L)."""
    mask = np.asarray(mask, bool)
    area = int(mask.sum())
    if area == 0:
        return 0.0
    pad = np.pad(mask, 1)
    inner = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    edge = int((mask & ~inner).sum())
    return 2.0 * area / max(edge, 1)


# --- MNIST's normalisation ------------------------------------------------------------------------
def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize((w, h), Image.LANCZOS),
                      np.float32)


def _fit_box(crop: np.ndarray, side: int) -> np.ndarray:
    """``crop`` scaled so its longer side is ``side`` pixels, keeping the aspect ratio."""
    h, w = crop.shape
    s = side / max(h, w)
    return np.clip(_resize(crop, max(1, round(h * s)), max(1, round(w * s))), 0, 1)


def _thicken(a: np.ndarray) -> np.ndarray:
    """Thin pen strokes (at STROKE_SIDE) widened to MNIST's usual width; thick ones unchanged."""
    from PIL import Image, ImageFilter

    width = stroke_width(a > 0.5)
    if width <= 0 or width >= MIN_STROKE:
        return a
    k = int(round(TARGET_STROKE - width)) | 1  # MaxFilter sizes are odd
    pil = Image.fromarray(np.pad(a, k).astype(np.float32), "F")  # room to grow into
    thick = np.asarray(pil.filter(ImageFilter.MaxFilter(k)), np.float32)
    ys, xs = np.nonzero(thick > 0)
    return thick[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def centre(small: np.ndarray) -> np.ndarray:
    """``small`` (at most 20×20, values 0–1) pasted into a 28×28 frame with its centre of mass at
    pixel (14, 14), as in MNIST (its digits' mean centre of mass, in pixel indices)."""
    nh, nw = small.shape
    total = float(small.sum())
    if total > 0:
        iy, ix = np.indices(small.shape)
        cy, cx = float((iy * small).sum() / total), float((ix * small).sum() / total)
    else:
        cy, cx = nh / 2, nw / 2
    top = int(np.clip(round(FRAME // 2 - cy), 0, FRAME - nh))
    left = int(np.clip(round(FRAME // 2 - cx), 0, FRAME - nw))
    out = np.zeros((FRAME, FRAME), np.float32)
    out[top:top + nh, left:left + nw] = small
    return out


def prepare(grey: np.ndarray) -> np.ndarray:
    """A grey image (float, 0–255, any polarity) as an MNIST digit: (28, 28) uint8, white on
    black, its ink's bounding box scaled to 20 px on the longer side, centred by mass."""
    ink = ink_map(np.asarray(grey, np.float32))
    rows, cols = _digit_box(ink)
    crop = ink[rows, cols]
    big = _thicken(_fit_box(crop, STROKE_SIDE))
    small = _fit_box(big, BOX)
    peak = float(small.max())
    if peak <= 0:
        raise ImageError(NO_INK)
    small = np.clip(small / max(peak, 1e-6), 0, 1)
    return np.round(centre(small) * 255).astype(np.uint8)


def image_to_digit(data: bytes) -> np.ndarray:
    """Decode ``data`` (PNG or JPEG) into a (28, 28) uint8 digit, white on black (see
    :func:`prepare`)."""
    return prepare(decode(data))


# --- does it look like a digit? ----------------------------------------------------------------------
# Calibrated on the 5,000 bundled MNIST digits and 1,000 of MNIST-train (tests/test_images.py):
# each bound passes more than 99.5 % of them; noise, blank, all-ink and checkerboard images fail.
INK_RANGE = (0.025, 0.38)     # fraction of the 28×28 pixels above half intensity (MNIST: 0.03–0.35)
MIN_MAIN_SHARE = 0.60         # the largest 8-connected piece's share of the ink (MNIST: ≥ 0.54)
MAX_HOLES = 3                 # enclosed background regions (an 8 has two; MNIST: ≤ 4)
MAX_ROUGHNESS = 0.90          # mean |Laplacian| / 4 over mean intensity (MNIST: ≤ 0.79)
MAX_WIDTH_RATIO = 2.2         # the ink's width over its height (MNIST: ≤ 2.0 in 25,000)
SIDE_PIECE = 0.2              # pieces holding a fifth of the ink or more…
MAX_SIDE_BY_SIDE = 0.8        # …must not stand side by side (MNIST: 8 in 15,000 do)


class DigitCheck(NamedTuple):
    looks_like_digit: bool
    reason: str  # plain words, empty when it looks like a digit


def digit_features(img: np.ndarray) -> dict:
    """The measures :func:`digit_check` uses, on a 28×28 image (0–255, white on black)."""
    x = np.asarray(img, np.float32) / 255.0
    ink = x > 0.5
    n_ink = int(ink.sum())
    labels, n = components(x > 0.3, 8)
    weights = np.bincount(labels.ravel(), weights=x.ravel(), minlength=n + 1)[1:]
    share = float(weights.max() / weights.sum()) if n else 0.0
    spans = [(xs.min(), xs.max()) for k in range(n) if weights[k] >= SIDE_PIECE * weights.sum()
             for xs in [np.nonzero(labels == k + 1)[1]]]
    apart = max((_column_separation(a, b) for i, a in enumerate(spans) for b in spans[i + 1:]),
                default=0.0)
    background, nb = components(x <= 0.3, 4)
    edge = np.unique(np.concatenate([background[0], background[-1],
                                     background[:, 0], background[:, -1]]))
    holes = sum(1 for k in range(1, nb + 1)
                if k not in edge and (background == k).sum() >= 2)
    pad = np.pad(x, 1)
    lap = 4 * x - pad[:-2, 1:-1] - pad[2:, 1:-1] - pad[1:-1, :-2] - pad[1:-1, 2:]
    roughness = float(np.abs(lap).mean() / 4 / max(x.mean(), 1e-6))
    ys, xs = np.nonzero(x > 0.3)
    ratio = float((np.ptp(xs) + 1) / (np.ptp(ys) + 1)) if len(ys) else 0.0
    return {"ink": n_ink / x.size, "pieces": n, "main_share": share, "holes": holes,
            "roughness": roughness, "width_ratio": ratio, "side_by_side": apart}


def _column_separation(a: tuple, b: tuple) -> float:
    """How far two pieces' column ranges are apart: the share of the narrower one's columns that
    the other does not cover (0 when stacked, 1 when side by side)."""
    overlap = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    return 1.0 - overlap / min(a[1] - a[0] + 1, b[1] - b[0] + 1)


def digit_check(img: np.ndarray) -> DigitCheck:
    """Whether a prepared 28×28 image (white on black) looks like an MNIST digit: enough ink but
    not too much, mostly one connected stroke, few enclosed holes, smooth strokes rather than
    speckle, and not much wider than tall. The reason, when it does not, is in plain words for the page."""
    f = digit_features(img)
    if f["ink"] < INK_RANGE[0]:
        return DigitCheck(False, "there is almost no ink in it")
    if f["ink"] > INK_RANGE[1]:
        return DigitCheck(False, "most of it is ink: digits are thin strokes on a plain "
                                 "background")
    if f["roughness"] > MAX_ROUGHNESS:
        return DigitCheck(False, "it is speckled or patterned rather than drawn with strokes")
    if f["main_share"] < MIN_MAIN_SHARE:
        return DigitCheck(False, "its ink is in several separate pieces (more than one "
                                 "character?), not one stroke")
    if f["side_by_side"] >= MAX_SIDE_BY_SIDE:
        return DigitCheck(False, "it has separate pieces side by side, like more than one "
                                 "character")
    if f["width_ratio"] > MAX_WIDTH_RATIO:
        return DigitCheck(False, "it is much wider than tall, unlike a single digit")
    if f["holes"] > MAX_HOLES:
        return DigitCheck(False, f"it encloses {f['holes']} separate holes; digits have at "
                                 "most two")
    return DigitCheck(True, "")
