"""The task registry (skimviz.tasks): one Task interface per task, one list for the CLI."""
import argparse
import json
from pathlib import Path

import pytest

from skimviz import cli, tasks
from skimviz.tasks import adding
from skimviz.tasks.base import Task
from skimviz.training import checkpoint

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = ("train_command", "evaluate_command", "predict_command")


def _args(**kw):
    base = dict(name="x", split=None, data_dir=None, threshold=None, json=True, input=None,
                index=None)
    return argparse.Namespace(**{**base, **kw})


def test_every_task_has_the_interface():
    assert set(tasks.TASKS) == set(tasks.MODULES)
    for name, task in tasks.TASKS.items():
        assert isinstance(task, Task)
        assert task.name == name and tasks.get(name) is task
        assert isinstance(task.card_task, str) and task.card_task
        assert task.card_task == tasks.module(name).TASK
        for member in MEMBERS:
            assert callable(getattr(task, member)), (name, member)
        assert tasks.by_card_task(task.card_task) is task


def test_names_and_card_tasks_are_unique():
    names = [t.name for t in tasks.TASKS.values()]
    card_tasks = [t.card_task for t in tasks.TASKS.values()]
    assert len(set(names)) == len(names) == 6
    assert len(set(card_tasks)) == len(card_tasks)
    assert tasks.CARD_TASKS == {t.card_task: t.name for t in tasks.TASKS.values()}


def test_unknown_names():
    assert tasks.by_card_task("no-such-task") is None
    assert tasks.by_card_task(None) is None
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        tasks.get("nope")


def test_every_shipped_card_has_a_task():
    cards = sorted((ROOT / "pretrained").glob("*/card.json"))
    assert len(cards) >= 10
    for path in cards:
        card = json.loads(path.read_text(encoding="utf-8"))
        task = tasks.by_card_task(card["task"])
        assert task is not None, path
        assert task.card_task == card["task"]


def _subparsers(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_train_subcommands_are_the_registry():
    train = _subparsers(cli.build_parser())["train"]
    assert set(_subparsers(train)) == set(tasks.TASKS)


def test_options_that_do_not_apply_are_refused():
    with pytest.raises(ValueError, match="MNIST checkpoints are evaluated on --split valid or "
                                         "test"):
        tasks.get("mnist").evaluate_command(None, {"task": "mnist-pixels"}, _args(split="dev"))
    for name in ("adding", "frequency", "frames"):
        with pytest.raises(ValueError, match=f"^{name} is evaluated on its generated test set "
                                             r"\(fixed seed\): --split does not apply$"):
            tasks.get(name).evaluate_command(None, {"task": name}, _args(split="valid"))
    for name in ("text", "transkimmer"):
        with pytest.raises(ValueError, match=r"text models read --input FILE"):
            tasks.get(name).predict_command(None, {"task": "t"}, _args(index=0))


@pytest.fixture(scope="module")
def adding_ckpt():
    return checkpoint.load("skip-gru-adding")


@pytest.fixture
def small_adding_test_set(monkeypatch):
    """The adding test set cut to 300 sequences (same seed), to keep the test quick."""
    real = adding.test_set
    monkeypatch.setattr(adding, "test_set", lambda n, length: real(300, length))


def test_evaluate_through_the_registry_is_the_old_path(adding_ckpt, small_adding_test_set,
                                                       capsys):
    model, card = adding_ckpt
    old = adding.evaluate(model, card, threshold=None)
    assert old["n"] == 300
    task = tasks.by_card_task(card["task"])
    assert task.evaluate_command(model, card, _args(name="skip-gru-adding")) == old
    assert cli.main(["evaluate", "skip-gru-adding", "--json"]) == 0
    assert capsys.readouterr().out == json.dumps(old) + "\n"


def test_predict_on_a_task_without_predictions(adding_ckpt, capsys):
    model, card = adding_ckpt
    msg = ("predict runs MNIST digit and text checkpoints; skip-gru-adding is a 'adding' model: "
           "use evaluate")
    with pytest.raises(ValueError) as e:
        tasks.get("adding").predict_command(model, card, _args(name="skip-gru-adding", index=0))
    assert str(e.value) == msg
    assert cli.main(["predict", "skip-gru-adding", "--index", "0"]) == 2
    assert capsys.readouterr().err == f"error: {msg}\n"
