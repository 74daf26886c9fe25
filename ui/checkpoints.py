"""Shipped checkpoints in the app: loaded once per process and shared read-only by every
session; a session that changes a model (its θ) works on its own deep copy."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import streamlit as st

from skimviz.training import checkpoint


def pretrained_dir() -> str | None:
    """``SKIMVIZ_PRETRAINED_DIR`` (tests point it at a temporary folder), else None (the default
    ``pretrained/``)."""
    return os.environ.get("SKIMVIZ_PRETRAINED_DIR") or None


def checkpoint_stamp(name: str, directory: str | None = None):
    """Modification times of a checkpoint's files: a re-export (after each training epoch) gives
    a new cache key, so pages pick up the newer weights. None when it is missing."""
    base = Path(directory or pretrained_dir() or checkpoint.PRETRAINED_DIR) / name
    try:
        files = [base / checkpoint.CARD, *checkpoint.weight_files(base)]
        return tuple(f.stat().st_mtime_ns for f in files) if len(files) > 1 else None
    except OSError:
        return None


@st.cache_resource(show_spinner=False, max_entries=16)
def load_shared(name: str, directory: str | None, stamp) -> tuple:
    """(model, card), loaded once per process and shared by all sessions: never mutate it —
    pages deep-copy it into the session before touching its threshold."""
    return checkpoint.load(name, directory)


def session_model(name: str, slot: str) -> tuple:
    """This session's own deep copy of a shipped checkpoint: (model, card, key), kept in
    ``st.session_state[slot]`` (name → that triple); a re-exported checkpoint (a new
    :func:`checkpoint_stamp`) is copied again."""
    d = pretrained_dir()
    stamp = checkpoint_stamp(name, d)
    key = (name, d, stamp)
    models = st.session_state.setdefault(slot, {})
    if name not in models or models[name][2] != key:
        model, card = load_shared(name, d, stamp)
        models[name] = (copy.deepcopy(model), card, key)
    return models[name]


def text_cards(task: str, directory: str | None) -> dict:
    """name → card for every shipped checkpoint whose readable card has ``task``."""
    out = {}
    for name in checkpoint.list_pretrained(directory):
        try:
            card = checkpoint.load_card(name, directory)
        except checkpoint.CheckpointError:
            continue
        if card.get("task") == task:
            out[name] = card
    return out


def dense_twin(card: dict, fresh, twin_is: str, fresh_is: str, weights: str):
    """(dense model, sentence for the captions): the card's shipped ``dense_twin`` (``twin_is``
    says what it is), else ``fresh()`` (an untrained model of the same size, ``fresh_is``;
    ``weights`` says how much weights change the time)."""
    d = pretrained_dir()
    twin = card.get("dense_twin")
    if twin:
        try:
            dense, _ = load_shared(twin, d, checkpoint_stamp(twin, d))
            return dense, f"the dense twin `{twin}` ({twin_is})"
        except checkpoint.CheckpointError:
            pass
    return (fresh(), f"{fresh_is}: "
            + (f"the twin `{twin}` is not available" if twin else "the card names no dense twin")
            + f", and weights {weights} the time")
