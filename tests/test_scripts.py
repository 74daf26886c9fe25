"""The repo's scripts: shipping the bench's Table 2 checkpoints under their short names, and a
Transkimmer checkpoint in its shipped encoding."""
import importlib.util
import json
from pathlib import Path

import torch

from skimviz import checkpoint
from skimviz.tasks import frequency

ROOT = Path(__file__).resolve().parent.parent


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ship_frequency_table_copies_renames_and_reports_missing(tmp_path, capsys):
    ship = _script("ship_frequency_table")
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
    """The shipped copy: fp16 + int8 rows (all encoder Linears for MiniLM), sharded under the
    limit, metrics measured again on dev and written to the card (old ones kept)."""
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
    assert len(shipped["weights_encoding"]["int8_rowwise"]) == 1 + 2 * 6   # word + 2 layers × 6
    assert shipped["metrics_before_shipping"]["dev_accuracy"] == 0.123
    model, _ = checkpoint.load(out / "tk-test")
    r = tk.evaluate(model, tk.text_encoder(shipped, out / "tk-test"), texts, labels)
    assert shipped["metrics"]["dev_accuracy"] == r["accuracy"]              # measured, not copied
    assert shipped["lambda_sweep"][0]["accuracy"] == r["accuracy"]
    src_model, _ = checkpoint.load(src)                                     # word table: bit for bit
    assert torch.equal(model.word.weight, src_model.word.weight)
