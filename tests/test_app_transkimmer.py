"""Streamlit AppTest tests of the "Transkimmer — layer-wise skimming" page.

The app is pointed (``SKIMVIZ_PRETRAINED_DIR``) at tiny, untrained Transkimmer checkpoints (two
skim models and a dense twin, word tokenizer) saved in a temporary folder with cards like the
training CLI's, so these tests never depend on the checkpoints trained for ``pretrained/``; one
test loads the page with the real ``pretrained/`` folder when it has a Transkimmer.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from skimviz.data import text as textdata
from skimviz.models.transkimmer import TranskimmerClassifier
from skimviz.tasks import transkimmer as tk
from skimviz.training import checkpoint
from tests._helpers import APP, TIMEOUT, block, open_page, use_pretrained
from tests._helpers import array as _array
from tests._helpers import chart as _chart
from tests._helpers import metric as _metric
from tests._helpers import no_exception as _no_exception
from tests._helpers import warnings as _warnings

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE = "views/transkimmer_text.py"
NAME, OTHER = "transkimmer-small-sst2", "transkimmer-small-sst2-b"
TWIN = "transkimmer-small-sst2-dense"
MAX_LEN, LAYERS = 48, 3
# The vocabulary leaves out "lovely" and "bakery": unknown words for the page to mark.
VOCAB_TEXT = ("a small , film about two sisters who run . quiet kind and often very funny "
              "loud long strangely empty : the explosions never stop neither does boredom "
              "jokes fall flat cast looks tired script alert b bold")


def _model(skim: bool, seed: int) -> TranskimmerClassifier:
    """A tiny encoder whose predictors drop about half of the tokens at every layer."""
    torch.manual_seed(seed)
    vocab = tk.build_vocab([VOCAB_TEXT], min_freq=1)
    m = TranskimmerClassifier(len(vocab), 16, LAYERS, 2, 32, MAX_LEN, dropout=0.0, skim=skim)
    if skim:
        for g in m.gate:
            g.net[-1].weight.data.normal_(0, 1.0)
            g.net[-1].bias.data.zero_()
    return m.eval()


def make_transkimmer_checkpoints(out: Path) -> Path:
    """Two skim checkpoints (the first with a λ sweep, the second without) and the dense twin,
    saved as the training CLI does (card, weights, vocab.txt)."""
    vocab = tk.build_vocab([VOCAB_TEXT], min_freq=1)
    enc = tk.TextEncoder("words", vocab.to_text(), MAX_LEN)
    texts = [t for t in VOCAB_TEXT.split(" . ")]
    labels = [1, 0][:len(texts)]
    for name, skim, seed in ((NAME, True, 0), (OTHER, True, 1), (TWIN, False, 0)):
        model = _model(skim, seed)
        v = tk.evaluate(model, enc, texts, labels)
        metrics = {"dev_accuracy": v["accuracy"],
                   **{k: val for k, val in v.items() if k != "accuracy"}}
        card = {"name": name, "task": tk.TASK, "architecture": "TranskimmerClassifier",
                "config": model.config,
                "input": {"tokenizer": "words", "file": "vocab.txt", "max_len": MAX_LEN,
                          "lowercase": True},
                "backbone": "trained from scratch", "paper": tk.PAPER, "metrics": metrics,
                "dense_twin": TWIN if skim else None, "lambda": 0.3 if skim else 0.0,
                "training": {"dry_run": True}}
        if name == NAME:
            card["target"] = {"dense_twin_accuracy": 0.5, "reached": False}
            card["lambda_sweep"] = [
                {"lambda": 0.1, "accuracy": 0.6, "flops_reduction": 1.4, "shipped": False},
                {"lambda": 0.3, "accuracy": v["accuracy"],
                 "flops_reduction": v["flops_reduction"], "shipped": True},
                {"lambda": 1.0, "accuracy": 0.5, "flops_reduction": 3.5, "shipped": False}]
        checkpoint.save(model, card, out / name, extra_files={"vocab.txt": vocab.to_text()})
    return out


@pytest.fixture(scope="session")
def tk_pretrained(tmp_path_factory) -> Path:
    return make_transkimmer_checkpoints(tmp_path_factory.mktemp("pretrained_tk"))


@pytest.fixture
def tk_env(tk_pretrained, monkeypatch) -> Path:
    return use_pretrained(monkeypatch, tk_pretrained)


def _page() -> AppTest:
    return open_page(PAGE)


def _tokens_html(at: AppTest) -> str:
    return block(at, "skimviz-tk-tokens")


def _spans(h: str):
    """(classes, text) of every word span."""
    return re.findall(r'<span class="(skimviz-tk[a-zA-Z0-9 -]*)"[^>]*>(.*?)</span>', h)


def _words(text: str):
    return textdata.tokenize(text)[:MAX_LEN - 1]


def test_page_loads_and_colours_the_example(tk_env):
    at = _page()
    assert at.title[0].value == "Transkimmer — layer-wise skimming"
    assert at.selectbox(key="tk_model").value == NAME
    assert [o.split(" (")[0] for o in at.selectbox(key="tk_model").options] == [NAME, OTHER]  # no twin
    assert not any("python -m" in m.value for m in [*at.markdown, *at.caption, *at.info])
    text = at.text_area(key="tk_text").value
    spans = _spans(_tokens_html(at))
    assert [html.unescape(t) for _, t in spans] == _words(text)
    layers = {c.split()[1] for c, _ in spans}
    assert len(layers) >= 2                                # words leave at different layers
    assert layers <= {f"skimviz-tk-L{k}" for k in range(1, LAYERS + 1)} | {"skimviz-tk-kept"}
    kept = sum("skimviz-tk-kept" in c for c, _ in spans)
    assert _metric(at, "Kept to the end") == f"{kept} of {len(spans)}"
    said = next(m.value for m in at.markdown if m.value.startswith("Of the "))
    assert f"Of the {len(spans)} words" in said and f"{kept} went through all" in said
    # "lovely" and "bakery" are not in the fixture's vocabulary: marked unknown
    assert any("skimviz-unknown" in c and t == "lovely" for c, t in spans)
    legend = [m.value for m in at.markdown if "skimviz-tk-legend" in m.value]
    assert legend and all(f">layer {k}</span>" in legend[0] for k in range(1, LAYERS + 1))
    assert _metric(at, "Prediction") in {"positive", "negative"}
    assert _metric(at, "FLOP reduction").endswith("×")
    assert _metric(at, "Time (batch 1)").endswith("ms")
    assert any(f"the dense twin `{TWIN}`" in c.value for c in at.caption)
    assert "dry run" in _warnings(at)
    curve = _chart(at, "tk_curve_chart")
    assert len(curve["data"]) == 2
    y = _array(curve["data"][0]["y"])
    assert len(y) == LAYERS and y[0] <= 1.0 and (np.diff(y) <= 1e-9).all()
    lam = _chart(at, "tk_lambda_chart")
    assert [t["name"] for t in lam["data"]][:2] == ["λ sweep (validation)",
                                                   "shipped model (λ = 0.3)"]
    assert not [i for i in at.info if "not run" in i.value]
    assert at.query_params["model"] == NAME


def test_example_produces_coloured_tokens(tk_env):
    at = _page()
    at.selectbox(key="tk_example").set_value("Flat jokes (negative)").run()
    _no_exception(at)
    text = at.text_area(key="tk_text").value
    assert text.startswith("The jokes fall flat")
    spans = _spans(_tokens_html(at))
    assert [t for _, t in spans] == _words(text)
    assert all(c.split()[1].startswith("skimviz-tk-") for c, _ in spans)


def test_examples_are_original_and_one_is_long():
    """The page's own examples (read from its source: importing the page would run it)."""
    import ast
    tree = ast.parse((REPO_ROOT / PAGE).read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", None) == "EXAMPLES")
    examples = ast.literal_eval(node.value)
    assert len(examples) >= 3
    assert max(len(t.split()) for t in examples.values()) >= 40


def test_script_is_escaped(tk_env):
    at = _page()
    at.text_area(key="tk_text").set_value('<script>alert("hi")</script> <b>bold</b> $x$').run()
    _no_exception(at)
    out = _tokens_html(at)
    assert "<script" not in out and "<b>" not in out
    texts = [t for _, t in _spans(out)]
    assert "script" in texts and "&lt;" in texts


def test_empty_text_message(tk_env):
    at = _page()
    at.text_area(key="tk_text").set_value("   \n ").run()
    _no_exception(at)
    assert "text box is empty" in _warnings(at)
    assert not [m for m in at.markdown if "skimviz-tk-tokens" in m.value]


def test_long_text_is_cut_with_notices(tk_env):
    at = _page()
    at.text_area(key="tk_text").set_value("a small film . " * 400).run()   # 6,000 characters
    _no_exception(at)
    w = _warnings(at)
    assert f"only the first {textdata.MAX_CHARS:,} are read" in w
    assert f"at most {MAX_LEN} tokens" in w
    assert len(_spans(_tokens_html(at))) == MAX_LEN - 1
    assert "text" not in at.query_params                                  # too long for a link


def test_model_switch_and_sweep_not_run(tk_env):
    at = _page()
    at.selectbox(key="tk_model").set_value(OTHER).run()
    _no_exception(at)
    assert at.query_params["model"] == OTHER
    assert [i for i in at.info if "has no λ sweep" in i.value]
    lam = _chart(at, "tk_lambda_chart")
    assert lam["data"][0]["name"] == "shipped model (λ = 0.3)"
    assert "not run" in lam["layout"]["annotations"][0]["text"]
    assert _spans(_tokens_html(at))


def test_url_state_and_bad_parameters(tk_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()  # pages in views/ are known to AppTest after one run
    at.switch_page(PAGE)
    for k, v in {"model": OTHER, "text": "quiet and funny"}.items():
        at.query_params[k] = v
    at.run()
    _no_exception(at)
    assert at.selectbox(key="tk_model").value == OTHER
    assert [t for _, t in _spans(_tokens_html(at))] == ["quiet", "and", "funny"]
    link = [c.value for c in at.code if "page=transkimmer-text&" in c.value]
    assert link and "text=quiet+and+funny" in link[0] and f"model={OTHER}" in link[0]

    bad = AppTest.from_file(APP, default_timeout=TIMEOUT)
    bad.run()  # pages in views/ are known to AppTest after one run

    bad.switch_page(PAGE)
    for k, v in {"model": "../etc", "text": "<script>" * 100}.items():
        bad.query_params[k] = v
    bad.run()
    _no_exception(bad)
    w = _warnings(bad)
    assert "`model`" in w and "`text`" in w and "<script" not in w
    assert bad.selectbox(key="tk_model").value == NAME


def test_shared_link_through_the_home_page(tk_env):
    """``/?page=transkimmer-text&model=…&text=…`` (the page's "Link to this view") opens the
    page with that view."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in {"page": "transkimmer-text", "model": OTHER, "text": "loud and empty"}.items():
        at.query_params[k] = v
    at.run()
    _no_exception(at)
    assert at.title[0].value == "Transkimmer — layer-wise skimming"
    assert at.selectbox(key="tk_model").value == OTHER
    assert [t for _, t in _spans(_tokens_html(at))] == ["loud", "and", "empty"]


def test_presentation_mode(tk_env):
    at = _page()
    normal = _chart(at, "tk_curve_chart")
    at.toggle(key="present_toggle_transkimmer-text").set_value(True).run()
    _no_exception(at)
    assert any("Slide 1 of" in c.value for c in at.caption)           # the slide beside the text
    assert not any("display: none" in m.value for m in at.markdown)   # nothing hidden
    assert at.query_params.get("present") == "1"
    assert _chart(at, "tk_curve_chart")["layout"]["height"] > normal["layout"]["height"]
    assert "font-size: 1.6rem" in _tokens_html(at)


def test_no_checkpoint_is_an_error_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIMVIZ_PRETRAINED_DIR", str(tmp_path))
    at = _page()
    assert any("No Transkimmer model is installed" in e.value for e in at.error)


WORDPIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "film", "un", "##believ", "##ably",
              "charming", ".", ",", "<", ">", "script", "the"]


def _wordpiece_json(max_len: int) -> str:
    """A tiny BERT-style WordPiece tokenizer (``tokenizers``), like MiniLM's tokenizer.json."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(WORDPIECES)},
                                     unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tok.to_str()


@pytest.fixture(scope="session")
def tk_wordpiece(tmp_path_factory) -> Path:
    """The small checkpoints plus a WordPiece one named like the MiniLM model."""
    out = make_transkimmer_checkpoints(tmp_path_factory.mktemp("pretrained_tk_wp"))
    torch.manual_seed(2)
    m = TranskimmerClassifier(len(WORDPIECES), 16, LAYERS, 2, 32, 16, dropout=0.0,
                              pool="mean").eval()
    for g in m.gate:
        g.net[-1].weight.data.normal_(0, 1.0)
        g.net[-1].bias.data.zero_()
    card = {"name": "transkimmer-minilm-sst2", "task": tk.TASK,
            "architecture": "TranskimmerClassifier", "config": m.config,
            "input": {"tokenizer": "wordpiece", "file": "tokenizer.json", "max_len": 16,
                      "lowercase": True},
            "backbone": "all-MiniLM-L6-v2 (stand-in)", "paper": tk.PAPER,
            "metrics": {"dev_accuracy": 0.5, "flops_reduction": 1.5, "n": 2,
                        "kept_fraction_per_layer": [1.0, 0.6, 0.4]},
            "dense_twin": None, "lambda": 0.3,
            "training": {"dry_run": True, "fixed_policy": True},
            "lambda_sweep": [
                {"lambda": 0.3, "accuracy": 0.6, "flops_reduction": 1.2, "shipped": False},
                {"lambda": 0.6, "accuracy": 0.4, "flops_reduction": 2.0, "shipped": False},
                {"lambda": 0.3, "accuracy": 0.5, "flops_reduction": 1.5, "shipped": True,
                 "second_stage": True}]}
    checkpoint.save(m, card, out / card["name"],
                    extra_files={"tokenizer.json": _wordpiece_json(16)})
    return out


def test_wordpiece_model_joins_pieces_into_words(tk_wordpiece, monkeypatch):
    monkeypatch.setenv("SKIMVIZ_PRETRAINED_DIR", str(tk_wordpiece))
    at = _page()
    assert at.selectbox(key="tk_model").value == "transkimmer-minilm-sst2"   # MiniLM opens first
    at.selectbox(key="tk_model").set_value(NAME).run()
    assert not any("not shipped" in c.value for c in at.caption)
    assert any("the classifier reads h_[CLS]" in c.value for c in at.caption)
    assert not any("Trained in two stages" in c.value for c in at.caption)
    at.selectbox(key="tk_model").set_value("transkimmer-minilm-sst2").run()
    _no_exception(at)
    caps = " ".join(c.value for c in at.caption)          # the card's head and second stage
    assert "the classifier reads the mean of the output rows" in caps
    assert "Trained in two stages" in caps
    assert "2 models trained with different λ" in caps and "not a point of that curve" in caps
    at.text_area(key="tk_text").set_value("An unbelievably charming film. <script>").run()
    _no_exception(at)
    out = _tokens_html(at)
    assert "<script" not in out
    spans = _spans(out)
    assert [html.unescape(t) for _, t in spans] == ["An", "unbelievably", "charming", "film",
                                                     ".", "<", "script", ">"]
    titles = re.findall(r'title="([^"]*)">unbelievably<', out)
    assert titles and "##believ" in html.unescape(titles[0])
    assert any("its predictors switched off" in c.value for c in at.caption)
    assert _metric(at, "Time (batch 1)").endswith("ms")
    at.text_area(key="tk_text").set_value("a film , " * 20).run()     # 62 pieces, max_len 16
    _no_exception(at)
    assert "at most 16 tokens" in _warnings(at)
    assert len(_spans(_tokens_html(at))) == 14                        # [CLS] … [SEP] kept


def test_loads_with_the_real_pretrained_folder(monkeypatch):
    monkeypatch.delenv("SKIMVIZ_PRETRAINED_DIR", raising=False)
    names = [n for n in checkpoint.list_pretrained() if n.startswith("transkimmer")]
    at = _page()
    if not any((checkpoint.load_card(n).get("config") or {}).get("skim") for n in names):
        assert any("No Transkimmer model is installed" in e.value for e in at.error)
        return
    assert at.selectbox(key="tk_model").value in names
    assert _spans(_tokens_html(at))
    assert _metric(at, "Prediction") in {"positive", "negative"}


@pytest.mark.skipif("transkimmer-minilm-sst2" not in checkpoint.list_pretrained(),
                    reason="the MiniLM Transkimmer is not shipped")
def test_the_shipped_minilm_model_reads_typed_text(monkeypatch):
    """The real fine-tuned all-MiniLM-L6-v2 Transkimmer: WordPiece pieces joined back into the
    typed words, and plain sentiment read right (deterministic: argmax decisions, no noise)."""
    monkeypatch.delenv("SKIMVIZ_PRETRAINED_DIR", raising=False)
    at = _page()
    at.selectbox(key="tk_model").set_value("transkimmer-minilm-sst2").run()
    _no_exception(at)
    for text, label in (("An unwatchable, dull and painfully overwrought mess.", "negative"),
                        ("A wonderful, moving and beautifully acted film.", "positive")):
        at.text_area(key="tk_text").set_value(text).run()
        _no_exception(at)
        words = [html.unescape(t) for _, t in _spans(_tokens_html(at))]
        assert words == re.findall(r"\w+|[^\w\s]", text)
        assert _metric(at, "Prediction") == label


def _block(at: AppTest, cls: str) -> str:
    found = [m.value for m in at.markdown if f'class="{cls}"' in m.value]
    assert len(found) == 1, (cls, [m.value[:60] for m in at.markdown])
    return found[0]


def test_attributions_vs_decisions(tk_env):
    at = _page()
    text = "the jokes fall flat and the cast looks tired , quiet kind and often very funny"
    at.text_area(key="tk_text").set_value(text).run()
    _no_exception(at)
    attr = _block(at, "skimviz-attr-tokens")
    words = re.findall(r'class="skimviz-attr"[^>]*>(.*?)</span>', attr)
    assert [html.unescape(w) for w in words] == _words(text)
    decisions = _spans(_block(at, "skimviz-tk-tokens-decisions"))
    assert decisions == _spans(_tokens_html(at))     # the same prune-layer strip, beside it
    assert _metric(at, "Attribution on kept words")
    assert [m for m in at.metric if m.label.startswith("Kept-AUC (top ")]
    assert any(m.value.startswith("**In one line:**") for m in at.markdown)
    assert "Attributions as CSV" in {b.proto.label for b in at.get("download_button")}
    at.radio(key="tk_attr_method").set_value("saliency").run()
    _no_exception(at)
    assert _block(at, "skimviz-attr-tokens") != attr
    at.button(key="tk_attr_set_run").click().run()
    _no_exception(at)
    assert any("Over the 5 example texts" in m.value for m in at.markdown)


def test_attribution_strip_is_escaped(tk_env):
    at = _page()
    at.text_area(key="tk_text").set_value('<script>alert("hi")</script> <b>bold</b>').run()
    _no_exception(at)
    out = _block(at, "skimviz-attr-tokens")
    assert "<script" not in out and "<b>" not in out


def test_presentation_slides(tk_env):
    """Presentation mode steps through the Transkimmer page's guided sequence."""
    at = _page()
    at.toggle(key="present_toggle_transkimmer-text").set_value(True).run()
    assert not at.exception
    assert any("Slide 1 of 4" in c.value for c in at.caption)
    at.button(key="present_next_transkimmer-text").click().run()
    assert any("Slide 2 of 4" in c.value for c in at.caption)
    assert not at.exception
