"""Recipes as files (configs/<checkpoint>.toml, ``skimviz train --config``): one per shipped
checkpoint, equal to the command its card records; every value goes through the task's own
parser; a bad config is refused in one line; the card records the config and its hash."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from skimviz import cli
from skimviz.training import checkpoint, configs

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _value(v):
    try:
        return float(v) if v is not True else v
    except ValueError:
        return v


def _recipe(argv):
    """{option: value} of a train command line, without the run's own options."""
    out, i = {}, 0
    while i < len(argv):
        k = argv[i][2:]
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            v, i = argv[i + 1], i + 2
        else:
            v, i = True, i + 1
        if k not in configs.RUN_OPTIONS:
            out[k] = _value(v)
    return out


@pytest.mark.parametrize("name", checkpoint.list_pretrained())
def test_every_shipped_checkpoint_has_its_recipe(name, tmp_path):
    card = json.loads((checkpoint.PRETRAINED_DIR / name / "card.json").read_text())
    cmd = shlex.split(card["training"]["command"])
    assert cmd[:4] == ["python", "-m", "skimviz", "train"]
    task, argv, digest = configs.load(CONFIGS / f"{name}.toml")
    assert len(digest) == 64
    if cmd[4] == "--config":      # trained from the file itself: the card holds its hash
        assert cmd[5] == f"configs/{name}.toml"
        assert card["training"]["config"] == {"path": cmd[5], "sha256": digest}
        assert _recipe(cmd[6:]) == {}              # nothing beyond the run's own options
    else:
        assert task == cmd[4]
        assert _recipe(argv) == _recipe(cmd[5:])
    # and the task's parser takes it (types, ranges, choices), with the run's options added
    run = ["--threads", "1"] + (["--data-dir", str(tmp_path)]   # CI has no ../shared/data
                                if task in ("mnist", "text", "transkimmer") else [])
    args = cli.build_parser().parse_args(["train", task, *argv, *run])
    assert args.task == task


def test_no_config_without_a_shipped_checkpoint():
    assert {p.stem for p in CONFIGS.glob("*.toml")} == set(checkpoint.list_pretrained())


def test_expand_puts_the_task_first_and_command_line_options_last(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('task = "adding"\n[args]\nname = "x"\nlam = 1e-5\ncell = "gru"\n'
                 'lam_warmup = false\n')
    argv, info = configs.expand(["train", "--config", str(f), "--lam", "0"])
    assert argv == ["train", "adding", "--name", "x", "--lam", "1e-05", "--cell", "gru",
                    "--lam", "0"]
    assert info["path"] == str(f) and len(info["sha256"]) == 64
    assert cli.build_parser().parse_args(argv).lam == 0.0  # the command line wins
    assert configs.expand(["train", "adding", "--lam", "0"]) == (
        ["train", "adding", "--lam", "0"], None)


@pytest.mark.parametrize("text,message", [
    (None, "no such file"),
    ("task = [", "not a TOML file"),
    ('[args]\nname = "x"\n', "no task"),
    ('task = "adding"\nextra = 1\n', "unknown top-level key"),
    ('task = "adding"\n[args]\nthreads = 4\n', "belongs to the run"),
    ('task = "adding"\n[args]\ndata_dir = "/"\n', "belongs to the run"),
    ('task = "adding"\n[args]\nlam = [1, 2]\n', "must be a number"),
    ('task = "adding"\n[args]\nlam = "lots"\n', "is not a number"),
    ('task = "nonsense"\n', "invalid choice"),
    ('task = "adding"\n' + "#" * 70_000, "larger than"),
])
def test_a_bad_config_is_refused_in_one_line(tmp_path, capsys, text, message):
    f = tmp_path / "bad.toml"
    if text is not None:
        f.write_text(text)
    assert cli.main(["train", "--config", str(f), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_task_may_not_be_given_twice(tmp_path, capsys):
    f = tmp_path / "r.toml"
    f.write_text('task = "adding"\n')
    assert cli.main(["train", "--config", str(f), "frequency"]) == 2
    assert "comes from the config" in capsys.readouterr().err


def test_the_card_records_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIMVIZ_EXT_AUTOBUILD", "0")
    f = tmp_path / "r.toml"
    f.write_text('task = "mnist"\n[args]\nname = "cfg-test"\nhidden = 8\n')
    rc = cli.main(["train", "--config", str(f), "--dry-run", "--out", str(tmp_path / "out"),
                   "--work", str(tmp_path / "work"), "--threads", "1"])
    assert rc == 0
    card = json.loads((tmp_path / "out" / "cfg-test" / "card.json").read_text())
    assert card["training"]["config"]["path"] == str(f)
    assert card["training"]["config"]["sha256"] == configs.load(f)[2]
    assert "--config" in card["training"]["command"]
    assert card["config"]["hidden_size"] == 8
