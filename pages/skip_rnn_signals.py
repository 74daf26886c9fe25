"""Skip RNN — signals and clips: the paper's adding task (Sec. 4.1) and frequency discrimination
(Sec. 4.2), and digit clips read by a CNN + Skip RNN (our take on Sec. 4.5), one tab each.

A thin page: data, models, training and evaluation come from ``skimviz`` (tasks.adding,
tasks.frequency, tasks.frames, train, checkpoint) and every chart from ``skimviz.figures``.
Shipped checkpoints are loaded once per process (``st.cache_resource``) and deep-copied into the
session; a model trained here lives in ``st.session_state`` only. All tabs are drawn first; a
training started in a tab runs at the end of the script, into that tab's placeholders, so any
click (Stop included) ends it and keeps the model so far.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from app_support import big, presentation, session_model
from app_support import checkpoint_stamp as _stamp
from app_support import pretrained_dir as _pretrained_dir
from skimviz import checkpoint, figures
from skimviz.checkpoint import CheckpointError
from skimviz.data import clips
from skimviz.data.synthetic import ADDING_TARGET_VARIANCE, adding_task, frequency_task
from skimviz.speedlab import threads as _threads
from skimviz.tasks import _runner, adding, frames, frequency
from skimviz.train import (Trainer, TrainingDiverged, classification_loss, evaluate_classifier,
                           evaluate_regressor, regression_loss)

THREADS = 1  # small recurrent ops gain nothing from a second thread on a busy 2-core machine
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
LAMBDAS = [0.0, 1e-5, 1e-4, 1e-3, 1e-2]
MAX_STEPS = 5000
MAX_SEED = 999_999
TRAIN_SEED_MAX = 2**31 - 1  # live training's seed (as on the MNIST page)
GATE_LR_SCALE = 0.1  # the gate learns 10× slower, as on the MNIST page

# Per task: the shipped checkpoint, the live-training recipe (measured on this 2-core machine
# while two other trainings were running; see the README) and how to train the shipped model.
TASKS = {
    "adding": dict(
        title="Adding task", shipped="skip-gru-adding", module=adding, metric="mse",
        hidden=32, batch=64, lr=1e-2, steps=1500, lam=1e-4, warmup=300, valid_n=500,
        train_cmd="python -m skimviz train adding --cell gru --lam 1e-5 --name skip-gru-adding",
        train_time="about an hour on one CPU core (the shipped GRU: 16,000 steps of batch 256)"),
    "frequency": dict(
        title="Frequency discrimination", shipped="skip-gru-frequency", module=frequency,
        metric="accuracy", hidden=32, batch=64, lr=1e-2, steps=500, lam=1e-4, warmup=150,
        valid_n=500,
        train_cmd="python -m skimviz train frequency --cell gru --lam 1e-4 --sampling-ms 1 "
                  "--name skip-gru-frequency",
        train_time="12–17 minutes at 1 ms, 35–45 at 0.5 ms on one CPU core (3,000 steps of "
                   "batch 256)"),
    "frames": dict(
        title="Digit clips", shipped="skip-gru-frames", module=frames, metric="accuracy",
        hidden=32, batch=16, lr=3e-3, steps=700, lam=1e-4, warmup=150, valid_n=200,
        train_cmd="python -m skimviz train frames --cell gru --lam 1e-4 --name skip-gru-frames",
        train_time="about 8 minutes on 2 CPU cores (3,000 steps of batch 32 at ~0.15 s each)"),
}


# ---------------------------------------------------------------------------------------------
def _shipped(name: str):
    """This session's copy of a shipped checkpoint, or (None, None, error message); all None
    when it is not there."""
    if _stamp(name) is None:
        return None, None, None
    try:
        model, card, _ = session_model(name, "_signal_models")
    except CheckpointError as e:
        return None, None, str(e)
    return model, card, None


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
    """Every readable card in the checkpoint folder (re-read when a card changes)."""
    d = Path(_pretrained_dir() or checkpoint.PRETRAINED_DIR)
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in d.glob(f"*/{checkpoint.CARD}")))
    return _read_cards(str(d), stamp)


def _untrained(task: str):
    """A fresh model of the live recipe's size (fixed seed): what an untrained gate does."""
    cfg = TASKS[task]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if task == "frames":
            return frames.make_model("gru", cfg["hidden"], feature_size=32).eval()
        return cfg["module"].make_model("gru", cfg["hidden"]).eval()


