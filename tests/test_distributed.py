"""Data-parallel training under torchrun (``skimviz.training.distributed``): 2 CPU processes
(gloo) for 50 steps give the same weights as 1 process with the same global batch and seed; only
rank 0 writes; the card records the world size and the per-process batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from skimviz.training import distributed

REPO_ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--name", "ddp", "--hidden", "16", "--length", "50", "--steps", "50", "--eval-every",
        "50", "--batch-size", "32", "--lam", "1e-4", "--threads", "1", "--seed", "3"]


def _train(tmp: Path, nproc: int) -> Path:
    out, work = tmp / f"out{nproc}", tmp / f"work{nproc}"
    launch = ([sys.executable, "-m", "skimviz"] if nproc == 1 else
              [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(distributed.free_port()), "-m", "skimviz"])
    env = dict(os.environ, OMP_NUM_THREADS="1", SKIMVIZ_EXT_AUTOBUILD="0")
    res = subprocess.run(launch + ["train", "adding", *ARGS, "--out", str(out), "--work",
                                   str(work)], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return out / "ddp"


@pytest.mark.timeout(300)
def test_two_processes_train_as_one(tmp_path):
    one, two = _train(tmp_path, 1), _train(tmp_path, 2)
    a, b = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-4, rtol=0, msg=k)
    card1 = json.loads((one / "card.json").read_text())["training"]
    card2 = json.loads((two / "card.json").read_text())["training"]
    assert "world_size" not in card1
    assert card2["world_size"] == 2 and card2["per_process_batch"] == 16
    assert card2["batch_size"] == card1["batch_size"] == 32
    # one state, written by rank 0
    assert sorted(p.name for p in (tmp_path / "work2" / "ddp").iterdir()) == ["state.pt"]


def test_a_single_process_is_its_own_world():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    batch = (torch.arange(6), torch.arange(6))
    assert distributed.shard(batch) is batch
    assert distributed.any_rank(True) and not distributed.any_rank(False)
    assert distributed.mean(2.5) == 2.5
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model
