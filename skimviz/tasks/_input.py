"""The text file of ``predict --input FILE`` for the text models (Skim-LSTM, Transkimmer): one
input per line, read with stated limits and every problem reported, never a traceback. (The
image file of the MNIST models: :func:`read_image`.)

Limits: the file at most :data:`MAX_INPUT_BYTES`, at most :data:`MAX_LINES` non-blank lines
(further lines are not read, with a warning), each line at most :data:`MAX_LINE_CHARS`
characters (the app's limit; longer lines are cut, with a warning). Bytes that are not UTF-8
are replaced by U+FFFD and the lines named in a warning; bidi and control characters are
removed (:func:`skimviz.safety.clean_text`). An empty or blank file is an error.
"""
from __future__ import annotations

import os
import sys
from typing import List, Tuple

from skimviz.data.text import MAX_CHARS
from skimviz.safety import InputError, clean_text, human_bytes, shorten, strip_controls

MAX_INPUT_BYTES = 16 * 2**20
MAX_LINES = 10_000
MAX_LINE_CHARS = MAX_CHARS


def _name(path: str) -> str:
    return shorten(strip_controls(os.path.basename(path)), 80)


def _lines_list(numbers: List[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:5])
    return shown + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")


def _clip(raw: bytes) -> Tuple[bytes, bool]:
    """A line's bytes cut to what :data:`MAX_LINE_CHARS` characters can take (4 bytes each in
    UTF-8), at a character boundary, so a 16 MB line costs no more than a long one."""
    limit = 4 * MAX_LINE_CHARS
    if len(raw) <= limit:
        return raw, False
    raw = raw[:limit]
    for back in range(4):                                  # no half character at the end
        if back < len(raw) and (raw[len(raw) - 1 - back] & 0xC0) != 0x80:
            lead, need = raw[len(raw) - 1 - back], back + 1
            full = 1 if lead < 0x80 else 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14 else 4
            return (raw if full <= need else raw[:len(raw) - 1 - back]), True
    return raw, True


def _decode(raw: bytes) -> Tuple[str, bool]:
    """UTF-8 text of a line, and whether it was valid (invalid bytes become U+FFFD)."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


def read_lines(path: str) -> Tuple[List[Tuple[int, str]], List[str]]:
    """→ ([(line number, text)] of the non-blank lines to run, [warnings]); raises
    :class:`~skimviz.safety.InputError` for a file over the size limit or without text."""
    name = _name(path)
    size = os.stat(path).st_size
    if size > MAX_INPUT_BYTES:
        raise InputError(f"{name} is {human_bytes(size)}; the limit for --input is "
                         f"{human_bytes(MAX_INPUT_BYTES)}")
    with open(path, "rb") as f:
        data = f.read(MAX_INPUT_BYTES + 1)
    if data.startswith(b"\xef\xbb\xbf"):                  # a UTF-8 byte order mark
        data = data[3:]
    lines, bad, cut, extra = [], [], [], 0
    for number, raw in enumerate(data.splitlines(), 1):
        if len(lines) >= MAX_LINES:                        # only counted from here on
            extra += bool(raw.strip())
            continue
        raw, byte_cut = _clip(raw)
        text, ok = _decode(raw)
        if not ok:
            bad.append(number)
        text, was_cut = clean_text(text, MAX_LINE_CHARS)
        text = text.strip()
        if not text:
            continue
        if was_cut or byte_cut:
            cut.append(number)
        lines.append((number, text))
    if not lines:
        raise InputError(f"{name} has no text to classify ("
                         f"{'it is empty' if not data else 'only blank lines'}); "
                         "give one input per line")
    warnings = []
    if bad:
        warnings.append(f"{name}: line {_lines_list(bad)} is not valid UTF-8; the bytes that "
                        "are not were replaced by U+FFFD")
    if cut:
        warnings.append(f"{name}: line {_lines_list(cut)} is longer than {MAX_LINE_CHARS:,} "
                        f"characters; only the first {MAX_LINE_CHARS:,} are read")
    if extra:
        warnings.append(f"{name} has {MAX_LINES + extra:,} lines of text; only the first "
                        f"{MAX_LINES:,} are read")
    return lines, warnings


def warn(warnings: List[str]) -> None:
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def read_image(path: str) -> bytes:
    """The bytes of an image file, its true size checked against the upload limit first (a
    50 MB file is reported as 50 MB, not as the part that was read)."""
    from skimviz.data import images
    size = os.stat(path).st_size
    try:
        images.check_size(size)
    except images.ImageError as e:
        raise InputError(f"{_name(path)}: {e}") from None
    with open(path, "rb") as f:
        return f.read(images.MAX_UPLOAD_BYTES + 1)