def _session_seed(task: str) -> int:
    """Live training's seed for ``task``: drawn at random once per session, then whatever the
    tab's "Training seed" input last held (its widget state is dropped off-page)."""
    slot = f"_{task}_train_seed"
    if slot not in st.session_state:
        st.session_state[slot] = int(np.random.default_rng().integers(TRAIN_SEED_MAX + 1))
    return int(st.session_state[slot])


def _fmt_lambda(v: float) -> str:
    return "0 (no budget)" if v == 0 else f"{v:.0e}"


def _sampling_ms() -> float:
    return float(st.session_state.get("frequency_sampling", 1.0))


def _make_batch(task: str):
    if task == "adding":
        return lambda n, s: adding_task(n, adding.LENGTH, seed=s)
    if task == "frequency":
        ms = _sampling_ms()
        return lambda n, s: frequency_task(n, sampling_ms=ms, seed=s)[:2]
    return lambda n, s: clips.make_clips(n, seed=s)[:2]


def _valid(task: str, n: int):
    if task == "adding":
        return adding_task(n, adding.LENGTH, seed=adding.VALID_SEED)
    if task == "frequency":
        return frequency_task(n, sampling_ms=_sampling_ms(), seed=frequency.VALID_SEED)[:2]
    x, y, _ = clips.make_clips(n, seed=frames.VALID_SEED, split="test")
    return x, y


def _live(task: str):
    live = st.session_state.get(f"live_{task}")
    if live is not None:
        if live["lock"].acquire(timeout=60):  # a previous run's training winds down first
            live["lock"].release()
        if live["status"] == "training":
            live["status"] = "stopped"  # the rerun interrupted it: keep the model
    return live


def _live_metrics(task: str, live: dict) -> None:
    if live.get("metrics") is not None or live["step"] == 0:
        return
    cfg = TASKS[task]
    x, y = _valid(task, cfg["valid_n"])
    with _threads(THREADS):
        if task == "adding":
            r = evaluate_regressor(live["model"], x, y)
        else:
            r = evaluate_classifier(live["model"], x, y, batch_size=100)
    live["metrics"] = {f"valid_{cfg['metric']}": r[cfg["metric"]],
                       "valid_updates_mean": r["updates"], "valid_update_rate": r["update_rate"],
                       "n_valid": r["n"]}


# --- one tab ------------------------------------------------------------------------------------
def _shipped_name(task: str) -> str:
    """The shipped checkpoint this tab shows: a picker when the task has several (one per cell
    and λ; for the frequency task those of the chosen sampling period), else the default."""
    cfg = TASKS[task]
    pts = figures.lambda_points(_cards(), cfg["module"].TASK,
                                sampling_ms=_sampling_ms() if task == "frequency" else None)
    names = [str(p["name"]) for p in pts]
    if len(names) < 2:
        return names[0] if names else cfg["shipped"]
    labels = {str(p["name"]): f"{p['name']} ({str(p['cell']).upper()}, λ = "
                              f"{_fmt_lambda(p['lambda'])})" for p in pts}
    key = f"{task}_checkpoint"
    if st.session_state.get(key) not in names:
        st.session_state[key] = cfg["shipped"] if cfg["shipped"] in names else names[0]
    return st.selectbox("Shipped checkpoint", names, key=key, format_func=labels.get,
                        help="every shipped checkpoint of this task"
                             + (" at this sampling period" if task == "frequency" else "")
                             + ", one per cell and λ (the paper's table rows)")


