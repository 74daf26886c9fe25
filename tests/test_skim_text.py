"""Skim-LSTM text task: the train → evaluate → predict pipeline on a tiny made-up corpus (not a
slice of any dataset), the threshold sweep and the analysis of free text."""
import json

import pytest
import torch

from skimviz.cli import main
from skimviz.data import text as T
from skimviz.models.text_classifier import TextClassifier
from skimviz.tasks import skim_text
from skimviz.training import checkpoint

POS = ["a warm and funny film", "i loved every minute of it", "great acting , great story",
       "the best thing i have seen this year", "moving and beautifully made"]
NEG = ["a dull and tedious mess", "i hated every minute of it", "bad acting , worse story",
       "the worst thing i have seen this year", "boring and badly made"]


@pytest.fixture()
def corpus(tmp_path):
    d = tmp_path / "data" / "sst2"
    d.mkdir(parents=True)
    rows = [(s, 1) for s in POS] + [(s, 0) for s in NEG]
    for split, k in (("train", 30), ("dev", 2)):
        lines = ["sentence\tlabel"] + [f"{s} \t{y}" for s, y in rows * k]
        (d / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_train_evaluate_predict_pipeline(corpus, capsys):
    out, work = corpus / "out", corpus / "work"
    rc = main(["train", "text", "--data-dir", str(corpus / "data"), "--out", str(out),
               "--work", str(work), "--epochs", "2", "--batch-size", "8", "--eval-every", "10",
               "--name", "skim-tiny", "--embed", "16", "--hidden", "16", "--small", "4"])
    assert rc == 0
    card = json.loads((out / "skim-tiny" / "card.json").read_text())
    assert card["task"] == "text-classification" and card["config"]["skim"] is True
    assert card["metrics"]["valid_accuracy"] > 0.6  # the toy task is learnable
    sweep = card["threshold_sweep"]
    assert [r["threshold"] for r in sweep] == list(skim_text.THRESHOLDS)
    rates = [r["skim_rate"] for r in sweep]
    assert rates == sorted(rates, reverse=True)  # higher θ → less skimming
    assert (out / "skim-tiny" / "vocab.txt").is_file()
    capsys.readouterr()

    rc = main(["evaluate", str(out / "skim-tiny"), "--data-dir", str(corpus / "data"),
               "--split", "dev", "--threshold", "0.0", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert rc == 0 and r["skim_rate"] == 1.0 and r["flop_r"] > 1.0 and r["n"] == 20

    inp = corpus / "in.txt"
    inp.write_text("A warm film!\n\n<script>alert(1)</script>\n")
    rc = main(["predict", str(out / "skim-tiny"), "--input", str(inp), "--json"])
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert rc == 0 and len(lines) == 2
    assert set(lines[0]) >= {"label", "probability", "skim_rate", "flop_r"}
    assert main(["evaluate", str(out / "skim-tiny"), "--data-dir", str(corpus / "data"),
                 "--split", "test"]) == 2  # SST-2 has no test split here: a clear error


def test_resume_continues_from_the_saved_step(corpus):
    args = ["train", "text", "--data-dir", str(corpus / "data"), "--out", str(corpus / "o"),
            "--work", str(corpus / "w"), "--batch-size", "8", "--eval-every", "5",
            "--embed", "8", "--hidden", "8", "--small", "2", "--name", "r"]
    assert main(args + ["--epochs", "1"]) == 0
    step1 = torch.load(corpus / "w" / "r" / "state.pt", weights_only=True)["trainer"]["step"]
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    step2 = torch.load(corpus / "w" / "r" / "state.pt", weights_only=True)["trainer"]["step"]
    assert step1 == 38 and step2 == 76  # 300 texts / 8 = 38 steps per epoch


def test_analyse_free_text_and_threshold():
    vocab = T.Vocab.build([["good", "film", "bad"]])
    torch.manual_seed(0)
    m = TextClassifier(len(vocab), 8, 12, 3).eval()
    r = skim_text.analyse(m, vocab, "A GOOD film 😀, really")
    assert r["tokens"] == ["a", "good", "film", "😀", ",", "really"]
    assert r["known"] == [False, True, True, False, False, False]
    assert len(r["skim"]) == len(r["p_skim"]) == 6 and abs(sum(r["probabilities"]) - 1) < 1e-6
    m.set_threshold(0.0)
    r0 = skim_text.analyse(m, vocab, "good film")
    assert r0["skim"] == [1, 1] and r0["flop_r"] > 2
    with pytest.raises(ValueError):
        skim_text.analyse(m, vocab, "   ")


def test_shipped_text_checkpoints_load_with_their_vocab():
    names = [n for n in checkpoint.list_pretrained()
             if checkpoint.load_card(n).get("task") == "text-classification"]
    for name in names:
        model, card = checkpoint.load(name)
        vocab = skim_text.load_vocab(name)
        assert len(vocab) == card["config"]["vocab_size"] == card["input"]["vocab_size"]
        r = skim_text.analyse(model, vocab, "a gorgeous , witty , seductive movie .")
        assert r["label"] in (0, 1)


def test_init_from_dense_twin_copies_its_reading(corpus):
    common = ["--data-dir", str(corpus / "data"), "--out", str(corpus / "o"), "--work",
              str(corpus / "w"), "--batch-size", "8", "--epochs", "1", "--embed", "8",
              "--hidden", "8", "--small", "2"]
    assert main(["train", "text", "--dense", "--name", "dense"] + common) == 0
    dense, _ = checkpoint.load(corpus / "o" / "dense")
    vocab = skim_text.load_vocab(corpus / "o" / "dense")
    skim = TextClassifier(len(vocab), 8, 8, 2)
    skim_text.init_from_dense(skim, "dense", vocab, str(corpus / "o"))
    skim.eval().rnn.force = "read"
    x = torch.randint(1, len(vocab), (3, 6))
    torch.testing.assert_close(skim(x), dense(x), atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        skim_text.init_from_dense(skim, "dense", T.Vocab(["<pad>", "<unk>", "x"]), str(corpus / "o"))
    assert main(["train", "text", "--name", "sk", "--init-from", "dense"] + common) == 0
    card = json.loads((corpus / "o" / "sk" / "card.json").read_text())
    assert card["training"]["init_from"] == "dense"


def test_sweep_subset_is_a_fixed_sample_not_a_prefix():
    a = skim_text.sweep_subset(3826, 1000)
    assert a == skim_text.sweep_subset(3826, 1000) and len(set(a)) == 1000
    assert max(a) > 2000 and min(a) < 100  # spread over the set, not its first 1000
    assert skim_text.sweep_subset(872, 872) == list(range(872))


def test_shipped_weights_are_fp16_with_int8_embeddings_and_reexport_keeps_them(corpus, capsys):
    """The default export stores fp16 weights with per-row int8 word embeddings, and the card's
    validation numbers are those of the file (evaluated as read back); --reexport rewrites the
    card from an int8 file and records its own command."""
    from safetensors.torch import load_file
    base = ["train", "text", "--data-dir", str(corpus / "data"), "--out", str(corpus / "o"),
            "--work", str(corpus / "w"), "--epochs", "1", "--batch-size", "8",
            "--eval-every", "19", "--embed", "16", "--hidden", "16", "--small", "4",
            "--name", "q"]
    assert main(base) == 0
    d = corpus / "o" / "q"
    raw = load_file(str(d / "model.safetensors"))
    assert raw["embed.weight"].dtype == torch.int8
    assert {v.dtype for k, v in raw.items() if not k.startswith("embed.")} == {torch.float16}
    card = json.loads((d / "card.json").read_text())
    assert card["weights_encoding"] == {"int8_rowwise": ["embed.weight"]}
    model, _ = checkpoint.load(d)
    vocab = skim_text.load_vocab(d)
    x_va, y_va = skim_text.load_split("sst2", str(corpus / "data"), "dev")
    v = skim_text.evaluate(model, skim_text.encode(x_va, vocab, 400), list(y_va))
    assert v["accuracy"] == card["metrics"]["valid_accuracy"]
    assert v["flop_r"] == pytest.approx(card["metrics"]["valid_flop_r"])
    capsys.readouterr()
    assert main(base + ["--resume", "--reexport"]) == 0
    card2 = json.loads((d / "card.json").read_text())
    assert card2["metrics"]["valid_accuracy"] == card["metrics"]["valid_accuracy"]
    assert "--reexport" in card2["training"]["reexport_command"]
    assert card2["training"]["command"] == card["training"]["command"]
