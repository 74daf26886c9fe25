"""The repo's scripts: shipping the bench's Table 2 checkpoints under their short names, a
Transkimmer checkpoint in its shipped encoding, shifting its predictors' keep bias, and its check
on IMDB reviews; the Transkimmer engine's choices timed one by one."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from skimviz.tasks import frequency
from skimviz.training import checkpoint

ROOT = Path(__file__).resolve().parent.parent


def _script(name):
    """A module that ships or measures: ``skimviz ship ...`` ones from the package, one-off
    experiments from ``experiments/``."""
    if name in ("ship_transkimmer", "ship_frequency"):
        from importlib import import_module
        return import_module(f"skimviz.training.{name}")
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ship_frequency_table_copies_renames_and_reports_missing(tmp_path, capsys):
    ship = _script("ship_frequency")
    work, out = tmp_path / "work", tmp_path / "out"
    m = frequency.make_model("gru", hidden=4)
    src, name = ship.ROWS[1]
    checkpoint.save(m, {"name": src, "task": frequency.TASK, "architecture": "SequenceClassifier",
                        "config": m.config, "training": {"lambda": 1e-5, "dry_run": False}},
                    work / src)
    dry = ship.ROWS[0][0]
    checkpoint.save(m, {"name": dry, "task": frequency.TASK, "architecture": "SequenceClassifier",
                        "config": m.config, "training": {"dry_run": True}}, work / dry)
    assert ship.main(["--work", str(work), "--out", str(out)]) == 1     # three rows missing
    text = capsys.readouterr().out
    assert text.count("missing:") == len(ship.ROWS) - 2 and "is a dry run" in text
    assert sorted(p.name for p in out.iterdir()) == [name]
    card = json.loads((out / name / "card.json").read_text())
    assert card["name"] == name and card["copied_from"] == src
    assert (out / name / "model.safetensors").read_bytes() == \
        (work / src / "model.safetensors").read_bytes()
    checkpoint.load(out / name)


def test_ship_transkimmer_reencodes_shards_and_measures_again(tmp_path, capsys):
    """The shipped copy: fp16 + int8 rows (encoder Linears, predictors' first Linear, and for
    MiniLM the word table), sharded under the limit, metrics measured again on dev and written
    to the card (old ones kept)."""
    from skimviz.tasks import transkimmer as tk
    ship = _script("ship_transkimmer")
    texts, labels = tk.synthetic_sst(40, 1)
    (tmp_path / "data" / "sst2").mkdir(parents=True)
    (tmp_path / "data" / "sst2" / "dev.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
    vocab = tk.build_vocab(texts, min_freq=1)
    torch.manual_seed(0)
    m = tk.TranskimmerClassifier(len(vocab), 32, 2, 4, 64, tk.MAX_LEN)
    card = {"name": "tk-test", "task": tk.TASK, "architecture": "TranskimmerClassifier",
            "config": m.config, "input": {"tokenizer": "words", "file": "vocab.txt"},
            "metrics": {"dev_accuracy": 0.123, "flops_reduction": 9.9},
            "lambda_sweep": [{"lambda": 0.3, "accuracy": 0.123, "shipped": True}],
            "training": {"model": "minilm", "weights_dtype": "float16"}}
    src = checkpoint.save(m.half(), card, tmp_path / "runs" / "tk-test",
                          extra_files={"vocab.txt": vocab.to_text()}, int8_rows=("word.weight",))
    out = tmp_path / "out"
    assert ship.main([str(src), "--out", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    assert "dev accuracy" in capsys.readouterr().out
    shipped = json.loads((out / "tk-test" / "card.json").read_text())
    # word + 2 layers × 6 Linears + 2 predictors' first Linear
    assert len(shipped["weights_encoding"]["int8_rowwise"]) == 1 + 2 * 6 + 2
    assert shipped["metrics_before_shipping"]["dev_accuracy"] == 0.123
    model, _ = checkpoint.load(out / "tk-test")
    r = tk.evaluate(model, tk.text_encoder(shipped, out / "tk-test"), texts, labels)
    assert shipped["metrics"]["dev_accuracy"] == r["accuracy"]              # measured, not copied
    assert shipped["lambda_sweep"][0]["accuracy"] == r["accuracy"]
    src_model, _ = checkpoint.load(src)                                     # word table: bit for bit
    assert torch.equal(model.word.weight, src_model.word.weight)
    # --name: shipped under another name; the card says which run it was
    assert ship.main([str(src), "--out", str(out), "--data-dir", str(tmp_path / "data"),
                      "--name", "tk-other"]) == 0
    other = json.loads((out / "tk-other" / "card.json").read_text())
    assert other["name"] == "tk-other" and other["trained_as"] == "tk-test"
    assert "--name tk-other" in other["shipped_by"]
    checkpoint.load(out / "tk-other")


def _tk_checkpoint(tmp_path, name="tk-src"):
    """A small Transkimmer checkpoint (word tokens) and a synthetic SST-2 dev split."""
    from skimviz.tasks import transkimmer as tk
    texts, labels = tk.synthetic_sst(40, 1)
    (tmp_path / "data" / "sst2").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "sst2" / "dev.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
    vocab = tk.build_vocab(texts, min_freq=1)
    torch.manual_seed(0)
    m = tk.TranskimmerClassifier(len(vocab), 32, 3, 4, 64, tk.MAX_LEN)
    card = {"name": name, "task": tk.TASK, "architecture": "TranskimmerClassifier",
            "config": m.config, "input": {"tokenizer": "words", "file": "vocab.txt"},
            "metrics": {"dev_accuracy": 0.5, "flops_reduction": 1.0},
            "target": {"dense_twin_accuracy": 0.0, "reached": False},
            "training": {"model": "small"}}
    src = checkpoint.save(m, card, tmp_path / "runs" / name,
                          extra_files={"vocab.txt": vocab.to_text()})
    return src, texts, labels


def test_shift_keep_bias_moves_the_decisions_and_never_writes_the_source(tmp_path, capsys):
    """δ on the keep logit's bias: a large δ keeps every token, a large −δ only [CLS]; the
    copy's metrics are measured on dev; per-layer values; the source is untouched."""
    shift = _script("shift_keep_bias")
    src, _, _ = _tk_checkpoint(tmp_path)
    before = {f.name: f.read_bytes() for f in src.iterdir()}
    data = ["--data-dir", str(tmp_path / "data")]
    assert shift.main([str(src), str(tmp_path / "keep"), "--delta", "50", *data]) == 0
    keep = json.loads((tmp_path / "keep" / "card.json").read_text())
    assert keep["metrics"]["kept_fraction_per_layer"] == [1.0, 1.0, 1.0]
    assert keep["metrics_before_shift"]["dev_accuracy"] == 0.5
    assert keep["keep_bias_shift"] == {"source": "tk-src", "delta_per_layer": [50.0] * 3,
                                       "command": keep["keep_bias_shift"]["command"]}
    assert shift.main([str(src), str(tmp_path / "skim"), "--delta", "0,-50,0", *data]) == 0
    skim = json.loads((tmp_path / "skim" / "card.json").read_text())
    assert skim["metrics"]["tokens_kept_per_layer"][1:] == [1.0, 1.0]    # [CLS] only from layer 1
    assert skim["metrics"]["flops_reduction"] > keep["metrics"]["flops_reduction"]
    for c in (keep, skim):                  # the twin's accuracy is 0 here: reduction decides
        assert c["target"]["reached"] == (c["metrics"]["flops_reduction"] >= 2.0)
    assert skim["target"]["reached"] and not keep["target"]["reached"]
    m_src, _ = checkpoint.load(src)
    m_skim, _ = checkpoint.load(tmp_path / "skim")
    b0, b1 = m_src.gate[1].net[-1].bias, m_skim.gate[1].net[-1].bias
    assert b1[1] == b0[1] - 50 and b1[0] == b0[0]                        # only the keep logit
    assert {f.name: f.read_bytes() for f in src.iterdir()} == before
    assert "flops_reduction" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        shift.main([str(src), str(src), "--delta", "1"])                 # never overwrite it
    with pytest.raises(ValueError, match="3 predictors"):
        shift.main([str(src), str(tmp_path / "bad"), "--delta", "1,2"])


