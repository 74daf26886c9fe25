"""Skip RNN — signals and clips: the gate on the paper's frequency discrimination and adding
tasks (Sec. 4.2, 4.1) and on digit clips read by a CNN + Skip GRU (after Sec. 4.5).

Layout only. The example, its numbers, sentences and figure come from ``ui.signals``; the
live training from ``ui.live_training`` (a worker thread: clicks elsewhere do not stop it);
timing from ``ui.latency_panel``. Shipped checkpoints are loaded once per process and copied into
the session (``ui.checkpoints.session_model``).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from skimviz.cost import threads
from skimviz.training import checkpoint
from skimviz.training.checkpoint import CheckpointError
from skimviz.viz import common, tradeoff
from skimviz.viz import curves as curves_figs
from ui import latency_panel, live_training, presentation, signals
from ui.checkpoints import checkpoint_stamp, pretrained_dir, session_model
from ui.glossary import definition
from ui.lede import lede, paragraph
from ui.style import PLOT_CONFIG, THREADS

PAGE = "skip-rnn-signals"
LAMBDAS = [0.0, 1e-4, 5e-4, 1e-3, 5e-3]
MAX_SEED, TRAIN_SEED_MAX, MAX_STEPS = 999_999, 2**31 - 1, 2000


@st.cache_resource(show_spinner=False, max_entries=4)
def _read_cards(directory: str, stamp) -> list:
    out = []
    for name in checkpoint.list_pretrained(directory):
        try:
            out.append(checkpoint.load_card(name, directory))
        except CheckpointError:
            continue
    return out


def _cards() -> list:
    """Every readable card in the checkpoint folder (read again when a card changes)."""
    d = Path(pretrained_dir() or checkpoint.PRETRAINED_DIR)
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in d.glob(f"*/{checkpoint.CARD}")))
    return _read_cards(str(d), stamp)


def _fmt_lambda(v: float) -> str:
    return "0 (no budget)" if v == 0 else f"{v:.0e}"


def _quality(task: str, m: dict | None) -> str:
    v = (m or {}).get(f"valid_{signals.METRIC[task]}")
    return "—" if v is None else (f"{v:.4f}" if task == "adding" else f"{v:.1%}")


def _pick_model(task: str, col) -> dict:
    """The "Model" picker: shipped checkpoints of this task (one per cell, λ and sampling
    period), the model trained here, an untrained one → model, who, metrics, choice, ms."""
    pts = [p for p in tradeoff.lambda_points(_cards(), signals.MODULES[task].TASK)
           if checkpoint_stamp(str(p["name"]), pretrained_dir())]
    ms = {str(p["name"]): p["sampling_ms"] or 1.0 for p in pts}
    labels = {str(p["name"]): f"Shipped {str(p['cell']).upper()}, λ = {_fmt_lambda(p['lambda'])}"
              + (f", {p['sampling_ms']:g} ms" if task == "frequency" else "") for p in pts}
    if signals.SHIPPED[task] not in labels and checkpoint_stamp(signals.SHIPPED[task],
                                                                pretrained_dir()):
        labels[signals.SHIPPED[task]] = "Shipped model"
    slot, key, n_shipped = f"live_{task}", f"{task}_model", len(labels)
    if live_training.model(slot) is not None:
        labels["session"] = "My trained model"
    labels["untrained"] = "Untrained (reads every step)"
    if live_training.just_finished(slot, st.session_state.get(key) == "session"):
        st.session_state[key] = "session"
    if st.session_state.get(key) not in labels:
        st.session_state[key] = signals.SHIPPED[task] if signals.SHIPPED[task] in labels \
            else next(iter(labels))
    choice = col.selectbox("Model", list(labels), key=key, format_func=labels.get,
                           on_change=live_training.picked, args=(slot,),
                           help="Shipped models were trained with different budgets λ"
                                + (" and sampling periods" if task == "frequency" else "")
                                + "; “My trained model” appears once you train one below.")
    sel = {"choice": choice, "ms": ms.get(choice, 1.0), "metrics": None, "dry": False,
           "none_shipped": n_shipped == 0}
    if choice == "session":
        run = live_training.current(slot)
        return {**sel, "model": run.model, "who": "your model",
                "metrics": run.snapshot()["metrics"]}
    if choice != "untrained":
        try:
            model, card, _ = session_model(choice, "_signal_models")
            lam = _fmt_lambda(float(card["training"]["lambda"]))
            return {**sel, "model": model, "who": f"the shipped model (λ = {lam})",
                    "metrics": card.get("metrics"), "dry": bool(card["training"].get("dry_run"))}
        except (CheckpointError, KeyError, TypeError, ValueError) as e:
            st.error(f"The shipped model `{choice}` could not be loaded: {e}. Showing an "
                     "untrained model instead.")
    return {**sel, "model": signals.new_model(task), "who": "the untrained model",
            "choice": "untrained"}


def _train_tab(task: str) -> None:
    def _state(name: str):  # read when Start is clicked (a callback sees this click's values;
        return st.session_state.get(f"{task}_{name}", shown[name])   # else this run's)

    cfg = signals.MODULES[task].LIVE
    w1, w2, w3 = st.columns(3)
    lam = w1.select_slider("Budget λ (cost per used step)", LAMBDAS, value=cfg["lam"],
                           key=f"{task}_lambda_live", format_func=_fmt_lambda,
                           help=definition("λ"))
    steps = w2.number_input("Training steps", 1, MAX_STEPS, cfg["steps"], 50, key=f"{task}_steps",
                            help=f"batches of {cfg['batch']} fresh examples")
    st.session_state.setdefault(f"{task}_train_seed", 0)
    seed = w3.number_input(f"Training seed (0–{TRAIN_SEED_MAX:,})", 0, TRAIN_SEED_MAX, step=1,
                           key=f"{task}_train_seed",
                           help="fixes the starting weights and the batches: the same seed and "
                                "settings train the same model again")
    shown = {"lambda_live": lam, "steps": steps, "train_seed": seed}
    problems = [p for ok, p in ((steps is not None, f"the steps must be 1 to {MAX_STEPS:,}"),
                                (seed is not None, "the seed must be a whole number"),
                                (lam in LAMBDAS, "λ must be one of the slider's values")) if not ok]
    n = int(steps or cfg["steps"])
    noun = signals.NOUNS[task]
    paragraph(f"A Skip GRU with {cfg['hidden']} units learns from scratch in this session, on "
              f"freshly generated {noun}: {n:,} steps of {cfg['batch']} {noun}, {{λ}} ramped up over "
              f"the first {min(cfg['warmup'], max(1, n // 3))}. Measured on this 2-core server "
              f"while it was busy with other work: about {signals.live_seconds(task, n):.0f} s"
              + ("" if signals.fast_training() else " with the compiled training code, which "
                 "is not built here: expect several times longer") + ". "
              "You can use the rest of the page meanwhile. The finished run stays here until "
              "you start another, which replaces it (you are asked first). The model lives only "
              "in this browser session: closing or reloading this tab stops the training within "
              "a minute and loses it.")
    metric = signals.METRIC[task]

    def describe(s: dict) -> str:
        r = s["metrics"]
        shown = f"MSE {r['valid_mse']:.4f}" if metric == "mse" else \
            f"accuracy {r['valid_accuracy']:.1%}"
        return (f"Trained {s['step']} steps (seed {s['config']['seed']}) in {s['elapsed_s']:.0f} s:"
                f" on {r['n_valid']} validation examples it uses {r['valid_update_rate']:.0%} of "
                f"the {signals.UNITS[task]}, with {shown}. It is now “My trained model” above.")

    live_training.panel(
        f"live_{task}", f"the {signals.TITLES[task].lower()} model",
        lambda alive: signals.live_run(task, int(_state("train_seed")), lam=_state("lambda_live"),
                                       steps=int(_state("steps")), alive=alive),
        curves=curves_figs.REGRESSION_CURVES if metric == "mse" else curves_figs.CURVES,
        describe=describe, problems=problems)


def _lambda_tab(task: str, ms: float) -> None:
    cards = [c for c in _cards() if not c.get("training", {}).get("dry_run")]
    run = live_training.current(f"live_{task}")
    if run is not None and run.model is not None and run.snapshot()["metrics"]:
        s = run.snapshot()
        cards.append({"name": "my model", "task": signals.MODULES[task].TASK,
                      "config": {"skip": True}, "training": {"lambda": s["config"]["lam"]},
                      "input": {"sampling_ms": s["config"]["sampling_ms"]},
                      "metrics": s["metrics"]})
    pts = tradeoff.lambda_points(cards, signals.MODULES[task].TASK,
                                sampling_ms=ms if task == "frequency" else None)
    if not pts:
        st.info("No models of this task to compare yet: train one in “Train your own”.")
        return
    st.plotly_chart(tradeoff.lambda_figure(pts), key=f"{task}_lambda", config=PLOT_CONFIG,
                    alt="updates and quality against λ")
    lo, hi = min(pts, key=lambda p: p["lambda"]), max(pts, key=lambda p: p["lambda"])
    st.caption(f"One point per model. From λ = {_fmt_lambda(lo['lambda'])} to "
               f"{_fmt_lambda(hi['lambda'])} the share of steps used goes from "
               f"{lo['update_rate']:.0%} to {hi['update_rate']:.0%}.")


# =============================================================================================
lede("Skip RNN — signals and clips",
     "A {Skip RNN} has an {update gate} before every step: it reads the input and updates its "
     "memory, or skips it and keeps its memory as it was. Training charges {λ} per read, so it "
     "learns to read only where something new happens. Red marks what it read.",
     "press ▶ Play under the figure: {ũ} climbs to {θ} between two reads.",
     ["Campos et al., ICLR 2018: gate Eq. 2–5, budget Eq. 8, tasks Sec. 4.1–4.2 and 4.5"])

c_task, c_model, c_seed, c_present = st.columns([1.95, 2.25, 0.8, 1.8], vertical_alignment="bottom")
task = c_task.selectbox("Task", signals.TASKS, key="signals_task", format_func=signals.TITLES.get)
presentation.toggle(PAGE, container=c_present)
sel = _pick_model(task, c_model)
model, ms = sel["model"], sel["ms"]
seed = c_seed.number_input("Example", 0, MAX_SEED, 0, key=f"{task}_seed",
                           help=f"0–{MAX_SEED:,}: each number generates another example")
if seed is None:
    st.error(f"The example number must be a whole number from 0 to {MAX_SEED:,}.")
    st.stop()
if sel["none_shipped"] and sel["choice"] == "untrained":
    st.info("No shipped model of this task here: showing an untrained one, which reads every "
            "step. Train one in “Train your own” below.")
if sel["dry"]:
    st.warning("This shipped model comes from a pipeline dry run (two training steps): its "
               "numbers mean nothing.")
ex = signals.example(task, int(seed), ms)
with threads(THREADS):
    r = signals.run(model, ex)

unit = signals.UNITS[task]
m1, m2, m3, m4 = st.columns(4)
m1.metric(signals.QUESTIONS[task], f"{signals.prediction(task, r)} {'✓' if r['correct'] else '✗'}",
          help=f"the model's answer; the true one is {signals.answer(task, ex['y'])}")
m2.metric(f"{unit.capitalize()} read", f"{r['updates']} / {r['steps']}",
          help=definition("state update"))
m3.metric("FLOP reduction", f"{signals.flop_reduction(r):.1f}×", help=definition("FLOP reduction"))
m4.metric(f"Validation {'MSE' if task == 'adding' else 'accuracy'}", _quality(task, sel["metrics"]),
          help=f"{sel['who']} on held-out examples")
with presentation.beside(PAGE):
    st.plotly_chart(presentation.big(signals.figure(task, ex, r)), key=f"{task}_example",
                    config=PLOT_CONFIG, alt="filmstrip: frames read (red) and skipped" if task == "frames"
                    else "step-by-step playback: samples read (red) and skipped")
paragraph(signals.sentence(task, ex, r, sel["who"]))

t_time, t_train, t_lambda = st.tabs(["Time it", "Train your own", "Updates against λ"])
with t_time:
    dense = signals.dense_twin(model)
    if dense is None:
        st.markdown(f"At batch 1 the clip model runs its CNN only on the {r['updates']} frames it "
                    f"reads, so the {r['steps'] - r['updates']} skipped frames cost no encoder "
                    f"work: {common.format_flops(r['flops'])} against "
                    f"{common.format_flops(r['dense_flops'])} for every frame.")
    else:
        latency_panel.panel(PAGE, model, dense, (ex["x"][None],), unit,
                            model_key=f"{task}|{sel['choice']}|{id(model) if sel['choice'] == 'session' else ''}",
                            extra=r["theta"], shared=sel["choice"] != "session")
with t_train:
    _train_tab(task)
with t_lambda:
    _lambda_tab(task, ms)
