"""Data-parallel training on PyTorch's own engine: ``skimviz train ...`` runs unchanged under
``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on GPU)::

    torchrun --nproc_per_node 2 -m skimviz train adding --batch-size 64 ...

Every process draws the same global batch (the tasks' batches are seeded by run seed and step, or
shuffled by epoch seed), takes its contiguous share of it (:func:`shard`: ``--batch-size`` is the
global batch and must divide by the number of processes), and DDP averages the gradients, which
is the gradient of the global batch's mean loss: 2 processes make the same steps as 1 (up to float
rounding). So a resumable state needs no per-rank data position: every rank's position is the
step count, which the state already holds. Only rank 0 writes checkpoints, states and logs
(:func:`is_main`); decisions that end a run (a time limit, a non-finite loss, a page's stop) are
agreed by all ranks (:func:`any_rank`), so no rank waits for a peer that has left. The card
records ``world_size`` and ``per_process_batch``.
"""
from __future__ import annotations

import os
from typing import Tuple

import torch
import torch.distributed as dist
from torch import Tensor


def setup() -> None:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE`` >
    1); a no-op in a single process or when already joined."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True in a single process and on rank 0: the process that writes files and logs."""
    return rank() == 0


def shard(batch: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
    """This rank's contiguous share of a global batch (the first dimension)."""
    w = world_size()
    if w == 1:
        return batch
    n = batch[0].shape[0]
    if n % w:
        raise ValueError(f"the batch ({n}) must divide by the number of processes ({w})")
    r = rank()
    return tuple(t[r * n // w:(r + 1) * n // w] for t in batch)


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is True on any."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean(value: float) -> float:
    """The mean of a number over the ranks (e.g. the global batch's loss)."""
    if world_size() == 1:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world_size()


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model that training calls: DDP around it under torchrun, else the model itself."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a local rendezvous, or a local server)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
