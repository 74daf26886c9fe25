"""Checkpoints: safetensors + JSON card round trip; anything else is refused, nothing unpickled."""
import json
import pickle

import pytest
import torch

from skimviz.tasks import mnist as task
from skimviz.training import checkpoint
from skimviz.training.checkpoint import CheckpointError


def _card(model, name="tiny"):
    return {"name": name, "architecture": "SequenceClassifier", "config": model.config,
            "task": task.TASK, "input": {"side": 7}}


def test_round_trip(tmp_path):
    torch.manual_seed(0)
    m = task.make_model("lstm", hidden=8, skip=True)
    checkpoint.save(m, _card(m), tmp_path / "tiny")
    m2, card = checkpoint.load(tmp_path / "tiny")
    assert card["config"] == m.config
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    x = torch.rand(2, 49, 1)
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x), m2(x))
    assert not m2.training
    assert checkpoint.list_pretrained(tmp_path) == ["tiny"]
    assert checkpoint.load("tiny", pretrained_dir=tmp_path)[1]["name"] == "tiny"


def test_pickle_is_refused(tmp_path):
    m = task.make_model("gru", hidden=4)
    d = checkpoint.save(m, _card(m), tmp_path / "x")
    torch.save(m.state_dict(), d / "model.safetensors")  # a pickle under the right name
    with pytest.raises(CheckpointError, match="safetensors"):
        checkpoint.load(d)
    data = pickle.dumps({"a": 1})
    with pytest.raises(CheckpointError, match="not a safetensors"):
        checkpoint.read_weights_bytes(data)
    with pytest.raises(CheckpointError):
        checkpoint.read_weights_bytes(b"")
    with pytest.raises(CheckpointError, match="limit"):
        checkpoint.read_weights_bytes(b"\0" * (checkpoint.MAX_CHECKPOINT_BYTES + 1))


def test_bytes_round_trip_and_mismatch(tmp_path):
    m = task.make_model("gru", hidden=4)
    d = checkpoint.save(m, _card(m), tmp_path / "x")
    tensors = checkpoint.read_weights_bytes((d / "model.safetensors").read_bytes())
    card = json.loads((d / "card.json").read_text())
    checkpoint.build_from(card, tensors)
    card["config"]["hidden_size"] = 5
    with pytest.raises(CheckpointError, match="do not match"):
        checkpoint.build_from(card, tensors)
    with pytest.raises(CheckpointError, match="known model"):
        checkpoint.build_from({**card, "architecture": "os.system"}, tensors)
    with pytest.raises(CheckpointError, match="known model"):
        checkpoint.build_from({**card, "config": {"bogus": 1}}, tensors)


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"name": "a"}',
                                  '{"name": "a", "architecture": "X", "config": 3}'])
def test_bad_cards(text):
    with pytest.raises(CheckpointError):
        checkpoint.parse_card(text)


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x" * 80])
def test_bad_names(name, tmp_path):
    with pytest.raises(CheckpointError):
        checkpoint.load(name, pretrained_dir=tmp_path)


