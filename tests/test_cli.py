"""The command line: train --dry-run, evaluate --json, predict --json, bench --json."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skimviz.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A dry-run Skip GRU and dense GRU exported into a temporary folder."""
    d = tmp_path_factory.mktemp("ck")
    for extra in ([], ["--dense"]):
        name = "tiny-dense" if extra else "tiny-skip"
        assert main(["train", "mnist", "--dry-run", "--hidden", "8", "--side", "7",
                     "--name", name, "--out", str(d), "--work", str(d / "work"), *extra]) == 0
    return d


def _json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_help_lists_the_subcommands():
    r = subprocess.run([sys.executable, "-m", "skimviz", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0
    for cmd in ("train", "evaluate", "predict", "bench"):
        assert cmd in r.stdout


def test_dry_run_card(tiny):
    card = json.loads((tiny / "tiny-skip" / "card.json").read_text())
    assert card["training"]["dry_run"] is True
    assert card["training"]["command"].startswith("python -m skimviz train mnist")
    assert card["config"]["skip"] is True and card["input"]["side"] == 7
    assert [s["threshold"] for s in card["threshold_sweep"]][:2] == [0.3, 0.4]


def test_evaluate_json(tiny, capsys):
    assert main(["evaluate", str(tiny / "tiny-skip"), "--split", "valid", "--json"]) == 0
    r = _json(capsys)
    assert r["n"] == 5000 and 0 <= r["accuracy"] <= 1
    assert 1 <= r["updates_mean"] <= 49 and r["flops_reduction"] > 0
    assert main(["evaluate", str(tiny / "tiny-skip"), "--threshold", "1.0", "--json"]) == 0
    assert _json(capsys)["threshold"] == 1.0


def test_evaluate_test_split_needs_the_files(tiny, tmp_path, capsys):
    assert main(["evaluate", str(tiny / "tiny-skip"), "--split", "test", "--data-dir",
                 str(tmp_path), "--json"]) == 2
    assert "t10k-images" in capsys.readouterr().err


def test_evaluate_unknown_checkpoint(capsys):
    assert main(["evaluate", "no-such-model", "--json"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_predict_index_and_image(tiny, tmp_path, capsys):
    assert main(["predict", str(tiny / "tiny-skip"), "--index", "3", "--json"]) == 0
    r = _json(capsys)
    assert 0 <= r["label"] <= 9 and len(r["probabilities"]) == 10 and r["steps"] == 49
    assert r["true_label"] is not None
    from PIL import Image
    img = np.zeros((40, 40), np.uint8)
    img[5:35, 18:22] = 255
    Image.fromarray(img).save(tmp_path / "one.png")
    assert main(["predict", str(tiny / "tiny-skip"), "--input", str(tmp_path / "one.png"),
                 "--json"]) == 0
    assert _json(capsys)["true_label"] is None
    (tmp_path / "bad.png").write_bytes(b"not a png")
    assert main(["predict", str(tiny / "tiny-skip"), "--input", str(tmp_path / "bad.png")]) == 2
    assert main(["predict", str(tiny / "tiny-skip"), "--index", "5000"]) == 2


def test_bench_json(tiny, capsys):
    assert main(["bench", "skip-rnn", "--name", str(tiny / "tiny-skip"), "--dense-name",
                 str(tiny / "tiny-dense"), "--digits", "2", "--batch", "8", "--json"]) == 0
    r = _json(capsys)
    assert r["steps"] == 49 and r["flop_reduction"] > 0
    for k in ("skip", "skip-forced-dense", "dense"):
        assert r["batch1_ms"][k] > 0 and r["batch_ms"][k] > 0


def test_bench_kernels_quick_json(capsys):
    """``bench kernels --quick --json``: every row measured, every target judged (tiny sizes, so
    the verdicts themselves are not asserted), the machine described."""
    assert main(["bench", "kernels", "--quick", "--json", "--threads", "1"]) == 0
    r = _json(capsys)
    assert r["benchmark"] == "kernels" and r["quick"] is True and r["threads"] == 1
    assert "interleaved" in r["timing"] and set(r["load_avg"]) == {"before", "after"}
    assert all(x["repeats"] >= 3 for x in r["rows"])  # every row from interleaved rounds
    assert r["device"] and r["torch"] and r["platform"]
    assert r["sru_backend"] in ("cpp", "python") and r["skip_backend"] in ("cpp", "python")
    assert {x["backend"] for x in r["rows"] if x["cell"] == "skip-gru"} == {r["skip_backend"]}
    cells = {(x["cell"], x["mode"]) for x in r["rows"]}
    assert {("lstm", "inference"), ("lstm", "train"), ("sru-python", "inference"),
            ("sru-python", "train")} <= cells
    assert ("sru", "train") in cells or r["notes"]
    rates = sorted(x["requested_update_rate"] for x in r["rows"] if x["cell"] == "skip-gru")
    assert rates == [0.1, 0.25, 0.5, 1.0]
    skim = [x for x in r["rows"] if x["cell"] == "skim-rnn"]
    assert sorted(x["requested_update_rate"] for x in skim) == [0.1, 0.25, 0.5, 1.0]
    assert [x["update_rate"] for x in skim] == [x["requested_update_rate"] for x in skim]
    assert {x["backend"] for x in skim} == {r["skim_backend"]}
    assert any(x["cell"] == "lstm" and x["hidden"] == r["skim"]["hidden"] for x in r["rows"])
    skim_targets = [t for t in r["targets"] if t["target"].startswith("Skim-RNN")]
    assert len(skim_targets) == 6 and sum("Flop-R" in t["target"] for t in skim_targets) == 3
    assert all(x["ms"] > 0 and x["flops"] > 0 for x in r["rows"])
    assert r["targets"] and all(isinstance(t["pass"], bool) for t in r["targets"])
    assert all(t["measured"] > 0 for t in r["targets"])
    assert main(["bench", "kernels", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out or "FAIL" in out
    assert main(["bench", "kernels", "--quick", "--threads", "0"]) == 2


def test_reexport_rewrites_the_card(tiny, capsys):
    card_path = tiny / "tiny-skip" / "card.json"
    before = json.loads(card_path.read_text())
    assert main(["train", "mnist", "--reexport", "--hidden", "8", "--side", "7", "--name",
                 "tiny-skip", "--out", str(tiny), "--work", str(tiny / "work")]) == 0
    after = json.loads(card_path.read_text())
    assert after["training"]["command"] == before["training"]["command"]
    assert after["target"]["reached"] is False and "goal" in after["target"]
    assert after["metrics"]["n_valid"] == 5000  # re-measured on all validation digits
    assert after["training"]["epochs_trained_in_total"] == 1


def test_train_adding_dry_run_then_evaluate(tmp_path, capsys):
    """``train adding --dry-run`` exports a checkpoint whose card names its task; ``evaluate``
    dispatches on it and reports the adding-task metrics on the 10,000 test sequences."""
    assert main(["train", "adding", "--dry-run", "--hidden", "8", "--name", "t-add", "--out",
                 str(tmp_path), "--work", str(tmp_path / "w")]) == 0
    card = json.loads((tmp_path / "t-add" / "card.json").read_text())
    assert card["task"] == "adding" and card["training"]["command"].startswith(
        "python -m skimviz train adding")
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "t-add"), "--json"]) == 0
    r = _json(capsys)
    assert {"mse", "target_variance", "solved", "update_rate"} <= set(r)
    assert r["n"] == 10000 and r["solved"] is False and 0 < r["update_rate"] <= 1
    assert main(["train", "frequency", "--dry-run", "--hidden", "4", "--sampling-ms", "0.5",
                 "--name", "t-freq", "--out", str(tmp_path), "--work", str(tmp_path / "w")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "t-freq"), "--json"]) == 0
    r = _json(capsys)
    assert r["seq_len"] == 200 and {"accuracy", "solved", "updates_mean"} <= set(r)


def test_bench_paper_skip_rnn_quick_json(tmp_path, capsys):
    """Default rows: Table 1's λ = 1e-5 and Table 2's λ ∈ {0, 1e-5, 1e-4} at both periods;
    --baselines adds the dense rows (and Table 1's λ = 0)."""
    assert main(["bench", "paper", "skip-rnn", "--quick", "--json", "--work", str(tmp_path),
                 "--cells", "gru"]) == 0
    r = _json(capsys)
    assert r["quick"] is True
    assert [(x["model"], x["lambda"]) for x in r["table1"]] == [("Skip GRU", 1e-5)]
    assert r["table1"][0]["paper_updates_percent"] == 50.7
    assert {x["sampling_ms"] for x in r["table2"]} == {1.0, 0.5} and len(r["table2"]) == 6
    assert [x["lambda"] for x in r["table2"] if x["sampling_ms"] == 0.5] == [0.0, 1e-5, 1e-4]
    assert [x["paper_updates"] for x in r["table2"] if x["sampling_ms"] == 0.5] == [
        167.0, 54.2, 22.5]
    assert all(isinstance(x["solved"], bool) for x in r["table1"] + r["table2"])
    assert main(["bench", "paper", "skip-rnn", "--quick", "--json", "--work", str(tmp_path),
                 "--cells", "gru", "--tables", "1", "--baselines"]) == 0
    r = _json(capsys)
    assert [(x["model"], x["lambda"]) for x in r["table1"]] == [
        ("GRU", None), ("Skip GRU", 0.0), ("Skip GRU", 1e-5)]
    assert main(["bench", "paper", "skip-rnn", "--quick", "--tables", "3",
                 "--work", str(tmp_path)]) == 2


def test_bench_paper_no_train_lists_missing_rows_and_loads_shipped(tmp_path, capsys):
    """--no-train never trains: the shipped skip-gru-adding is loaded and evaluated, the
    configurations without a checkpoint are printed as missing."""
    assert main(["bench", "paper", "skip-rnn", "--no-train", "--tables", "1", "--cells", "gru",
                 "--baselines", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith(("GRU", "Skip GRU"))]
    assert len(rows) == 3
    assert rows[0].split()[-1] == "missing" and rows[1].split()[-1] == "missing"
    assert rows[2].split()[-1] == "loaded" and rows[2].split()[3] == "yes"   # λ=1e-5: solved
    assert "run without --no-train" in out
    assert not any(tmp_path.iterdir())                                      # nothing trained


def test_a_run_stopped_mid_epoch_resumes_inside_that_epoch(tmp_path, capsys):
    import torch
    common = ["train", "mnist", "--dry-run", "--hidden", "8", "--side", "7", "--name", "mid",
              "--out", str(tmp_path), "--work", str(tmp_path / "w")]
    assert main(common + ["--max-minutes", "1e-9"]) == 0  # deadline passes after step 1
    assert "stopped at the time limit, step 1" in capsys.readouterr().out
    assert not (tmp_path / "mid").exists()
    assert main(common + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "resumed at step 1 (epoch 0)" in out and "epoch 1:" in out
    state = torch.load(tmp_path / "w" / "mid" / "state.pt", weights_only=True)
    assert state["trainer"]["step"] == 2  # one more step finished the epoch, not a whole epoch
    assert json.loads((tmp_path / "mid" / "card.json").read_text())["training"]["epochs"] == 1


def test_transkimmer_sweep_writes_the_card_and_collects_without_training(tmp_path, capsys):
    """--sweep trains one run per λ under --work/sweep and stores lambda_sweep (with each
    point's steps) in the shipped card; --sweep-no-train only collects those runs."""
    common = ["train", "transkimmer", "--dry-run", "--hidden", "16", "--layers", "2",
              "--name", "tk", "--out", str(tmp_path), "--work", str(tmp_path / "w")]
    assert main(common) == 0
    assert main(common + ["--sweep", "0.5"]) == 0
    card = json.loads((tmp_path / "tk" / "card.json").read_text())
    pts = card["lambda_sweep"]
    assert [(p["lambda"], p["shipped"]) for p in pts] == [(0.3, True), (0.5, False)]
    assert [p["second_stage"] for p in pts if p["shipped"]] == [False]   # one λ run, a curve point
    assert all(p["steps"] == 2 for p in pts)
    state = tmp_path / "w" / "tk-lam0.5" / "state.pt"
    before = state.stat().st_mtime_ns
    capsys.readouterr()
    assert main(common + ["--sweep", "0.5", "--sweep-no-train"]) == 0
    assert state.stat().st_mtime_ns == before                 # nothing trained
    assert "step" not in capsys.readouterr().out.split("lambda_sweep")[0]
    assert main(common + ["--sweep", "0.7", "--sweep-no-train"]) == 2
    assert "no sweep run" in capsys.readouterr().err


def test_transkimmer_sweep_starts_each_run_from_the_named_dense_twin(tmp_path, capsys):
    """--sweep with --init-from NAME: NAME is looked up in --out (the sweep runs themselves are
    exported under --work/sweep), and every run starts from that twin."""
    common = ["train", "transkimmer", "--dry-run", "--hidden", "16", "--layers", "2",
              "--out", str(tmp_path), "--work", str(tmp_path / "w")]
    assert main(common + ["--dense", "--name", "twin"]) == 0
    assert main(common + ["--name", "tk", "--sweep", "0.5", "--init-from", "twin"]) == 0
    card = json.loads((tmp_path / "w" / "sweep" / "tk-lam0.5" / "card.json").read_text())
    assert card["training"]["init_from"] == str(tmp_path / "twin")
