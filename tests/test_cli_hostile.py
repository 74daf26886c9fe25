"""Hostile input to the CLI and the checkpoint loader: cards that would allocate or crash,
arguments that would write outside --work or fail after a whole training, input files that are
folders, empty, not UTF-8, too long or too large. Each gets one clear message, never a
traceback, and nothing is built, trained or written first."""
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from skimviz import cli
from skimviz.safety import human_bytes
from skimviz.training import card_schema, checkpoint
from skimviz.training.checkpoint import CheckpointError
from tests._tiny import mnist_checkpoint, text_checkpoint, transkimmer_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    return {"mnist": mnist_checkpoint(d), "text": text_checkpoint(d),
            "dense-text": text_checkpoint(d, "tiny-dense-text", skim=False),
            "tk": transkimmer_checkpoint(d)}


def _copy(src: Path, dst: Path, **card_changes) -> Path:
    """A copy of checkpoint ``src`` whose card has ``card_changes`` (a value None deletes)."""
    shutil.copytree(src, dst)
    card = json.loads((dst / "card.json").read_text())
    for k, v in card_changes.items():
        if v is None:
            card.pop(k, None)
        else:
            card[k] = v
    (dst / "card.json").write_text(json.dumps(card))
    return dst


def _run(argv, capsys):
    """cli.main in-process: (exit code, stdout, stderr); a traceback fails the test."""
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


# ----------------------------------------------------------------------------- 1. cards
def test_every_shipped_card_follows_the_schema():
    cards = sorted(checkpoint.PRETRAINED_DIR.glob("*/card.json"))
    assert len(cards) >= 10
    for f in cards:
        card = card_schema.parse(f.read_bytes())
        assert card["name"] == f.parent.name


def _config(arch_config, **change):
    return {**arch_config, **change}


HOSTILE_CONFIGS = [
    ("hidden_size", 200_000, "hidden_size must be an integer in 1..4096"),   # 480 GB of weights
    ("hidden_size", -5, "hidden_size must be an integer"),
    ("hidden_size", "110", "hidden_size must be an integer"),
    ("hidden_size", 110.0, "hidden_size must be an integer"),
    ("hidden_size", True, "hidden_size must be an integer"),
    ("num_layers", 10**80, "num_layers must be an integer"),
    ("cell", "os.system", "cell must be one of"),
    ("skip", "yes", "skip must be true or false"),
    ("bogus", 1, "known model"),
    ("input_size", 2, "task 'mnist-pixels' needs config input_size = 1"),
]


@pytest.mark.parametrize("key,value,message", HOSTILE_CONFIGS)
def test_a_hostile_config_is_refused_before_anything_is_built(tiny, tmp_path, monkeypatch,
                                                              key, value, message):
    card = json.loads((tiny["mnist"] / "card.json").read_text())
    d = _copy(tiny["mnist"], tmp_path / "x", config=_config(card["config"], **{key: value}))

    def forbidden(*a, **k):
        raise AssertionError("built or read before the card was checked")
    monkeypatch.setattr(checkpoint, "build", forbidden)
    monkeypatch.setattr(checkpoint, "read_tensors", forbidden)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(d)


def test_side_zero_and_a_width_the_heads_do_not_divide_are_refused(tiny, tmp_path):
    from skimviz.models.clip_classifier import ClipClassifier
    m = ClipClassifier(4, 10, feature_size=4)
    card = {"name": "clip", "task": "frames", "architecture": "ClipClassifier",
            "config": {**m.config, "side": 0}}
    with pytest.raises(CheckpointError, match="side must be an integer in 4..128"):
        card_schema.validate(card)
    card["config"]["side"] = 14                     # valid for the class, not for 28×28 frames
    with pytest.raises(CheckpointError, match="side = 28"):
        card_schema.validate(card)
    tk = json.loads((tiny["tk"] / "card.json").read_text())
    tk["config"]["hidden"] = 17
    with pytest.raises(CheckpointError, match="multiple of heads"):
        card_schema.validate(tk)


def test_a_model_over_the_weight_limit_is_refused_without_allocating():
    card = {"name": "big", "architecture": "TextClassifier", "task": "text-classification",
            "config": {"vocab_size": 2_000_000, "embed_dim": 2048, "hidden_size": 100,
                       "small_size": 10, "num_classes": 2}}
    with pytest.raises(CheckpointError, match="the limit is"):
        card_schema.validate(card)              # 4 G weights: counted on the meta device


