"""Property-based fuzzing of the app's input entry points: URL state, text analysis of every text
model, and the input-safety helpers. Each input gives a result or the project's own error, never
another exception, within a stated time; no user string reaches a notice as live Markdown, and no
bidi control reaches the display."""
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skimviz import safety
from skimviz.data import text as textdata
from skimviz.models.text_classifier import TextClassifier
from skimviz.models.transkimmer import TranskimmerClassifier
from skimviz.tasks import skim_text
from skimviz.tasks import transkimmer as tk
from ui import urlstate

FAST = settings(max_examples=120, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
BIDI = "".join(sorted(safety.BIDI_CONTROLS))
# text that a hostile user might type: bidi controls, Markdown, HTML, NUL, emoji, combining marks
nasty = st.text(alphabet=st.sampled_from(list(BIDI) + list("*_[]()`#<>&$:!|~\\\"' \n\t\x00")
                                         + list("ab cd éü漢字🙂\u0301")), max_size=300)
values = st.one_of(nasty, st.lists(nasty, max_size=3))
keys = st.one_of(st.sampled_from(["digit", "seed", "theta", "model", "text", "present", "page",
                                  "side", "upload"]), nasty)


def _inert(notice: str) -> None:
    """A notice is safe to render as Markdown: no bidi control, and every _ * [ ] ` outside the
    code spans (the parameter names we put there) is backslash-escaped."""
    assert not any(c in notice for c in BIDI)
    outside = notice.split("`")[::2]
    for part in outside:
        for i, c in enumerate(part):
            if c in "_*[]":
                assert i > 0 and part[i - 1] == "\\", (c, notice)


@FAST
@given(st.dictionaries(keys, values, max_size=6))
def test_url_state_parsing_never_fails_and_notices_are_inert(params):
    t0 = time.perf_counter()
    state, notices = urlstate.parse(params)
    assert set(state) == set(urlstate.KEYS)
    skim, notices2 = urlstate.parse_skim(params, ["skim-lstm-sst2", "x_y"])
    assert skim["model"] in (None, "skim-lstm-sst2", "x_y")
    assert skim["theta"] is None or 0.0 < skim["theta"] < 1.0
    for n in notices + notices2:
        _inert(n)
    assert time.perf_counter() - t0 < 0.5


@pytest.fixture(scope="module")
def skim_model():
    torch.manual_seed(0)
    vocab = textdata.Vocab.build([textdata.tokenize("a good bad film not at all . , !")])
    model = TextClassifier(len(vocab), 8, 12, 3, 2, skim=True).eval()
    return model, vocab


@pytest.fixture(scope="module")
def tk_model():
    torch.manual_seed(0)
    vocab = textdata.Vocab.build([textdata.tokenize("a good bad film not at all . , !")])
    itos = vocab.itos + [tk.CLS] if tk.CLS not in vocab.itos else vocab.itos
    model = TranskimmerClassifier(len(itos), hidden=16, layers=2, heads=2, ffn=32,
                                  max_positions=32).eval()
    enc = tk.TextEncoder("words", "\n".join(itos) + "\n", max_len=32)
    return model, enc


@FAST
@given(nasty)
def test_skim_analysis_gives_a_result_or_a_clear_error(skim_model, text):
    model, vocab = skim_model
    t0 = time.perf_counter()
    try:
        r = skim_text.analyse(model, vocab, text)
    except ValueError as e:                      # the project's own message: nothing to read
        assert "no words" in str(e)
        return
    assert len(r["tokens"]) == len(r["skim"]) == len(r["p_skim"]) >= 1
    assert not any(c in t for t in r["tokens"] for c in BIDI + "\x00")
    assert r["flop_r"] > 0 and 0.0 <= r["probability"] <= 1.0
    assert time.perf_counter() - t0 < 1.0


@FAST
@given(nasty)
def test_transkimmer_explain_gives_a_result(tk_model, text):
    model, enc = tk_model
    t0 = time.perf_counter()
    r = tk.explain(model, enc, text)
    assert len(r["tokens"]) <= enc.max_len
    assert not any(c in str(w["word"]) for w in r["words"] for c in BIDI + "\x00")
    assert r["flops_reduction"] > 0
    assert time.perf_counter() - t0 < 1.0


@FAST
@given(nasty, st.integers(1, 400))
def test_safety_helpers(text, limit):
    md = safety.escape_markdown(text)
    assert not any(c in md for c in BIDI + "\x00")
    html = safety.escape_html(text)
    assert "<" not in html and not any(c in html for c in BIDI)
    cleaned, cut = safety.clean_text(text, limit)
    assert len(cleaned) <= limit and cut == (len(safety.strip_controls(text)) > limit)
    assert "\n" not in safety.label(text) and len(safety.strip_controls(text)) >= 0


# --- image decoding: any bytes, and real PNG/JPEG images of any content -----------------------
def _png(arr, fmt="PNG") -> bytes:
    import io

    import numpy as np
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@FAST
@given(st.binary(max_size=4096))
def test_image_decoding_of_any_bytes(data):
    from skimviz.data import images
    t0 = time.perf_counter()
    try:
        digit = images.image_to_digit(data)
    except images.ImageError as e:
        assert "BytesIO" not in str(e) and str(e)
        return
    assert digit.shape == (28, 28)
    assert time.perf_counter() - t0 < 2.0


@settings(max_examples=40, deadline=5000, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 96), st.integers(1, 96), st.sampled_from(["PNG", "JPEG"]),
       st.integers(0, 2**32 - 1))
def test_image_decoding_of_real_images(h, w, fmt, seed):
    import numpy as np

    from skimviz.data import images
    arr = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    t0 = time.perf_counter()
    try:
        digit = images.image_to_digit(_png(arr, fmt))
    except images.ImageError as e:
        assert str(e)
        return
    assert digit.shape == (28, 28) and np.isfinite(digit).all()
    assert 0 <= digit.min() and digit.max() <= 255
    images.digit_check(digit)                      # a verdict, never an exception
    assert time.perf_counter() - t0 < 3.0