def test_missing_checkpoint_message(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.load("nope", pretrained_dir=tmp_path)


def test_save_is_atomic_and_needs_card_keys(tmp_path):
    m = task.make_model("gru", hidden=4)
    with pytest.raises(CheckpointError):
        checkpoint.save(m, {"name": "a"}, tmp_path / "a")
    checkpoint.save(m, _card(m, "a"), tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["card.json", "model.safetensors"]


def test_shipped_checkpoints_load():
    names = checkpoint.list_pretrained()
    for name in names:
        model, card = checkpoint.load(name)
        for key in ("task", "data", "metrics", "training"):
            assert key in card, f"{name}: card lacks {key}"
        assert card["training"]["command"].startswith("python -m skimviz train")


def test_extra_files_are_saved_and_read_back_safely(tmp_path):
    from torch import nn as _nn

    from skimviz.training import checkpoint as ck
    m = _nn.Linear(2, 2)
    card = {"name": "x", "architecture": "SequenceClassifier", "config": {}}
    d = ck.save(m, card, tmp_path / "x", extra_files={"vocab.txt": "<pad>\n<unk>\na\n"})
    assert ck.read_extra(d, "vocab.txt") == "<pad>\n<unk>\na\n"
    for bad in ("../card.json", "model.safetensors", "a/b.txt", "x.py", ""):
        with pytest.raises(ck.CheckpointError):
            ck.read_extra(d, bad)
    with pytest.raises(ck.CheckpointError):
        ck.save(m, card, tmp_path / "y", extra_files={"../evil.txt": "x"})
    with pytest.raises(ck.CheckpointError):
        ck.read_extra(d, "vocab.txt", max_bytes=4)
    with pytest.raises(ck.CheckpointError):
        ck.read_extra(d, "tokenizer.json")  # not there


def test_int8_rows_round_trip_and_bound(tmp_path):
    """Per-row int8: error at most half a step (scale/2) per element; load undoes it exactly as
    int8_roundtrip predicts; the card records the encoding."""
    torch.manual_seed(0)
    w = torch.randn(50, 16) * torch.linspace(0.01, 3, 50)[:, None]   # rows of very different size
    q, sc = checkpoint.quantize_rows(w)
    assert q.dtype == torch.int8 and sc.shape == (50,)
    assert int(q.abs().max()) == 127
    err = (checkpoint.dequantize_rows(q, sc) - w).abs()
    assert bool((err <= sc[:, None] / 2 + 1e-7).all())
    m = task.make_model("gru", hidden=8, skip=True)
    name = "rnn.cells.0.weight_hh"
    d = checkpoint.save(m, _card(m), tmp_path / "q", int8_rows=(name,))
    from safetensors.torch import load_file
    raw = load_file(str(d / "model.safetensors"))
    assert raw[name].dtype == torch.int8 and name + checkpoint.INT8_SCALE in raw
    m2, card = checkpoint.load(d)
    assert card["weights_encoding"] == {"int8_rowwise": [name]}
    assert torch.equal(m2.get_parameter(name), checkpoint.int8_roundtrip(m.get_parameter(name)))
    shipped = checkpoint.as_shipped(m, int8_rows=(name,))
    for k, v in shipped.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    assert checkpoint.as_shipped(m) is m


def test_as_shipped_fp16_matches_a_half_checkpoint(tmp_path):
    torch.manual_seed(1)
    m = task.make_model("lstm", hidden=8, skip=True)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 1e-3)            # values not exact in fp16
    import copy
    d = checkpoint.save(copy.deepcopy(m).half(), _card(m), tmp_path / "h")
    m2, _ = checkpoint.load(d)
    shipped = checkpoint.as_shipped(m, fp16=True)
    assert shipped is not m
    for k, v in shipped.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    assert any(not torch.equal(v, m.state_dict()[k]) for k, v in shipped.state_dict().items())


@pytest.mark.parametrize("enc", [{"int8_rowwise": "x"}, {"int8_rowwise": ["nope"]},
                                 {"int8": []}, ["int8_rowwise"]])
def test_bad_weights_encoding_is_refused(tmp_path, enc):
    m = task.make_model("gru", hidden=4)
    d = checkpoint.save(m, _card(m), tmp_path / "b")
    card = json.loads((d / "card.json").read_text())
    card["weights_encoding"] = enc
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="int8|weights_encoding"):
        checkpoint.load(d)


def test_int8_rows_must_name_a_matrix(tmp_path):
    m = task.make_model("gru", hidden=4)
    with pytest.raises(CheckpointError, match="not a matrix"):
        checkpoint.save(m, _card(m), tmp_path / "c", int8_rows=("head.bias",))


def test_pretrained_folder_stays_under_60_mb():
    """The product's budget for shipped checkpoints (Transkimmer issue: pretrained/ < 60 MB)."""
    total = sum(p.stat().st_size for p in checkpoint.PRETRAINED_DIR.rglob("*") if p.is_file())
    assert total < 60 * 10**6, f"pretrained/ holds {total / 1e6:.1f} MB"


def _tk_model():
    from skimviz.models.transkimmer import TranskimmerClassifier
    torch.manual_seed(0)
    return TranskimmerClassifier(500, 32, 2, 4, 64, 16).eval()


def _tk_card(m, name="tk"):
    return {"name": name, "architecture": "TranskimmerClassifier", "config": m.config}


