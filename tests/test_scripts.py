"""The repo's scripts: shipping the bench's Table 2 checkpoints under their short names."""
import importlib.util
import json
from pathlib import Path

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