@pytest.mark.parametrize("text,message", [
    ('{"name": "x", "architecture": "SequenceClassifier", "config": {}, "metrics": '
     + "[" * 100_000 + "]" * 100_000 + "}", "nests deeper"),
    ('{"name": "x", "architecture": "SequenceClassifier", "config": {}, "metrics": '
     + "[" * 20 + "]" * 20 + "}", "nests deeper"),
    ('{"name": "x", "architecture": "SequenceClassifier", "config": {"hidden_size": '
     + "9" * 5000 + "}}", "not valid JSON"),
    ('{"name": "../../etc", "architecture": "SequenceClassifier", "config": {}}',
     "not a checkpoint name"),
    ('{"name": "x", "architecture": "SequenceClassifier", "task": "mnist-pixels", '
     '"config": {"input_size": 1, "hidden_size": 4, "num_classes": 10}, "input": {"side": 0}}',
     "input.side must be one of"),
    ('{"name": "x", "architecture": "SequenceClassifier", "task": "rm -rf", '
     '"config": {"input_size": 1, "hidden_size": 4, "num_classes": 10}}', "'task'"),
    ('{"name": "x", "architecture": "SequenceClassifier", "skim_threshold": NaN, '
     '"config": {"input_size": 1, "hidden_size": 4, "num_classes": 10}}', "skim_threshold"),
    ('{"name": "x", "architecture": "SequenceClassifier", "metrics": [1], '
     '"config": {"input_size": 1, "hidden_size": 4, "num_classes": 10}}', "'metrics' must be"),
])
def test_malformed_cards_get_a_clear_message(text, message):
    with pytest.raises(CheckpointError, match=message):
        checkpoint.parse_card(text)


def test_a_card_file_over_the_size_limit_is_refused_with_its_true_size(tiny, tmp_path):
    d = _copy(tiny["mnist"], tmp_path / "x")
    with open(d / "card.json", "r+b") as f:
        f.truncate(20 * 2**20)                         # 20 MiB (sparse)
    with pytest.raises(CheckpointError, match=r"20\.0 MiB; the limit is 1\.0 MiB"):
        checkpoint.load(d)


def test_a_vocabulary_larger_than_the_model_is_refused(tiny, tmp_path, capsys):
    d = _copy(tiny["text"], tmp_path / "t")
    (d / "vocab.txt").write_text((d / "vocab.txt").read_text() + "extra\nwords\n")
    (tmp_path / "in.txt").write_text("good film\n")
    rc, _, err = _run(["predict", d, "--input", tmp_path / "in.txt"], capsys)
    assert rc == 2 and "vocab.txt has 13 entries but its model embeds only 11" in err
    k = _copy(tiny["tk"], tmp_path / "k")
    (k / "vocab.txt").write_text("<pad>\n<unk>\nno-cls\n")
    rc, _, err = _run(["predict", k, "--input", tmp_path / "in.txt"], capsys)
    assert rc == 2 and "[CLS]" in err


def test_nan_weights_are_refused(tiny, tmp_path):
    m, card = checkpoint.load(tiny["mnist"])
    with torch.no_grad():
        m.head.weight[0, 0] = math.nan
    checkpoint.save(m, card, tmp_path / "nan")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        checkpoint.load(tmp_path / "nan")


def test_the_cli_reports_a_hostile_card_in_one_line(tiny, tmp_path, capsys):
    card = json.loads((tiny["mnist"] / "card.json").read_text())
    d = _copy(tiny["mnist"], tmp_path / "x", config=_config(card["config"], hidden_size=200_000))
    for argv in (["evaluate", d, "--json"], ["predict", d, "--index", "0"]):
        rc, _, err = _run(argv, capsys)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ")


def test_the_cards_own_skim_threshold_is_applied(tiny, tmp_path):
    d = _copy(tiny["text"], tmp_path / "t", skim_threshold=0.8)
    model, _ = checkpoint.load(d)
    assert model.rnn.skim_threshold == 0.8


