"""Property-based fuzzing (hypothesis) of everything a user controls on the command line:
``card.json`` (random JSON, and shipped cards mutated in a copy — ``pretrained/`` is never
written), argv lists for every subcommand, and ``--input`` files (random bytes, non-UTF-8,
empty, huge lines) for every predict path.

The property, each time: a result or the project's own error — ``CheckpointError`` from the
loader; from ``cli.main`` an exit code 0 or 2 with a one-line message — never a traceback, and
within the bounds below: each example finishes within its test's ``within(seconds)`` (generous:
the machine is shared, and a card that slipped through would allocate for minutes or be
killed; hypothesis' own deadline is off, its re-runs would make a slow moment a failure) and
the process's peak memory grows by at most :data:`MAX_RSS_GROWTH`.

Profiles: ``SKIMVIZ_FUZZ=quick`` (default: the whole file in about 30 s on 2 idle cores, 20 s
without its one ``slow`` test) or ``SKIMVIZ_FUZZ=long`` (10× the examples, a longer search).
"""
import functools
import io
import json
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skimviz import cli
from skimviz.tasks import _input
from skimviz.training import card_schema, checkpoint
from skimviz.training.checkpoint import CheckpointError
from tests._tiny import mnist_checkpoint, text_checkpoint, transkimmer_checkpoint

# on top of the session's profile (tests/conftest.py: "skimviz", or "ci" with derandomize)
settings.register_profile("fuzz-quick", parent=settings.default, max_examples=25,
                          deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.register_profile("fuzz-long", parent=settings.get_profile("fuzz-quick"),
                          max_examples=250)
FUZZ = settings.get_profile("fuzz-" + os.environ.get("SKIMVIZ_FUZZ", "quick"))
SCALE = FUZZ.max_examples / 25                   # examples per test scale with the profile
MAX_RSS_GROWTH = 1 << 30                         # bytes: no example may allocate a gigabyte


def fuzz(examples: int, **kw):
    """``settings`` of the active profile with ``examples`` (at the quick profile's scale)."""
    return settings(FUZZ, max_examples=max(1, int(examples * SCALE)), **kw)


def within(seconds: float):
    """Each example of the decorated test must finish within ``seconds`` (wall clock)."""
    def deco(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            took = time.perf_counter() - t0
            assert took < seconds, f"an example took {took:.1f} s (bound: {seconds} s)"
            return out
        return run
    return deco


@pytest.fixture(autouse=True)
def _memory_bound():
    """Every test of this file: the peak resident memory grows by at most MAX_RSS_GROWTH."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    yield
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown <= MAX_RSS_GROWTH, f"peak memory grew by {grown / 2**20:.0f} MiB"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    return {"mnist": mnist_checkpoint(d), "text": text_checkpoint(d),
            "dense-text": text_checkpoint(d, "tiny-dense-text", skim=False),
            "tk": transkimmer_checkpoint(d)}


def _main(argv, capsys):
    """cli.main in-process → (code, stdout, stderr); SystemExit is caught like a shell would,
    any other exception fails the example (that is the traceback a user would see)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, err[-500:])
    assert "Traceback" not in err
    if code == 2:
        last = err.strip().splitlines()[-1]
        assert "error" in last, err[-500:]
    return code, out, err


# ----------------------------------------------------------------------------- cards
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4)
                           | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)
config_keys = sorted({k for fields in card_schema.CONFIGS.values() for k in fields})
odd_numbers = st.sampled_from([0, -1, 1, 2, 3, 7, 28, 4096, 4097, 10**6, 2**31, 10**30, 0.5,
                               1e308, float("nan"), float("inf"), -0.0, True, False, None,
                               "110", "", [], {}])
random_cards = st.fixed_dictionaries(
    {"name": st.sampled_from(["x", "tiny-mnist", "../x", ""]) | st.text(max_size=8),
     "architecture": st.sampled_from(sorted(card_schema.CONFIGS)) | json_values,
     "config": st.dictionaries(st.sampled_from(config_keys) | st.text(max_size=6),
                               odd_numbers | json_values, max_size=8) | json_values},
    optional={"task": st.sampled_from(sorted(card_schema.TASKS)) | json_values,
              "input": st.dictionaries(st.sampled_from(["side", "seq_len", "max_len", "file",
                                                        "tokenizer", "max_tokens"]),
                                       odd_numbers | json_values, max_size=3) | json_values,
              "skim_threshold": odd_numbers, "update_threshold": odd_numbers,
              "weights_encoding": json_values, "metrics": json_values})


@fuzz(60)
@given(card=random_cards)
@within(30)
def test_random_cards_load_or_raise_checkpoint_error(tiny, tmp_path_factory, card):
    d = tmp_path_factory.mktemp("card", numbered=True)
    shutil.copy(tiny["mnist"] / checkpoint.WEIGHTS, d / checkpoint.WEIGHTS)
    (d / checkpoint.CARD).write_text(json.dumps(card))
    try:
        model, loaded = checkpoint.load(d)
    except CheckpointError as e:
        assert str(e)
        return
    assert loaded["architecture"] in card_schema.CONFIGS   # only a valid card builds


