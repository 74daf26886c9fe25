"""Cost counting: analytic FLOPs per step and a latency timer.

FLOP convention (the same as ``torch.utils.flop_counter``): a multiply-add is 2 FLOPs, so a
(B×K)·(K×N) matmul costs 2·B·K·N. Element-wise work (bias adds, gate non-linearities, the
Hadamard products of the gates) is counted as 1 FLOP per element per operation and reported
separately, because FlopCounterMode ignores it. The analytic counts are the source of truth:
FlopCounterMode reports 0 for ``nn.LSTM`` on its oneDNN path.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterator, Optional

import torch

# Eq. 5 of Skip RNN on a skipped step: ũ + min(Δũ, 1 − ũ) is one subtraction, one min, one add.
SKIP_STEP_FLOPS = 3


def linear_flops(in_features: int, out_features: int, bias: bool = True) -> int:
    """y = W x + b for one vector: 2·in·out for the product, out for the bias."""
    return 2 * in_features * out_features + (out_features if bias else 0)


def gru_cell_matmul_flops(input_size: int, hidden_size: int) -> int:
    """Matmul part of one GRU step: W_ih x (3H×I) and W_hh h (3H×H)."""
    return 2 * 3 * hidden_size * (input_size + hidden_size)


def gru_cell_flops(input_size: int, hidden_size: int) -> int:
    """One ``nn.GRUCell`` step for one sequence.

    r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
    Element-wise: 2·3H bias adds, 2H adds (r, z pre-activations), 2H σ, H ⊙ and H add (n),
    H tanh, and 4H for the blend (sub, 2 mul, add) = 16H.
    """
    H = hidden_size
    return gru_cell_matmul_flops(input_size, hidden_size) + 16 * H


def lstm_cell_matmul_flops(input_size: int, hidden_size: int) -> int:
    """Matmul part of one LSTM step: W_ih x (4H×I) and W_hh h (4H×H)."""
    return 2 * 4 * hidden_size * (input_size + hidden_size)


def lstm_cell_flops(input_size: int, hidden_size: int) -> int:
    """One ``nn.LSTMCell`` step for one sequence.

    [i f g o] = W_ih x + b_ih + W_hh h + b_hh; c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g); h' = σ(o) ⊙ tanh(c').
    Element-wise: 2·4H bias adds + 4H sum, 3H σ + H tanh, 3H (c'), 2H (h') = 21H.
    """
    H = hidden_size
    return lstm_cell_matmul_flops(input_size, hidden_size) + 21 * H


def sru_cell_matmul_flops(input_size: int, hidden_size: int) -> int:
    """Matmul part of one SRU step: [W; W_f; W_r] x (3H×I), plus W_h x when I ≠ H (4H×I)."""
    k = 3 if input_size == hidden_size else 4
    return 2 * k * hidden_size * input_size


def sru_cell_flops(input_size: int, hidden_size: int) -> int:
    """One SRU step (Lei et al. 2017, Eq. 3–7) for one sequence, without the peephole.

    Element-wise: 2H bias adds, 2H σ (f, r), 4H for c' = f ⊙ c + (1 − f) ⊙ x̃, H tanh and 4H for
    h' = r ⊙ g(c') + (1 − r) ⊙ x = 13H. No H×H product: that is what makes SRU cheap.
    """
    return sru_cell_matmul_flops(input_size, hidden_size) + 13 * hidden_size


def skip_gate_flops(state_size: int) -> int:
    """Skip RNN gate on an updating step: Δũ = σ(W_p s + b_p) (Eq. 4) plus the reset ũ = Δũ."""
    return linear_flops(state_size, 1) + 1


def cell_flops(cell: str, input_size: int, hidden_size: int) -> int:
    table = {"gru": gru_cell_flops, "lstm": lstm_cell_flops, "sru": sru_cell_flops}
    if cell not in table:
        raise ValueError(f"unknown cell {cell!r}")
    return table[cell](input_size, hidden_size)


def measured_matmul_flops(fn: Callable[[], object]) -> int:
    """FLOPs that ``torch.utils.flop_counter.FlopCounterMode`` sees while running ``fn``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# ---------------------------------------------------------------------------------------------
