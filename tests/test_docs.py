"""The README is a short product page and every number it shows has a source.

The README's results table links each row to a page under ``docs/results/``; that page must
hold the row's numbers and its command, and say which command and on which date its numbers
were measured. The README stays short and free of lab-notebook traces (times of day, "this
session", "today"), which is what made the old one contradict itself. A few README numbers are
checked against the model cards, the source of truth for accuracy and FLOPs.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results"
PRETRAINED = ROOT / "pretrained"

TIME_OF_DAY = re.compile(r"\b\d{1,2}:\d{2}\b")
# "session" as a stretch of work (a Streamlit session, a browser's, is a term of the app)
DIARY = re.compile(r"\b((this|working|last|next|previous) session|today|yesterday|tonight"
                   r"|this (morning|afternoon|evening|machine)"
                   r"|so far|UTC)\b", re.IGNORECASE)
ISO_DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
COMMAND = re.compile(r"python -m skimviz\b|\bmake (run|test|gallery|loadtest)\b")
CODE_SPAN = re.compile(r"`[^`]*`")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*")


def _docs() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def _squash(text: str) -> str:
    """Whitespace collapsed, so a command wrapped over two lines still matches."""
    return re.sub(r"\s+", " ", text)


def _contains_number(text: str, number: str) -> bool:
    """``number`` stands alone in ``text``: "91.3" does not match inside "191.3" or "91.35"."""
    return re.search(rf"(?<![\d.,]){re.escape(number)}(?![\d]|[.,]\d)", text) is not None


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def results_rows() -> list[dict]:
    """The rows of the table under the README's ``## Results`` heading, by column name."""
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^## Results\s*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert m, "README has no '## Results' section"
    lines = [ln for ln in m.group(1).splitlines() if ln.lstrip().startswith("|")]
    assert len(lines) >= 3, "README's Results section has no table"
    header = [h.lower() for h in _cells(lines[0])]
    for col in ("system", "result", "reproduce", "details"):
        assert col in header, f"results table lacks a {col!r} column: {header}"
    return [dict(zip(header, _cells(ln))) for ln in lines[2:]]


def _rows_or_none() -> list:
    """The rows for parametrizing; without a table, one ``None`` row, so the missing table is a
    failing test (and the other tests still run) rather than a collection error."""
    try:
        return results_rows() or [None]
    except AssertionError:
        return [None]


# --------------------------------------------------------------------------- the README's shape

def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= 220, f"README has {n} lines; details belong in docs/"


def test_readme_keeps_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "make run" in text
    assert "make test" in text  # CI calls it; the README's test command must stay the same


@pytest.mark.parametrize("path", _docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_times_of_day_or_diary_words(path):
    bad = [f"{i}: {ln.strip()}" for i, ln in enumerate(path.read_text(encoding="utf-8")
                                                        .splitlines(), 1)
           if TIME_OF_DAY.search(ln) or DIARY.search(ln)]
    assert not bad, f"{path.name}: lab-notebook lines (dates, not times; name the machine):\n" \
                    + "\n".join(bad)


@pytest.mark.parametrize("path", _docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    text = path.read_text(encoding="utf-8")
    missing = [t for t in LINK_TARGET.findall(text)
               if not re.match(r"[a-z]+:", t) and not t.startswith("#")
               and not (path.parent / t.split("#")[0]).exists()]
    assert not missing, f"{path.name} links to missing files: {missing}"


# --------------------------------------------------------------------- results and their sources

def test_results_table_has_rows_for_each_system():
    systems = " ".join(r["system"] for r in results_rows())
    for name in ("Skip GRU", "Skim-LSTM", "Transkimmer", "SRU"):
        assert name in systems, f"no results row for {name}"


@pytest.mark.parametrize("row", _rows_or_none(), ids=lambda r: r["system"] if r else "no-table")
def test_results_row_numbers_and_command_are_in_its_page(row):
    if row is None:
        results_rows()  # fails, saying what is missing
        pytest.fail("README's results table has no rows")
    targets = [t for t in LINK_TARGET.findall(row["details"]) if t.startswith("docs/results/")]
    assert targets, f"row {row['system']!r} does not link to a docs/results page"
    page = ROOT / targets[0].split("#")[0]
    assert page.is_file(), f"{page} does not exist"
    text = _squash(page.read_text(encoding="utf-8"))

    commands = [c.strip("`") for c in CODE_SPAN.findall(row["reproduce"])]
    assert commands, f"row {row['system']!r} gives no command"
    for cmd in commands:
        assert _squash(cmd) in text, f"{page.name} does not show the command `{cmd}`"

    prose = CODE_SPAN.sub(" ", row["system"] + " " + row["result"])
    numbers = NUMBER.findall(prose)
    assert numbers, f"row {row['system']!r} has no numbers"
    missing = [n for n in numbers if not _contains_number(text, n)]
    assert not missing, f"{page.name} lacks the numbers {missing} of row {row['system']!r}"


def test_every_results_page_names_a_command_and_a_date():
    pages = sorted(RESULTS.glob("*.md"))
    assert len(pages) >= 3, "expected one docs/results page per system"
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert COMMAND.search(text), f"{page.name} names no `python -m skimviz` or make command"
        assert ISO_DATE.search(text), f"{page.name} gives no date (YYYY-MM-DD) for its numbers"


# ------------------------------------------------------------------------- cards are the truth

def _card(name: str) -> dict:
    return json.loads((PRETRAINED / name / "card.json").read_text(encoding="utf-8"))


def _row(system_prefix: str) -> str:
    rows = [r for r in results_rows() if r["system"].startswith(system_prefix)]
    assert rows, f"no results row starting with {system_prefix!r}"
    return rows[0]["system"] + " " + rows[0]["result"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


@pytest.mark.parametrize("system,card,expected", [
    ("Skip GRU, MNIST", "skip-gru-mnist",
     lambda c: [_pct(c["metrics"]["valid_accuracy"]), f"{c['metrics']['valid_updates_mean']:.1f}",
                f"{c['metrics']['dense_flops_per_sequence'] / c['metrics']['flops_per_sequence_mean']:.2f}×"]),
    ("Skim-LSTM, SST-2", "skim-lstm-sst2",
     lambda c: [_pct(c["metrics"]["valid_accuracy"]), f"{c['metrics']['valid_flop_r']:.2f}×",
                f"θ = {c['skim_threshold']}", _pct(c["target"]["dense_twin_accuracy"])]),
    ("Skim-LSTM, IMDB", "skim-lstm-imdb",
     lambda c: [_pct(c["metrics"]["valid_accuracy"]), f"{c['metrics']['valid_flop_r']:.2f}×",
                f"θ = {c['skim_threshold']}"]),
    ("Transkimmer, all-MiniLM", "transkimmer-minilm-sst2",
     lambda c: [_pct(c["metrics"]["dev_accuracy"]), f"{c['metrics']['flops_reduction']:.2f}×",
                _pct(c["target"]["dense_twin_accuracy"])]),
    ("Transkimmer, small", "transkimmer-small-sst2",
     lambda c: [_pct(c["metrics"]["dev_accuracy"]), f"{c['metrics']['flops_reduction']:.2f}×",
                _pct(c["target"]["dense_twin_accuracy"])]),
])
def test_readme_numbers_match_the_cards(system, card, expected):
    result = _row(system)
    for want in expected(_card(card)):
        assert want in result, f"README row {system!r} should say {want!r} (its card's value)"