def _model_choice(task: str):
    """The radio, and (model, description, card or None)."""
    cfg = TASKS[task]
    name = _shipped_name(task)
    shipped, card, error = _shipped(name)
    live = st.session_state.get(f"live_{task}")
    options = (["shipped"] if shipped is not None else []) + \
        (["session"] if live is not None and live["step"] > 0 else []) + ["untrained"]
    if st.session_state.pop(f"_select_live_{task}", False) and "session" in options:
        st.session_state[f"{task}_model"] = "session"
    if st.session_state.get(f"{task}_model") not in options:
        st.session_state.pop(f"{task}_model", None)
    labels = {"shipped": f"Shipped: {name}", "session": "My session's model",
              "untrained": "Untrained model (every step used)"}
    choice = st.radio("Model", options, key=f"{task}_model", horizontal=True,
                      format_func=labels.get,
                      help="Train a model in this session below; it then appears here.")
    if error:
        st.error(f"The shipped checkpoint `{name}` could not be loaded: {error}")
    if shipped is None:
        st.info(f"No shipped checkpoint `{name}` yet. Train it with "
                f"`{cfg['train_cmd']}` ({cfg['train_time']}; resumable with `--resume`), or train "
                "a small model live in this tab below.")
    elif choice == "shipped":
        m, tr, tgt = card.get("metrics", {}), card.get("training", {}), card.get("target", {})
        metric = cfg["metric"]
        val = m.get(f"valid_{metric}")
        c1, c2, c3 = st.columns(3)
        c1.metric(f"Validation {metric}", "?" if val is None else
                  (f"{val:.5f}" if metric == "mse" else f"{val:.1%}"))
        c2.metric("Steps used", f"{100 * m.get('valid_update_rate', 0):.1f} %",
                  help=f"{m.get('valid_updates_mean', 0):.1f} updates per sequence on average")
        c3.metric("λ", f"{tr.get('lambda', '?')}", help=f"{tr.get('steps', '?')} training steps")
        st.caption(f"Target: {tgt.get('goal', '?')} — {'reached' if tgt.get('reached') else 'not reached'}. "
                   f"Trained with `{tr.get('command', '?')}`.")
        if tr.get("dry_run"):
            st.warning("This checkpoint comes from a pipeline dry run (two training steps): its "
                       "numbers mean nothing.")
    if choice == "shipped":
        return shipped, f"the shipped {name}", card
    if choice == "session":
        return live["model"], "your session's model", None
    return _untrained(task), "an untrained model", None


def _seed_input(task: str) -> int | None:
    v = st.number_input("Example seed", min_value=0, max_value=MAX_SEED, value=0, step=1,
                        key=f"{task}_seed",
                        help=f"0–{MAX_SEED:,}: each seed generates a different example")
    if v is None or not 0 <= int(v) <= MAX_SEED:
        st.error(f"The seed must be a whole number between 0 and {MAX_SEED:,}.")
        return None
    return int(v)


def _example_adding(model, desc: str) -> None:
    seed = _seed_input("adding")
    if seed is None:
        return
    x, y = adding_task(1, adding.LENGTH, seed=seed)
    with _threads(THREADS):
        r = adding.predict(model, x[0])
    theta = getattr(getattr(model, "rnn", None), "update_threshold", 0.5)
    c1, c2, c3 = st.columns(3)
    c1.metric("Target (sum of the marked values)", f"{float(y[0]):+.3f}")
    c2.metric("Prediction", f"{r['output']:+.3f}", delta=f"error {r['output'] - float(y[0]):+.3f}",
              delta_color="off")
    c3.metric("Updates", f"{r['updates']} / {r['steps']}")
    fig = figures.adding_figure(x[0].numpy(), r["update"], r["update_prob"], theta,
                                title=f"{desc}: {r['updates']} of {r['steps']} samples used")
    st.plotly_chart(big(fig), key="adding_example", config=PLOT_CONFIG,
                    alt="adding-task input: used (red) and skipped (blue) samples")
    st.caption("Top: the 50 values of this sequence, red where the network updated its state "
               "with the sample, blue where it copied the state and skipped it (as in the paper's "
               "Fig. 2); the two marked values are ringed in orange. Bottom: ũ_t, the update "
               "probability of Eq. 5 — after an update it restarts at Δũ, while skipping it grows "
               "by Δũ each step until it reaches θ (dashed), the sawtooth.")


