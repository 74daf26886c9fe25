"""URL state of the MNIST page: parse/encode round trip, bad and hostile values."""
from __future__ import annotations

import pytest

from ui import urlstate as U


def test_defaults_without_params():
    state, notices = U.parse({})
    assert state == U.DEFAULTS and notices == []


@pytest.mark.parametrize("state", [
    {"digit": 12, "model": "shipped", "theta": 0.7, "method": "ig", "seed": 42},
    {"digit": 0, "model": "session", "theta": 0.05, "method": "saliency", "seed": 0},
    {"digit": 4999, "model": "shipped", "theta": 1.0, "method": "saliency", "seed": 2**31 - 1},
    {"digit": 3, "model": "shipped", "theta": None, "method": "ig", "seed": None},
])
def test_round_trip(state):
    params = U.encode(state)
    assert all(isinstance(v, str) for v in params.values())
    back, notices = U.parse(params)
    assert notices == [] and back == state


def test_theta_is_snapped_to_the_slider_grid():
    state, notices = U.parse({"theta": "0.72"})
    assert state["theta"] == 0.7 and notices == []
    assert U.parse({"theta": "0.01"})[0]["theta"] == 0.05


@pytest.mark.parametrize("key,value", [
    ("digit", "abc"), ("digit", "-1"), ("digit", "5000"), ("digit", "1.5"),
    ("digit", "9" * 400), ("digit", ""),
    ("theta", "5"), ("theta", "0"), ("theta", "-0.5"), ("theta", "nan"), ("theta", "NaN"),
    ("theta", "inf"), ("theta", "1e309"), ("theta", "0x1"), ("theta", "1" * 40),
    ("model", "other"), ("model", "<script>alert(1)</script>"),
    ("method", "gradcam"), ("method", "IG; DROP TABLE"),
    ("digit", ["1", "2"]),
    ("seed", "-1"), ("seed", "2147483648"), ("seed", "99999999999"), ("seed", "1.5"),
    ("seed", "1e3"), ("seed", "abc"), ("seed", ""), ("seed", "0x10"), ("seed", "<b>7</b>"),
    ("seed", ["1", "2"]), ("seed", "1" * 40),
])
def test_bad_values_give_default_and_a_notice(key, value):
    state, notices = U.parse({key: value})
    assert state[key] == U.DEFAULTS[key]
    assert len(notices) == 1 and f"`{key}`" in notices[0]


@pytest.mark.parametrize("hostile", [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))",
    "**bold** `code` $x$", "\u202e\u0000\n<b>", "a" * 10_000,
])
def test_hostile_text_never_reaches_a_notice(hostile):
    for key in ("digit", "theta", "model", "method", "seed", hostile):
        _, notices = U.parse({key: hostile})
        assert notices
        text = " ".join(notices)
        for bad in ("<", ">", "(", ")", "[", "]", "*", "$", "\n", "\u0000", "\u202e"):
            assert bad not in text, (key, text)
        assert len(text) < 300


def test_unknown_and_ignored_params():
    state, notices = U.parse({"page": "skip-rnn-mnist", "embed": "true", "digit": "7"})
    assert state["digit"] == 7 and notices == []
    state, notices = U.parse({"foo": "1", "digit": "7"})
    assert state["digit"] == 7 and len(notices) == 1 and "`foo`" in notices[0]


def test_seed():
    """Live training's seed: 0 … 2^31 − 1, kept as given (no default in the link when absent)."""
    assert U.parse({"seed": " 2147483647 "})[0]["seed"] == U.SEED_MAX == 2**31 - 1
    assert U.parse({"seed": "+7"})[0]["seed"] == 7 and U.parse({"seed": "007"})[0]["seed"] == 7
    assert U.parse({})[0]["seed"] is None and "seed" not in U.encode(U.DEFAULTS)
    assert U.encode({"seed": 123})["seed"] == "123"
    _, notices = U.parse({"seed": "2147483648"})
    assert notices and "`seed`" in notices[0] and "2147483647" in notices[0]


def test_case_and_whitespace():
    state, notices = U.parse({"model": "Shipped", "method": " SALIENCY ", "digit": " 42 "})
    assert notices == [] and state["model"] == "shipped" and state["method"] == "saliency"
    assert state["digit"] == 42


def test_page_of_and_share_query():
    assert U.page_of({"page": "skip-rnn-mnist"}) == "skip-rnn-mnist"
    assert U.page_of({"page": "/skip-rnn-mnist/"}) == "skip-rnn-mnist"
    assert U.page_of({"page": "../etc"}) is None and U.page_of({}) is None
    q = U.share_query({"digit": 12, "model": "shipped", "theta": 0.7, "method": "ig"})
    assert q == "page=skip-rnn-mnist&digit=12&model=shipped&theta=0.70&method=ig"


# --- presentation mode ---------------------------------------------------------------------------
@pytest.mark.parametrize("value,on", [("1", True), ("true", True), ("ON", True), ("0", False),
                                      ("", False), ("x" * 100, False), (["1", "1"], False)])
def test_presenting(value, on):
    assert U.presenting({"present": value}) is on
    assert U.presenting({}) is False


def test_present_is_not_an_unknown_parameter_and_is_encoded():
    state, notices = U.parse({"digit": "3", "present": "1"})
    assert notices == [] and state["digit"] == 3 and "present" not in state
    assert U.encode({**state, "present": True})["present"] == "1"
    assert "present" not in U.encode(state)
