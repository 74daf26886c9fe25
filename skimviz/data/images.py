"""Turn a user's image (an upload) into an MNIST-like 28×28 digit, safely.

Limits are stated in :data:`MAX_UPLOAD_BYTES` and :data:`MAX_PIXELS`; anything else (not an
image, too large, animated bomb) raises :class:`ImageError` with a message meant for the user.
"""
from __future__ import annotations

import io

import numpy as np

MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # 2 MiB
MAX_PIXELS = 4096 * 4096


class ImageError(ValueError):
    pass


def image_to_digit(data: bytes) -> np.ndarray:
    """Decode ``data`` (PNG/JPEG/GIF/BMP/WebP) into a (28, 28) uint8 digit, white on black.

    Like MNIST's own preparation: the image is made grey, inverted when its border is light
    (a dark digit drawn on white paper), cropped to the ink, scaled to fit 20×20 and centred by
    its centre of mass in a 28×28 frame.
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise ImageError("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(f"the file is {len(data) / 2**20:.1f} MiB; the limit is "
                         f"{MAX_UPLOAD_BYTES // 2**20} MiB")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageError(f"the image is {im.width}×{im.height} pixels; the limit is "
                                 "4096×4096")
            im.seek(0)
            grey = np.asarray(im.convert("L"), dtype=np.float32)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"this file is not an image we can read (PNG, JPEG, GIF, BMP): {e}") from None
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if border.mean() > 127:
        grey = 255.0 - grey
    grey = np.clip(grey - np.percentile(grey, 5), 0, None)
    if grey.max() <= 0:
        raise ImageError("the image is blank: no digit found")
    ys, xs = np.nonzero(grey > 0.2 * grey.max())
    crop = grey[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    crop = crop / crop.max() * 255.0
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize((nw, nh), Image.LANCZOS),
                       dtype=np.float32)
    out = np.zeros((28, 28), np.float32)
    total = small.sum()
    cy, cx = ((np.indices(small.shape) * small).reshape(2, -1).sum(1) / total
              if total > 0 else (nh / 2, nw / 2))
    top = int(np.clip(round(14 - cy), 0, 28 - nh))
    left = int(np.clip(round(14 - cx), 0, 28 - nw))
    out[top:top + nh, left:left + nw] = small
    return np.clip(out, 0, 255).astype(np.uint8)
