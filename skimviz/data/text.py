"""Text for the Skim-RNN and Transkimmer models: a tokenizer for what users type that matches
how SST-2 was tokenised, a vocabulary that ships with each checkpoint, and the SST-2 / IMDB
loaders (training only; the app never needs the datasets).

SST-2 (GLUE) text is lower-cased and Penn-Treebank tokenised: ``it 's``, ``does n't``,
``ca n't``, punctuation split off (``, . ! ? ; : ( )``), ``...`` and ``--`` kept whole,
double quotes written as ````…''``, hyphenated words (``old-fashioned``) and abbreviations
(``mr.``) kept as one token. :func:`tokenize` reproduces that on free text (curly quotes,
emoji, HTML line breaks from IMDB, very long input), so that a user's sentence meets the same
vocabulary the model was trained on. Emoji and other symbols become their own tokens (unknown to
an SST-2 vocabulary, so they map to ``<unk>``).
"""
from __future__ import annotations

import re
import tarfile
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import torch

from skimviz.safety import strip_controls

PAD, UNK = "<pad>", "<unk>"
#: Longest input a page accepts, in characters; longer text is cut with a notice.
MAX_CHARS = 5_000
#: Token limit used for training and inference (IMDB reviews are cut here, as is user text).
MAX_TOKENS = 400

_ABBREV = {"mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "etc.", "inc.", "co.",
           "u.s.", "e.g.", "i.e.", "prof.", "mt.", "no."}
_CONTRACTIONS = re.compile(r"(?i)\b(\w+)(n't)\b|\b(\w+)('s|'re|'ve|'ll|'d|'m)\b")
_SPECIAL_NT = {"can": "ca", "won": "wo", "ain": "ai", "shan": "sha"}
_TOKEN = re.compile(
    r"""\.\.\.+            # ellipsis
      | --+                # dash
      | ``|''              # PTB quotes
      | n't                # negation clitic (split off below)
      | '(?:s|re|ve|ll|d|m)\b
      | '(?:em|til|n'|\d0s)(?!\w)      # 'em, 'til, rock 'n' roll, the '80s
      | \d+(?:,\d{3})+(?:\.\d+)?          # 10,000
      | [^\W_]+(?:[-./'][^\W_]+)*(?:\.(?!\.))?   # words, numbers, hyphenated, abbreviations
      | \*+|!+|\?+          # runs of emphasis
      | [^\s\w]|_          # any other single character (punctuation, emoji, symbols)
    """, re.X)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", strip_controls(text))    # no bidi overrides, no NUL
    text = re.sub(r"<br\s*/?>", " ", text, flags=re.I)            # IMDB line breaks
    text = (text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00b4", "'")
            .replace("\u2026", "...").replace("\u2014", " -- ").replace("\u2013", " -- "))
    text = text.replace("\u201c", " `` ").replace("\u201d", " '' ")
    # straight double quotes alternate opening/closing, as in the Penn Treebank
    parts = text.split('"')
    text = "".join(p + ((" `` " if i % 2 == 0 else " '' ") if i < len(parts) - 1 else "")
                   for i, p in enumerate(parts))
    return text.lower()


def _split_clitics(tok: str) -> List[str]:
    m = re.fullmatch(r"(\w+)n't", tok)
    if m:
        stem = m.group(1)
        return [_SPECIAL_NT.get(stem, stem), "n't"]
    m = re.fullmatch(r"(\w+)('s|'re|'ve|'ll|'d|'m)", tok)
    if m:
        return [m.group(1), m.group(2)]
    return [tok]


def tokenize(text: str, max_tokens: Optional[int] = None) -> List[str]:
    """SST-2-style tokens of ``text`` (lower-cased, PTB clitics, punctuation split).

    >>> tokenize("It's a charming, often affecting journey... Don't miss it!")
    ['it', "'s", 'a', 'charming', ',', 'often', 'affecting', 'journey', '...', 'do', "n't", 'miss', 'it', '!']
    """
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    out: List[str] = []
    for raw in _normalise(text[:MAX_CHARS * 4]).split():
        for tok in _TOKEN.findall(raw):
            if (tok.endswith(".") and tok[0].isalnum() and tok not in _ABBREV
                    and not re.fullmatch(r"(?:[^\W\d_]\.)+", tok)):
                out.extend(_split_clitics(tok[:-1]) + ["."])
            elif "'" in tok and tok not in ("''",) and not tok.startswith("'"):
                out.extend(_split_clitics(tok))
            else:
                out.append(tok)
            if max_tokens is not None and len(out) >= max_tokens:
                return out[:max_tokens]
    return out