def _example_frequency(model, desc: str) -> None:
    seed = _seed_input("frequency")
    if seed is None:
        return
    ms = _sampling_ms()
    x, y, period = frequency_task(1, sampling_ms=ms, seed=seed)
    with _threads(THREADS):
        r = frequency.predict(model, x[0])
    theta = getattr(getattr(model, "rnn", None), "update_threshold", 0.5)
    names = ["period outside (5, 6) ms", "period in (5, 6) ms"]
    c1, c2, c3 = st.columns(3)
    c1.metric("True class", names[int(y[0])], help=f"period {float(period[0]):.2f} ms")
    c2.metric("Prediction", names[r["label"]],
              help=f"probability {r['probabilities'][r['label']]:.1%}")
    c3.metric("Updates", f"{r['updates']} / {r['steps']}")
    fig = figures.sine_figure(x[0].numpy(), r["update"], r["update_prob"], theta, sampling_ms=ms,
                              title=f"{desc}: {r['updates']} of {r['steps']} samples used")
    st.plotly_chart(big(fig), key="frequency_example", config=PLOT_CONFIG,
                    alt="sine wave: used (red) and skipped (blue) samples")
    st.caption(f"Top: 100 ms of a sine wave with period {float(period[0]):.2f} ms, one sample "
               f"every {ms:g} ms; red samples were used, blue ones skipped. Bottom: ũ_t (Eq. 5) "
               "against θ (dashed).")


def _example_frames(model, desc: str) -> None:
    seed = _seed_input("frames")
    if seed is None:
        return
    x, y, info = clips.make_clips(1, seed=seed, split="test")
    with _threads(THREADS):
        r = frames.predict(model, x[0])
    theta = getattr(getattr(model, "rnn", None), "update_threshold", 0.5)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("True digit", int(y[0]))
    c2.metric("Prediction", r["label"], help=f"probability {max(r['probabilities']):.1%}")
    c3.metric("Frames used", f"{r['updates']} / {r['steps']}",
              help="only these frames went through the CNN encoder (batch 1)")
    c4.metric("FLOPs vs every frame", f"{r['flops'] / r['dense_flops']:.0%}",
              help="encoder + RNN FLOPs of this clip over those of reading every frame")
    fig = figures.filmstrip_figure(x[0].numpy(), r["update"],
                                   title=f"{desc}: {r['updates']} of {r['steps']} frames used "
                                         "(red border); skipped frames dimmed (blue)")
    st.plotly_chart(big(fig), key="frames_example", config=PLOT_CONFIG,
                    alt="filmstrip: used frames highlighted, skipped frames dimmed")
    changed = int(info["changed"][0].sum())
    st.caption(f"The clip, left to right and top to bottom: blank frames, the digit appears, "
               f"drifts, then holds still (only {changed} of {r['steps']} frames differ from the "
               "one before). Used frames are bright with a red border; skipped frames are dimmed "
               "with a blue border — the CNN never saw them.")
    st.plotly_chart(big(figures.sawtooth_figure(r["update_prob"], r["update"], theta,
                                                x_title="frame")),
                    key="frames_sawtooth", config=PLOT_CONFIG, alt="update probability per frame")
    st.caption("ũ_t per frame (Eq. 5): reset after each used frame, growing while frames are "
               "skipped, until it reaches θ (dashed).")