@dataclass
class Latency:
    """Wall-clock statistics of repeated runs, in milliseconds."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    device: str

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


def measure_latency(fn: Callable[[], object], *, device: str | torch.device = "cpu",
                    warmup: int = 3, repeats: int = 10, max_seconds: float = 5.0) -> Latency:
    """Median wall-clock time of ``fn()`` after ``warmup`` calls.

    On CUDA each run is timed with CUDA events (the GPU's own clock, after a synchronize); on the
    CPU with ``time.perf_counter``. Stops early (with at least 3 repeats) once ``max_seconds`` of
    timed runs have passed, so a slow model cannot hang a page.
    """
    device = torch.device(device)
    if warmup < 0 or repeats < 1:
        raise ValueError("warmup must be >= 0 and repeats >= 1")
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        spent = 0.0
        for i in range(repeats):
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                torch.cuda.synchronize(device)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize(device)
                ms = start.elapsed_time(end)
            else:
                t0 = time.perf_counter()
                fn()
                ms = (time.perf_counter() - t0) * 1e3
            times.append(ms)
            spent += ms / 1e3
            if spent > max_seconds and i >= 2:
                break
    qs = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return Latency(statistics.median(times), qs[0], qs[-1], len(times), str(device))


def _glibc():
    """glibc through ctypes, or None where the process does not use it."""
    import ctypes
    import ctypes.util
    import platform
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def return_freed_memory() -> bool:
    """The opposite of :func:`retain_freed_memory`, for a long-lived server: blocks over 128 KiB
    (a model's weights, a tensor of activations) each get their own pages, given back to the
    system when freed, and glibc no longer raises that limit after such a free (its default
    "dynamic" threshold grows to the largest block freed, up to 32 MiB, after which a closed
    session's model copies stay in the heap). Threads created afterwards share two malloc
    arenas (glibc's default is up to eight per core: every one of a server's many script threads
    would fragment its own heap). Returns False where it does not apply (not glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 128 << 10)
                and libc.mallopt(M_TRIM_THRESHOLD, 128 << 10)
                and libc.mallopt(M_ARENA_MAX, 2))


def trim_memory() -> bool:
    """Give free heap memory back to the system now (glibc's ``malloc_trim``: every arena, free
    pages inside the heap too). True if some was given back."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


def retain_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the system
    (``mallopt``: blocks up to 32 MiB, the most glibc allows, from the heap rather than fresh
    ``mmap`` pages; the heap not trimmed below 1 GiB). By default every tensor over 128 KiB can
    come from fresh pages, so a run pays a page fault per 4 KiB it writes — on a batch of 32 the
    8 MiB FFN activations of every layer, which made run-to-run timings of the same command
    differ by 40 %. PyTorch's CPU performance guide advises a caching allocator (jemalloc,
    tcmalloc) for the same reason. For the whole process; returns False where it does not apply
    (not glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def interleaved_ms(fns: "list[Callable[[], object]]", *, rounds: int = 15,
                   max_seconds: float = 5.0, block: int = 1) -> "list[float]":
    """Median ms of each ``fns[i]()`` timed one call each in turn, round after round (at least 3
    rounds, then until ``rounds`` or ``max_seconds``), after one warm-up call each. On a machine
    shared with other work a burst of load slows every function alike, so ratios between them
    stay meaningful where functions timed one after the other would each see a different load.
    Each call then finds the caches as the *other* functions left them. ``block`` > 1 runs each
    function ``block`` times in a row per round and times all but the first of them: the warm
    steady state of one model answering requests back to back. CPU only (perf_counter)."""
    with torch.inference_mode():
        for fn in fns:
            fn()
        times: list = [[] for _ in fns]
        t0 = time.perf_counter()
        for r in range(max(3, rounds)):
            for i, fn in enumerate(fns):
                for k in range(block):
                    a = time.perf_counter()
                    fn()
                    if k or block == 1:
                        times[i].append((time.perf_counter() - a) * 1e3)
            if r >= 2 and time.perf_counter() - t0 > max_seconds:
                break
    return [statistics.median(t) for t in times]


def available_devices() -> list[str]:
    """"cpu", plus "cuda" when a GPU is visible."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def describe_device(device: str = "cpu") -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    import platform
    n = torch.get_num_threads()
    return f"CPU: {platform.processor() or platform.machine()}, {n} thread{'s' if n != 1 else ''}"


@contextlib.contextmanager
def threads(n: Optional[int]) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` and restore the old value afterwards
    (``None``: leave it as it is)."""
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