def test_sharded_round_trip_with_row_blocks_and_int8(tmp_path):
    """Weights over max_shard_bytes go into model-0000i-of-0000n files plus an index; a tensor
    larger than a shard (here the int8 word table, 16,000 bytes) is cut into row blocks; every
    file stays under the limit plus the safetensors header; load gives the same model."""
    m = _tk_model()
    limit = 6_000
    d = checkpoint.save(m, _tk_card(m), tmp_path / "tk", int8_rows=("word.weight",),
                        max_shard_bytes=limit)
    files = checkpoint.weight_files(d)
    assert files[0].name == checkpoint.INDEX and len(files) > 3
    assert not (d / checkpoint.WEIGHTS).exists()
    for f in files[1:]:
        assert f.stat().st_size < limit + 4096, f
    card = json.loads((d / "card.json").read_text())
    blocks = card["weights_encoding"]["row_blocks"]["word.weight"]
    assert blocks == -(-500 * 32 // limit)          # ceil(16,000 / 6,000) = 3 row blocks
    index = json.loads((d / checkpoint.INDEX).read_text())
    assert set(index["weight_map"].values()) == {f.name for f in files[1:]}
    m2, _ = checkpoint.load(d)
    shipped = checkpoint.as_shipped(m, int8_rows=("word.weight",))
    for k, v in shipped.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    assert checkpoint.list_pretrained(tmp_path) == ["tk"]
    # saving again as one file removes the shards and the index, and back again
    checkpoint.save(m, _tk_card(m), d, max_shard_bytes=None)
    assert sorted(p.name for p in d.iterdir()) == ["card.json", "model.safetensors"]
    checkpoint.save(m, _tk_card(m), d, max_shard_bytes=limit)
    assert not (d / checkpoint.WEIGHTS).exists() and (d / checkpoint.INDEX).is_file()
    checkpoint.load(d)


def test_default_shard_size_keeps_every_file_under_10_mib():
    assert checkpoint.SHARD_BYTES + (1 << 20) <= 10 * 2**20
    for f in checkpoint.PRETRAINED_DIR.rglob("*"):
        assert f.stat().st_size < 10 * 2**20, f


@pytest.mark.parametrize("attack", ["path", "missing", "swapped", "pickle", "not_json", "blocks"])
def test_tampered_shards_are_refused(tmp_path, attack):
    m = _tk_model()
    d = checkpoint.save(m, _tk_card(m), tmp_path / "tk", max_shard_bytes=20_000)
    index_path = d / checkpoint.INDEX
    index = json.loads(index_path.read_text())
    shards = sorted(set(index["weight_map"].values()))
    if attack == "path":
        index["weight_map"]["word.weight"] = "../../evil.safetensors"
        index_path.write_text(json.dumps(index))
    elif attack == "missing":
        (d / shards[-1]).unlink()
    elif attack == "swapped":
        a, b = (d / shards[0]).read_bytes(), (d / shards[1]).read_bytes()
        (d / shards[0]).write_bytes(b), (d / shards[1]).write_bytes(a)
    elif attack == "pickle":
        torch.save({"x": torch.zeros(1)}, d / shards[0])
    elif attack == "not_json":
        index_path.write_text("{ nope")
    elif attack == "blocks":
        card = json.loads((d / "card.json").read_text())
        card["weights_encoding"] = {"row_blocks": {"word.weight": "2"}}
        (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError):
        checkpoint.load(d)


def test_a_card_is_parsed_once_per_version_and_never_shared(tmp_path, monkeypatch):
    """load_card keeps the parsed card per file version: a rerun does not check it again, an
    edited card is read again, and a caller that changes its card changes nobody else's."""
    m = task.make_model("lstm", hidden=8, skip=True)
    checkpoint.save(m, _card(m), tmp_path / "tiny")
    parsed = []
    real = checkpoint.parse_card
    monkeypatch.setattr(checkpoint, "parse_card", lambda t: parsed.append(1) or real(t))
    a = checkpoint.load_card("tiny", tmp_path)
    a["input"]["side"] = 99                                 # the caller's own copy
    b = checkpoint.load_card("tiny", tmp_path)
    assert len(parsed) == 1 and b["input"]["side"] == 7
    path = tmp_path / "tiny" / "card.json"
    card = json.loads(path.read_text())
    card["input"]["side"] = 14
    tmp = path.with_suffix(".new")
    tmp.write_text(json.dumps(card))
    tmp.replace(path)                                       # a new version of the file
    assert checkpoint.load_card("tiny", tmp_path)["input"]["side"] == 14
    assert len(parsed) == 2