def _lambda_chart(task: str) -> None:
    cfg = TASKS[task]
    cards = [c for c in _cards() if not c.get("training", {}).get("dry_run")]
    live = st.session_state.get(f"live_{task}")
    if live is not None and live.get("metrics"):
        cards.append({"name": "your session model", "task": cfg["module"].TASK,
                      "config": {"skip": True}, "training": {"lambda": live["config"]["lam"]},
                      "input": {"sampling_ms": live["config"].get("sampling_ms")},
                      "metrics": live["metrics"]})
    pts = figures.lambda_points(cards, cfg["module"].TASK,
                                sampling_ms=_sampling_ms() if task == "frequency" else None)
    if not pts:
        st.info("No checkpoints of this task to compare yet: the chart of updates and "
                f"{cfg['metric']} against λ appears once shipped checkpoints (or a model trained "
                "here) exist.")
        return
    st.plotly_chart(figures.lambda_figure(pts), key=f"{task}_lambda", config=PLOT_CONFIG,
                    alt=f"updates and {cfg['metric']} against λ")
    st.caption(("At the chosen sampling period. " if task == "frequency" else "")
               + f"One point per checkpoint of this task: the fraction of steps it uses (left) and "
               f"its validation {cfg['metric']} (right) against λ, the cost per used sample.")


def _train_controls(task: str) -> dict:
    cfg = TASKS[task]
    with st.container(key=f"controls_{task}"):
        w1, w2, w3 = st.columns(3)
        lam = w1.select_slider("Budget λ (cost per used sample)", LAMBDAS, value=cfg["lam"],
                               key=f"{task}_lambda_live", format_func=_fmt_lambda)
        steps = w2.number_input("Training steps", min_value=1, max_value=MAX_STEPS,
                                value=cfg["steps"], step=50, key=f"{task}_steps",
                                help=f"batches of {cfg['batch']}")
        seed_key = f"{task}_train_seed"
        if seed_key not in st.session_state:  # the widget's state is dropped off-page
            st.session_state[seed_key] = _session_seed(task)
        seed = w3.number_input(f"Training seed (0–{TRAIN_SEED_MAX})", min_value=0,
                               max_value=TRAIN_SEED_MAX, step=1, key=seed_key,
                               help="fixes the starting weights and the generated batches: the "
                                    "same seed with the same settings trains the same model; "
                                    "drawn at random once per session")
        if seed is not None and 0 <= int(seed) <= TRAIN_SEED_MAX:
            st.session_state[f"_{task}_train_seed"] = int(seed)
        b1, b2, _ = st.columns([1, 1, 4])
        start = b1.button("Start training", key=f"{task}_start", type="primary")
        b2.button("Stop training", key=f"{task}_stop",
                  help="stops the training; the model so far is kept")
    boxes = {"status": st.empty(), "progress": st.empty(), "curves": st.empty()}
    st.caption("Training curves (once a model has been trained here): loss, the batch's "
               f"{'MSE' if cfg['metric'] == 'mse' else 'accuracy'} and the fraction of steps used, "
               "per step (grey) and averaged over 10 steps.")
    problems = []
    if lam not in LAMBDAS:
        problems.append(f"λ must be one of {', '.join(map(_fmt_lambda, LAMBDAS))}")
    if steps is None or not 1 <= int(steps) <= MAX_STEPS:
        problems.append(f"training steps must be between 1 and {MAX_STEPS}")
    if seed is None or not 0 <= int(seed) <= TRAIN_SEED_MAX:
        problems.append(f"the seed must be a whole number from 0 to {TRAIN_SEED_MAX}")
    live = st.session_state.get(f"live_{task}")
    if start and problems:
        boxes["status"].error("Cannot start: " + "; ".join(problems) + ".")
    elif live is not None and not start:
        curves = figures.REGRESSION_CURVES if cfg["metric"] == "mse" else figures.CURVES
        if live["status"] == "diverged":
            boxes["status"].error(f"Training diverged: {live['error']}. Try a smaller λ.")
        elif live["status"] == "stopped":
            boxes["status"].warning(f"Training stopped at step {live['step']} of "
                                    f"{live['config']['steps']}; the model so far is kept.")
        elif live["status"] == "done":
            m = live.get("metrics") or {}
            val = m.get(f"valid_{cfg['metric']}", float("nan"))
            shown = f"MSE {val:.4f}" if cfg["metric"] == "mse" else f"accuracy {val:.1%}"
            boxes["status"].success(
                f"Trained {live['step']} steps (seed {live['config']['seed']}) in "
                f"{live['elapsed_s']:.0f} s: validation {shown}, "
                f"{100 * m.get('valid_update_rate', 0):.0f} % of the steps used. Your model is "
                "available under “Model” above.")
        if live["history"]:
            boxes["curves"].plotly_chart(figures.training_curves_figure(live["history"],
                                                                        curves=curves),
                                         key=f"{task}_curves", config=PLOT_CONFIG,
                                         alt="training curves")
    return {"start": bool(start and not problems), "lam": lam, "steps": steps,
            "seed": None if seed is None else int(seed), "boxes": boxes}