@fuzz(80)
@given(text=st.binary(max_size=300) | st.text(max_size=300).map(str.encode)
       | json_values.map(lambda v: json.dumps(v).encode()))
@within(10)
def test_random_card_text_parses_or_raises_checkpoint_error(text):
    try:
        card = checkpoint.parse_card(text)
    except CheckpointError:
        return
    assert isinstance(card, dict) and card["architecture"] in card_schema.CONFIGS


#: shipped checkpoints mutated in a copy (the MiniLM one is left out: 24 MB to load per example)
MUTATED = ["gru-mnist", "skip-gru-mnist", "skip-gru-adding", "skip-gru-frames",
           "skip-gru-frequency-0.5ms", "lstm-sst2", "skim-lstm-sst2", "transkimmer-small-sst2"]


@pytest.fixture(scope="module")
def shipped_copies(tmp_path_factory):
    d = tmp_path_factory.mktemp("shipped")
    return {n: Path(shutil.copytree(checkpoint.PRETRAINED_DIR / n, d / n)) for n in MUTATED}


def _mutate(data, card: dict) -> dict:
    """``card`` with one value deep inside replaced, deleted or added."""
    card = json.loads(json.dumps(card))
    node, depth = card, 0
    while depth < 3:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, (dict, list)) or not child or data.draw(st.booleans()):
            action = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]))
            if action == "delete":
                del node[key]
            elif action == "add" and isinstance(node, dict):
                node[data.draw(st.text(max_size=6))] = data.draw(odd_numbers | json_values)
            else:
                node[key] = data.draw(odd_numbers | json_values)
            return card
        node, depth = child, depth + 1
    return card


@pytest.mark.slow          # about 10 s on 2 idle cores: each example loads a shipped model
@fuzz(10)
@given(data=st.data())
@within(60)
def test_mutated_shipped_cards_load_and_run_or_raise(shipped_copies, tmp_path_factory, capsys,
                                                     data):
    name = data.draw(st.sampled_from(MUTATED))
    d = shipped_copies[name]
    original = (checkpoint.PRETRAINED_DIR / name / checkpoint.CARD).read_text()
    card = _mutate(data, json.loads(original))
    (d / checkpoint.CARD).write_text(json.dumps(card))
    try:
        try:
            model, loaded = checkpoint.load(d)
        except CheckpointError:
            return
        # the card passed the schema: what it says must also run
        if loaded.get("task") in ("text-classification", "sst2-transkimmer"):
            f = tmp_path_factory.mktemp("in") / "in.txt"
            f.write_text("a gorgeous , witty , seductive movie .\nbad\n")
            _main(["predict", d, "--input", f, "--json"], capsys)
        else:
            _main(["predict", d, "--index", "3", "--json"], capsys)
    finally:
        (d / checkpoint.CARD).write_text(original)
    assert (checkpoint.PRETRAINED_DIR / name / checkpoint.CARD).read_text() == original


# ----------------------------------------------------------------------------- argv
def _subcommands(parser, path=()):
    """(command path, its parser) for every leaf subcommand."""
    subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    if not subs:
        yield path, parser
        return
    for name, p in subs[0].choices.items():
        yield from _subcommands(p, path + (name,))


PARSER = cli.build_parser()
# `results` and `ship` hand the rest of the line to their module's own parser (cli._FAMILIES):
# `results mnist` with no option is real work (every MNIST checkpoint evaluated), not parsing;
# those parsers are fuzzed below with --help and bad options only.
COMMANDS = sorted(((c, p) for c, p in _subcommands(PARSER) if c[0] not in ("results", "ship")),
                  key=lambda cp: cp[0])
VALUES = st.sampled_from(["0", "-1", "1", "2", "7", "28", "0.5", "1e-9", "nan", "inf", "-inf",
                          "1e309", "99999999999999999999", "4097", "200000", "", " ", "../../x",
                          "a/b", "/", ".", "..", "x" * 70, "skip-gru-mnist", "gru,lstm", "1,2",
                          "0.1,0.2", "--", "-h", "\u202e", "é", "\x00", "a\nb"]) \
    | st.integers(-10**6, 10**6).map(str) | st.floats().map(str) | st.text(max_size=10)
#: after parsing, these hold whatever the user typed, validated: positive or at least zero
POSITIVE = {"batch_size", "epochs", "threads", "hidden", "layers", "heads", "length",
            "feature_size", "embed", "small", "max_tokens", "digits", "batch", "lr",
            "min_freq", "max_vocab"}
NONNEG = {"lam", "gamma", "max_minutes", "gate_lr_scale", "lam_warmup_epochs",
          "lam_warmup_steps", "min_flop_r", "min_reduction", "seed",
          "steps", "eval_every"}          # 0: the default (bench paper), once an epoch