class Vocab:
    """Token ↔ id table; id 0 is padding, id 1 the unknown word."""

    def __init__(self, itos: Sequence[str]):
        itos = list(itos)
        if itos[:2] != [PAD, UNK]:
            raise ValueError("a vocabulary starts with <pad>, <unk>")
        if len(set(itos)) != len(itos):
            raise ValueError("duplicate tokens in the vocabulary")
        self.itos = itos
        self.stoi = {t: i for i, t in enumerate(itos)}

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, texts: Iterable[List[str]], min_freq: int = 1, max_size: int = 50_000
              ) -> "Vocab":
        counts = Counter(t for toks in texts for t in toks)
        words = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                 if c >= min_freq and w not in (PAD, UNK)]
        return cls([PAD, UNK] + words[:max_size - 2])

    def encode(self, tokens: Sequence[str]) -> List[int]:
        return [self.stoi.get(t, 1) for t in tokens]

    def known(self, tokens: Sequence[str]) -> List[bool]:
        return [t in self.stoi for t in tokens]

    def to_text(self) -> str:
        return "\n".join(self.itos) + "\n"

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls(text.rstrip("\n").split("\n"))


def pad_batch(ids: Sequence[Sequence[int]], max_len: int = MAX_TOKENS
              ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, T) LongTensor (0 = padding) and (B,) lengths; each row is cut to
    ``max_len`` and has at least one token (an empty text becomes one ``<unk>``)."""
    rows = [list(r[:max_len]) or [1] for r in ids]
    T = max(len(r) for r in rows)
    out = torch.zeros(len(rows), T, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out, torch.tensor([len(r) for r in rows], dtype=torch.long)


# ----------------------------------------------------------------------------- datasets

def load_sst2(data_dir: str | Path, split: str) -> Tuple[List[str], List[int]]:
    """GLUE SST-2 ``train`` or ``dev`` from ``DATA_DIR/sst2/{split}.tsv`` (sentence, label)."""
    if split not in ("train", "dev"):
        raise ValueError("SST-2 split is 'train' or 'dev'")
    p = Path(data_dir) / "sst2" / f"{split}.tsv"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found (expected GLUE SST-2 in DATA_DIR/sst2/)")
    texts, labels = [], []
    with open(p, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:2] != ["sentence", "label"]:
            raise ValueError(f"{p}: unexpected header {header}")
        for line in f:
            s, _, y = line.rstrip("\n").rpartition("\t")
            texts.append(s.strip())
            labels.append(int(y))
    return texts, labels


IMDB_VALID_SHARE = 0.15


def load_imdb(data_dir: str | Path, split: str) -> Tuple[List[str], List[int]]:
    """IMDB training reviews from ``DATA_DIR/imdb/aclImdb_v1_train.tar.gz``; ``train`` or
    ``valid`` — 15 % of the training reviews held out for validation as in the Skim-RNN paper,
    chosen by a fixed hash of the file name (stable across machines)."""
    if split not in ("train", "valid"):
        raise ValueError("IMDB split is 'train' or 'valid'")
    p = Path(data_dir) / "imdb" / "aclImdb_v1_train.tar.gz"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found")
    import zlib
    texts, labels = [], []
    with tarfile.open(p) as t:
        for m in t:
            parts = m.name.split("/")
            if not m.isfile() or len(parts) < 4 or parts[2] not in ("pos", "neg"):
                continue
            valid = zlib.crc32(parts[3].encode()) % 10_000 < IMDB_VALID_SHARE * 10_000
            if valid != (split == "valid"):
                continue
            texts.append(t.extractfile(m).read().decode("utf-8"))
            labels.append(int(parts[2] == "pos"))
    return texts, labels