# ----------------------------------------------------------------------------- 2. arguments
BAD_ARGS = [
    (["train", "mnist", "--dry-run", "--batch-size", "0"], "argument --batch-size"),
    (["train", "mnist", "--dry-run", "--epochs", "-1"], "argument --epochs"),
    (["train", "mnist", "--dry-run", "--lr", "0"], "argument --lr"),
    (["train", "mnist", "--dry-run", "--lr", "nan"], "argument --lr"),
    (["train", "mnist", "--dry-run", "--threads", "0"], "argument --threads"),
    (["train", "mnist", "--dry-run", "--max-minutes", "-5"], "argument --max-minutes"),
    (["train", "mnist", "--dry-run", "--hidden", "200000"], "argument --hidden"),
    (["train", "mnist", "--data-dir", "/no/such/folder"], "argument --data-dir"),
    (["train", "mnist"], "--data-dir is required"),
    (["train", "adding", "--dry-run", "--steps", "0"], "argument --steps"),
    (["train", "adding", "--dry-run", "--eval-every", "0"], "argument --eval-every"),
    (["train", "adding", "--dry-run", "--length", "0"], "argument --length"),
    (["train", "frames", "--dry-run", "--feature-size", "0"], "argument --feature-size"),
    (["train", "text", "--dry-run", "--hidden", "8", "--small", "8"], "must be below --hidden"),
    (["train", "text", "--dry-run", "--dropout", "1.5"], "argument --dropout"),
    (["train", "transkimmer", "--dry-run", "--hidden", "30"], "multiple of --heads"),
    (["train", "transkimmer", "--dry-run", "--sweep", "0.1,x"], "argument --sweep"),
    (["train", "transkimmer", "--dry-run", "--layers", "0"], "argument --layers"),
    (["evaluate", "skip-gru-mnist", "--threshold", "1.5"], "argument --threshold"),
    (["predict", "skip-gru-mnist", "--index", "-1"], "argument --index"),
    (["bench", "skip-rnn", "--digits", "0"], "argument --digits"),
]


@pytest.mark.parametrize("argv,message", BAD_ARGS)
def test_bad_arguments_are_usage_errors_before_any_work(argv, message, tmp_path, monkeypatch,
                                                        capsys):
    monkeypatch.chdir(tmp_path)
    if argv[:2] == ["train", "text"]:
        argv = argv + ["--data-dir", str(tmp_path)]
    rc, out, err = _run(argv + (["--out", "o", "--work", "w"] if argv[0] == "train" else []),
                        capsys)
    assert rc == 2 and message in err
    assert err.strip().splitlines()[-1].count("error") == 1
    assert not any(tmp_path.iterdir())                  # nothing written


@pytest.mark.parametrize("name", ["../../x", "a/b", "/tmp/x", "..", ".hidden", "", "x" * 65,
                                  "a\nb", "a b"])
def test_a_name_that_is_not_one_folder_is_refused_before_training(name, tmp_path, monkeypatch,
                                                                  capsys):
    work = tmp_path / "deep" / "er"
    monkeypatch.chdir(tmp_path)
    rc, out, err = _run(["train", "mnist", "--dry-run", "--hidden", "4", "--side", "7", "--name",
                         name, "--out", work / "o", "--work", work / "w"], capsys)
    assert rc == 2 and "argument --name" in err and out == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_help_and_version_exit_zero(capsys):
    assert cli.main(["--version"]) == 0
    assert cli.main(["train", "mnist", "--help"]) == 0
    assert "--batch-size" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 3. input files
def test_input_that_is_a_folder_is_a_usage_error(tiny, tmp_path, capsys):
    rc, _, err = _run(["predict", tiny["mnist"], "--input", tmp_path], capsys)
    assert rc == 2 and "is a folder" in err


@pytest.mark.parametrize("kind", ["text", "tk"])
def test_non_utf8_lines_are_read_and_reported(tiny, tmp_path, capsys, kind):
    f = tmp_path / "in.txt"
    f.write_bytes(b"good film\n\xff\xfe bad \xc3( film\nfun\n")
    rc, out, err = _run(["predict", tiny[kind], "--input", f, "--json"], capsys)
    rows = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and [r["line"] for r in rows] == [1, 2, 3]
    assert "\ufffd" in rows[1]["text"] and "bad" in rows[1]["text"]
    assert "line 2 is not valid UTF-8" in err


@pytest.mark.parametrize("kind", ["text", "tk"])
@pytest.mark.parametrize("content", [b"", b"\n\n  \n\t\n", b"\xef\xbb\xbf\r\n"])
def test_an_empty_input_is_an_error(tiny, tmp_path, capsys, kind, content):
    f = tmp_path / "in.txt"
    f.write_bytes(content)
    rc, out, err = _run(["predict", tiny[kind], "--input", f], capsys)
    assert rc == 2 and out == "" and "has no text to classify" in err


@pytest.mark.parametrize("kind", ["text", "tk"])
def test_line_and_length_limits_are_stated(tiny, tmp_path, capsys, monkeypatch, kind):
    from skimviz.tasks import _input
    monkeypatch.setattr(_input, "MAX_LINES", 3)
    f = tmp_path / "in.txt"
    f.write_text("good\n" + "fun " * 2000 + "\nbad\n\ndull\nthe film\n")
    rc, out, err = _run(["predict", tiny[kind], "--input", f, "--json"], capsys)
    rows = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and [r["line"] for r in rows] == [1, 2, 3]
    assert "has 5 lines of text; only the first 3 are read" in err
    assert "line 2 is longer than 5,000 characters" in err