@st.composite
def argvs(draw):
    path, parser = draw(st.sampled_from(COMMANDS))
    options = [o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")]
    tokens = st.sampled_from(options) | VALUES if options else VALUES
    rest = draw(st.lists(tokens, max_size=8))
    if draw(st.booleans()) and options:                  # option-value pairs, likelier to parse
        rest = [t for o in draw(st.lists(st.sampled_from(options), max_size=4))
                for t in (o, draw(VALUES))] + rest
    return list(path) + rest


@fuzz(150)
@given(argv=argvs())
@within(12)
def test_random_argv_is_parsed_or_refused_in_one_line(tmp_path, monkeypatch, capsys, argv):
    """Every subcommand: exit code 2 with argparse's message, or (the work itself stubbed
    out) a parsed command line whose values are all within their stated ranges; nothing is
    written while parsing."""
    seen = []
    monkeypatch.setattr(cli, "_run", lambda args: seen.append(args) or 0)
    monkeypatch.chdir(tmp_path)
    code, out, err = _main(argv, capsys)
    assert not any(tmp_path.iterdir())
    if code != 0 or not seen:
        return                                            # refused, or --help / --version
    args = vars(seen[0])
    for key, v in args.items():
        if v is None or isinstance(v, bool):
            continue
        if key in POSITIVE:
            assert v > 0, (key, v)
        if key in NONNEG:
            assert v >= 0, (key, v)
        if isinstance(v, float):
            assert np.isfinite(v), (key, v)
    if args["command"] == "train":
        assert card_schema.NAME.match(args["name"]) and ".." not in args["name"]
        assert args.get("steps", 1) > 0 and args.get("eval_every", 1) >= 0
    if args.get("threshold") is not None:
        assert 0.0 <= args["threshold"] <= 1.0


# ----------------------------------------------------------------------------- input files
line_bytes = (st.binary(max_size=200)
              | st.text(max_size=80).map(str.encode)
              | st.sampled_from([b"\xff\xfe", b"\xc3(", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28",
                                 b"\x00\x01\x1b[31m", "\u202eevil".encode(), b"\xef\xbb\xbf",
                                 b"\r", b"\r\n", b"good film", b"!"])
              | st.integers(5_000, 40_000).map(lambda n: b"fun " * (n // 4)))
input_files = st.lists(line_bytes, max_size=12).map(lambda parts: b"\n".join(parts))


@fuzz(200)
@given(data=input_files)
@within(12)
def test_read_lines_returns_text_or_input_error(tmp_path_factory, data):
    f = tmp_path_factory.mktemp("in") / "in.txt"
    f.write_bytes(data)
    try:
        lines, warnings = _input.read_lines(str(f))
    except ValueError as e:                               # safety.InputError
        assert "has no text" in str(e)
        return
    assert 1 <= len(lines) <= _input.MAX_LINES
    numbers = [n for n, _ in lines]
    assert numbers == sorted(set(numbers))
    assert all(t and len(t) <= _input.MAX_LINE_CHARS for _, t in lines)
    assert all("\x00" not in t and "\u202e" not in t for _, t in lines)


@fuzz(30)
@given(kind=st.sampled_from(["text", "dense-text", "tk"]), data=input_files)
@within(30)
def test_text_predict_on_random_files(tiny, tmp_path_factory, capsys, kind, data):
    f = tmp_path_factory.mktemp("in") / "in.txt"
    f.write_bytes(data)
    code, out, err = _main(["predict", tiny[kind], "--input", f, "--json"], capsys)
    if code == 0:
        rows = [json.loads(x) for x in out.splitlines()]
        assert rows and all("label" in r or "error" in r for r in rows)
        if kind != "tk":
            assert all(len(r["tokens"]) == len(r["read"]) for r in rows if "tokens" in r)
    else:
        assert out == "" and "has no text" in err


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


images = (st.binary(max_size=400)
          | st.builds(lambda h, w, seed: _png(np.random.default_rng(seed).integers(
              0, 256, (h, w), dtype=np.uint8)), st.integers(1, 48), st.integers(1, 48),
              st.integers(0, 2**16))
          | st.builds(lambda b, cut: _png(np.full((20, 20), 255, np.uint8))[:cut] + b,
                      st.binary(max_size=20), st.integers(0, 80)))


@fuzz(40)
@given(data=images)
@within(30)
def test_image_predict_on_random_files(tiny, tmp_path_factory, capsys, data):
    f = tmp_path_factory.mktemp("in") / "digit.png"
    f.write_bytes(data)
    code, out, err = _main(["predict", tiny["mnist"], "--input", f, "--json"], capsys)
    if code == 0:
        r = json.loads(out)
        assert 0 <= r["label"] <= 9 and r["true_label"] is None
    else:
        assert out == ""


@pytest.mark.parametrize("family", sorted(" ".join(k) for k in cli._FAMILIES))
@pytest.mark.parametrize("extra", [["--help"], ["--no-such-option"], ["--threads", "x"]])
def test_results_and_ship_refuse_or_explain_in_their_own_words(family, extra, capsys):
    code, out, err = _main(family.split() + extra, capsys)
    if extra == ["--help"]:
        assert code == 0 and f"usage: skimviz {family}" in out
    else:
        assert code == 2 and f"skimviz {family}: error:" in err and "Traceback" not in err