def _tab(task: str, intro: str, example) -> dict:
    st.markdown(intro)
    _live(task)
    st.subheader("Model")
    model, desc, _card = _model_choice(task)
    st.subheader("An example")
    example(model, desc)
    st.subheader("Updates and quality against λ")
    _lambda_chart(task)
    st.subheader("Train a small Skip GRU in this session")
    cfg = TASKS[task]
    st.markdown(
        f"A Skip GRU with {cfg['hidden']} units learns from fresh generated batches of "
        f"{cfg['batch']} (Adam, learning rate {cfg['lr']:g}, gradient clipping at 1, one CPU "
        f"thread; λ ramps up over the first {cfg['warmup']} steps and the gate learns 10× "
        f"slower). {LIVE_NOTES[task]} **Any click on the page stops the training**; the model "
        "so far is kept, in this browser session only. The training seed fixes the starting "
        "weights and the batches: the same seed and settings train the same model again.")
    return _train_controls(task)


def _run_training(task: str, ctl: dict) -> None:
    cfg = TASKS[task]
    steps, lam = int(ctl["steps"]), float(ctl["lam"])
    seed = int(ctl["seed"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if task == "frames":
            model = frames.make_model("gru", cfg["hidden"], feature_size=32)
        else:
            model = cfg["module"].make_model("gru", cfg["hidden"])
    warm = min(cfg["warmup"], max(1, steps // 3))
    loss = (regression_loss(lam, warm) if cfg["metric"] == "mse"
            else classification_loss(lam, warm))
    trainer = Trainer(model, loss, lr=cfg["lr"], gate_lr=cfg["lr"] * GATE_LR_SCALE)
    live = {"model": model, "config": {"lam": lam, "steps": steps, "seed": seed,
                                       "sampling_ms": _sampling_ms() if task == "frequency" else None},
            "status": "training", "step": 0, "elapsed_s": 0.0, "history": trainer.history,
            "metrics": None, "error": None, "lock": threading.RLock()}
    st.session_state[f"live_{task}"] = live
    boxes = ctl["boxes"]
    curves = figures.REGRESSION_CURVES if cfg["metric"] == "mse" else figures.CURVES
    every = max(1, steps // 25)

    def on_step(p) -> bool:
        live["step"], live["elapsed_s"] = p.step, p.elapsed_s
        s = p.stats
        shown = (f"MSE {s['mse']:.4f}" if cfg["metric"] == "mse" else f"accuracy {s['accuracy']:.0%}")
        boxes["progress"].progress(p.fraction, text=f"step {p.step}/{p.total_steps} · loss "
                                                    f"{p.loss:.4f} · batch {shown} · update rate "
                                                    f"{s['update_rate']:.0%} · {p.elapsed_s:.0f} s")
        if p.step % every == 0 or p.step == p.total_steps:
            boxes["curves"].plotly_chart(figures.training_curves_figure(p.history, curves=curves),
                                         key=f"{task}_curves_{p.step}", config=PLOT_CONFIG,
                                         alt="training curves")
        return False

    boxes["status"].info("Training… click “Stop training” (or anything else) to stop.")
    boxes["progress"].progress(0.0, text=f"step 0/{steps}")
    finished = False
    with live["lock"]:
        try:
            with _threads(THREADS):
                trainer.fit(_runner.generated_batches(_make_batch(task), cfg["batch"], seed),
                            steps, callback=on_step, log_every=1)
        except TrainingDiverged as e:
            live["status"], live["error"] = "diverged", str(e)
        else:
            live["status"] = "done"
            _live_metrics(task, live)
            finished = True
    if finished:
        st.session_state[f"_select_live_{task}"] = True  # applied before the radio is drawn
        st.rerun()


LIVE_NOTES = {
    "adding": "Measured on this 2-core machine while it also ran two other trainings: 1,000 steps "
              "took 37–45 s, so the default 1,500 take about a minute. Two measured 1,000-step "
              "runs reached a validation MSE of 0.0008 and 0.05 (the target's variance is 0.167, "
              "“solved” is ≤ 0.0017): it depends on the random start. They still used 85–90 % of "
              "the steps — skipping more takes the longer training of the shipped model or a "
              "larger λ.",
    "frequency": "The default 500 steps at 1 ms took about 45 s on this 2-core machine (twice as "
                 "long at 0.5 ms); a measured run reached 99 % validation accuracy while still "
                 "reading nearly every sample.",
    "frames": "The default 700 steps of 16 clips took about 60 s on this 2-core machine; measured "
              "runs reached 78–84 % accuracy on clips of unseen digits using 65–88 % of the "
              "frames. The frame encoder is a small CNN with 32 outputs here.",
}

# =============================================================================================
st.title("Skip RNN — signals and clips")
st.markdown(
    "A **Skip RNN** (Campos et al., ICLR 2018) has a learned binary gate that decides, at every "
    "step, whether to **update** its state with the input (the RNN runs) or to **copy** it and "
    "skip the input (nothing runs). A budget loss λ·Σu_t makes each used step cost something. "
    "Here the gate works on the paper's two synthetic signals and on short digit clips.")
# Presentation mode (app_support): the toggle, and when on the CSS and this page's slides (the
# training controls sit in "controls_*" containers, hidden then); present=1 follows in the URL.
presentation("skip-rnn-signals")

tabs = st.tabs(["Adding task", "Frequency discrimination", "Digit clips"])
controls = {}
with tabs[0]:
    controls["adding"] = _tab("adding", (
        "Each sequence is 50 (value, marker) pairs; the answer is the sum of the **two marked "
        "values** — one among the first 5 steps, one in the second half. Everything else is a "
        "distraction, so a good model reads the markers and skips most of the rest (the paper's "
        "Table 1: about half the updates). The task counts as *solved* when the test MSE is 100× "
        f"below the target's variance ({ADDING_TARGET_VARIANCE:.3f})."), _example_adding)
with tabs[1]:
    st.radio("Sampling period", [1.0, 0.5], key="frequency_sampling", horizontal=True,
             format_func=lambda v: f"{v:g} ms ({int(100 / v)} samples)",
             help="the same 100 ms of signal, sampled twice as often at 0.5 ms")
    controls["frequency"] = _tab("frequency", (
        "Is the period of this sine wave between 5 and 6 ms? The network hears 100 ms of it, one "
        "sample per step. A sine wave is smooth, so a few well-placed samples are enough; with "
        "λ > 0 the paper's models use about the same number of samples whether the wave is "
        "sampled every 1 ms or every 0.5 ms (Table 2). *Solved* means over 99 % accuracy."),
        _example_frequency)
with tabs[2]:
    controls["frames"] = _tab("frames", (
        "A 48-frame clip shows one MNIST digit: a few blank frames, then the digit appears, "
        "drifts a few pixels and holds still — most frames repeat the one before. A small CNN "
        "encodes frames and the Skip GRU reads the codes, as in the paper's video pipeline "
        "(Sec. 4.5). At batch 1 a skipped frame is never encoded, so skipping saves the CNN's "
        "work too."), _example_frames)

for _task, _ctl in controls.items():
    if _ctl["start"]:
        _run_training(_task, _ctl)
        break