def test_the_documented_line_limit_is_ten_thousand():
    from skimviz.tasks import _input
    assert _input.MAX_LINES == 10_000 and _input.MAX_LINE_CHARS == 5_000


@pytest.mark.parametrize("kind,limit", [("mnist", "2.0 MiB"), ("text", "16.0 MiB"),
                                        ("tk", "16.0 MiB")])
def test_file_sizes_in_messages_are_true(tiny, tmp_path, capsys, kind, limit):
    f = tmp_path / "big.bin"
    with open(f, "wb") as fh:
        fh.truncate(37 * 2**20)                           # 37 MiB (sparse)
    rc, _, err = _run(["predict", tiny[kind], "--input", f], capsys)
    assert rc == 2 and "big.bin" in err and limit in err
    assert f"is {human_bytes(37 * 2**20)}; the limit" in err and "37.0 MiB" in err


def test_transkimmer_predict_honours_the_threshold(tiny, tmp_path, capsys):
    f = tmp_path / "in.txt"
    f.write_text("a good film is fun !\n")
    kept = {}
    for theta in ("0", "0.5", "1"):
        rc, out, _ = _run(["predict", tiny["tk"], "--input", f, "--json", "--threshold", theta],
                          capsys)
        assert rc == 0
        kept[theta] = json.loads(out)["tokens_kept_per_layer"]
    n = len("a good film is fun !".split()) + 1                    # and [CLS]
    assert kept["1"] == [n, n] and kept["0"] == [1, 1]              # keep all / only [CLS]
    assert kept["0.5"] == [n, n]     # fresh predictors keep everything (bias +μ0, Eq. 9)


def test_predict_refuses_a_task_it_cannot_run(capsys):
    rc, _, err = _run(["predict", "skip-gru-adding", "--index", "0"], capsys)
    assert rc == 2 and "use evaluate" in err
    rc, _, err = _run(["evaluate", "skip-gru-adding", "--split", "test"], capsys)
    assert rc == 2 and "--split does not apply" in err
    rc, _, err = _run(["evaluate", "skip-gru-mnist", "--split", "dev"], capsys)
    assert rc == 2 and "valid or test" in err


# ----------------------------------------------------------------------------- 5. tokens/read
def test_skim_predict_json_has_tokens_and_read_flags(tiny, tmp_path, capsys):
    f = tmp_path / "in.txt"
    f.write_text("A good film, really fun!\nthe dull film\n")
    rows = {}
    for theta in ("0", "1"):
        rc, out, _ = _run(["predict", tiny["text"], "--input", f, "--json", "--threshold",
                           theta], capsys)
        assert rc == 0
        rows[theta] = [json.loads(x) for x in out.splitlines()]
    first = rows["1"][0]
    assert first["tokens"] == ["a", "good", "film", ",", "really", "fun", "!"]
    assert len(first["read"]) == len(first["tokens"])
    assert all(r["read"] == [True] * len(r["tokens"]) for r in rows["1"])   # θ=1: never skim
    assert all(r["read"] == [False] * len(r["tokens"]) for r in rows["0"])  # θ=0: always skim
    rc, out, _ = _run(["predict", tiny["text"], "--input", f, "--json"], capsys)
    row = json.loads(out.splitlines()[0])
    assert all(isinstance(r, bool) for r in row["read"])
    assert row["skim_rate"] == pytest.approx(1 - sum(row["read"]) / len(row["read"]))
    rc, out, _ = _run(["predict", tiny["dense-text"], "--input", f, "--json"], capsys)
    row = json.loads(out.splitlines()[1])
    assert row["tokens"] == ["the", "dull", "film"] and row["read"] == [True] * 3


# ----------------------------------------------------------------------------- 4. collapse
def _fake_eval(accuracy, update_rate, steps=196):
    def fn(model, x, y, *a, **k):
        return {"accuracy": accuracy, "updates": update_rate * steps,
                "update_rate": update_rate, "flops": 1.0, "n": len(x)}
    return fn


@pytest.mark.parametrize("accuracy,rate,collapsed", [(0.9, 1 / 196, "0.5% of its input"),
                                                     (0.1, 0.5, "chance level"),
                                                     (0.9, 1.0, None), (0.9, 0.3, None)])