def test_transfer_check_evaluates_on_held_out_imdb_reviews(tmp_path, capsys):
    """IMDB validation reviews (a synthetic archive here): one JSON line per checkpoint, with
    the given number of reviews; a checkpoint of another task is refused."""
    import io
    import tarfile
    import zlib

    from skimviz.data.text import IMDB_VALID_SHARE
    check = _script("transkimmer_transfer_check")
    src, texts, labels = _tk_checkpoint(tmp_path)
    (tmp_path / "data" / "imdb").mkdir(parents=True)
    n_valid = 0
    with tarfile.open(tmp_path / "data" / "imdb" / "aclImdb_v1_train.tar.gz", "w:gz") as t:
        for i, (text, y) in enumerate(zip(texts * 5, labels * 5)):
            fname = f"{i}_7.txt"
            n_valid += zlib.crc32(fname.encode()) % 10_000 < IMDB_VALID_SHARE * 10_000
            data = (text + "<br /> more").encode()
            info = tarfile.TarInfo(f"aclImdb/train/{'pos' if y else 'neg'}/{fname}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    assert n_valid >= 5
    assert check.main([str(src), str(src), "--data-dir", str(tmp_path / "data"), "--n", "5",
                       "--threads", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and rows[0] == rows[1] and rows[0]["n"] == 5
    assert 0.0 <= rows[0]["accuracy"] <= 1.0 and rows[0]["flops_reduction"] > 0.5
    m = frequency.make_model("gru", hidden=4)
    other = checkpoint.save(m, {"name": "freq", "task": frequency.TASK,
                                "architecture": "SequenceClassifier", "config": m.config},
                            tmp_path / "freq")
    assert check.main([str(other), "--data-dir", str(tmp_path / "data")]) == 1


def test_transkimmer_engine_parts_times_each_choice(capsys):
    parts = _script("transkimmer_engine_parts")
    assert parts.main(["--name", "transkimmer-small-sst2", "--reps", "1"]) == 0
    text = capsys.readouterr().out
    for n in (128, 54, 9):
        assert f"n = {n:3d}: layer, Linears on W" in text
    assert "baddbmm+softmax+bmm" in text
    assert ("one token: float32 kernel" in text and "24 of 24 Linears as int8" in text) or \
        "not built" in text
    assert "AVX-512 off → on: all" in text or "AVX-512: not on" in text or "not built" in text
    assert "AVX-512 off → on: all 4 layers on   9 tokens" in text or "AVX-512 off" not in text