def test_a_collapsed_mnist_run_is_reported_in_the_cli_and_the_card(
        tmp_path, capsys, monkeypatch, accuracy, rate, collapsed):
    from skimviz.tasks import mnist
    monkeypatch.setattr(mnist, "evaluate_classifier", _fake_eval(accuracy, rate))
    rc, out, err = _run(["train", "mnist", "--dry-run", "--hidden", "4", "--side", "14",
                         "--name", "c", "--out", tmp_path, "--work", tmp_path / "w"], capsys)
    card = json.loads((tmp_path / "c" / "card.json").read_text())
    assert rc == 0
    if collapsed is None:
        assert "collapsed" not in card and "collapsed" not in err
    else:
        assert collapsed in card["collapsed"]["reason"]
        lines = [ln for ln in err.splitlines() if "collapsed" in ln]
        assert len(lines) == 1 and lines[0].startswith("warning: c collapsed: ")


def test_a_collapsed_signal_run_is_reported(tmp_path, capsys, monkeypatch):
    from skimviz.tasks import adding
    monkeypatch.setattr(adding, "measure", lambda model, x, y: {
        "mse": 0.2, "updates": 25.0, "update_rate": 0.5, "flops": 1.0, "n": len(x),
        "seq_len": x.shape[1]})
    rc, out, err = _run(["train", "adding", "--dry-run", "--hidden", "4", "--name", "a",
                         "--out", tmp_path, "--work", tmp_path / "w"], capsys)
    card = json.loads((tmp_path / "a" / "card.json").read_text())
    assert rc == 0 and "predicting the mean" in card["collapsed"]["reason"]
    assert "warning: a collapsed" in err


def test_text_models_that_read_nothing_are_collapsed():
    from skimviz.tasks import skim_text, transkimmer
    assert "big LSTM" in skim_text.collapsed({"accuracy": 0.85, "skim_rate": 0.995}, 2,
                                             True)["reason"]
    assert skim_text.collapsed({"accuracy": 0.85, "skim_rate": 0.995}, 2, False) is None
    assert skim_text.collapsed({"accuracy": 0.85, "skim_rate": 0.6}, 2, True) is None
    v = {"accuracy": 0.8, "tokens_mean": 10.0, "tokens_kept_per_layer": [1.0, 1.0, 1.0]}
    assert "beyond [CLS]" in transkimmer.collapsed(v, 2, True)["reason"]
    v["tokens_kept_per_layer"] = [9.0, 5.0, 2.0]
    assert transkimmer.collapsed(v, 2, True) is None


@pytest.mark.parametrize("kind", ["text", "tk"])
def test_an_empty_evaluation_split_is_an_error(tiny, tmp_path, capsys, kind):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "dev.tsv").write_text("sentence\tlabel\n")
    rc, _, err = _run(["evaluate", tiny[kind], "--data-dir", tmp_path, "--split", "dev"], capsys)
    assert rc == 2 and ("no texts" in err or "no sentences" in err)


def test_a_model_over_the_weight_limit_is_refused_before_training(tmp_path, capsys):
    rc, out, err = _run(["train", "transkimmer", "--dry-run", "--hidden", "4096", "--layers",
                         "48", "--heads", "64", "--out", tmp_path / "o", "--work",
                         tmp_path / "w"], capsys)
    assert rc == 2 and "the limit is 67,108,864" in err and "step" not in out
    assert not any(tmp_path.iterdir())


def test_reexport_of_a_card_without_its_training_record_is_an_error(tiny, tmp_path, capsys):
    d = _copy(tiny["mnist"], tmp_path / "tiny-mnist")
    rc, _, err = _run(["train", "mnist", "--reexport", "--name", "tiny-mnist", "--out", tmp_path,
                       "--work", tmp_path / "w"], capsys)
    assert rc == 2 and "lacks what --reexport needs" in err
    assert json.loads((d / "card.json").read_text()) == json.loads(
        (tiny["mnist"] / "card.json").read_text())                 # nothing rewritten


def test_a_vocabulary_file_over_the_limit_is_refused_with_its_true_size(tiny, tmp_path, capsys):
    d = _copy(tiny["text"], tmp_path / "t")
    with open(d / "vocab.txt", "r+b") as f:
        f.truncate(21 * 2**20)
    (tmp_path / "in.txt").write_text("good film\n")
    rc, _, err = _run(["predict", d, "--input", tmp_path / "in.txt"], capsys)
    assert rc == 2 and "vocab.txt is 21.0 MiB; the limit is 4.0 MiB" in err
