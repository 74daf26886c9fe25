"""Clip classifier: a small CNN encodes each frame, a Skip RNN reads the frame features and a
linear layer classifies the last state — the paper's CNN → RNN video pipeline (Sec. 4.5) at
toy scale (the paper uses a frozen ResNet-50; this encoder is small and trained end to end).

Where skipping saves the encoder too: at batch size 1 in inference (``model.eval()``, no
autograd) the loop encodes **only the frames it uses**: after an update with Δũ_t it jumps over
the N_skip(t) frames of Eq. 6 without encoding them, so a skipped frame costs neither the CNN nor
the RNN. In training and in batched inference every frame is encoded (one batched CNN call; the
RNN still skips per row), and the FLOP trace says so: there, every step carries the encoder's
FLOPs; at batch 1 only the used steps do.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from skimviz import cost
from skimviz.models.skip_rnn import SkipRNN, SkipTrace


def conv_flops(c_in: int, c_out: int, k: int, out_hw: int) -> int:
    """Multiply-adds ×2 of a k×k convolution (plus bias and ReLU) over out_hw output pixels."""
    return out_hw * c_out * (2 * c_in * k * k + 2)


class FrameEncoder(nn.Module):
    """28×28 frame → ``feature_size`` features: two 3×3 stride-2 convolutions (8 and 16
    channels, 14×14 then 7×7) and a linear layer."""

    def __init__(self, feature_size: int = 64, side: int = 28):
        super().__init__()
        self.side = side
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        s1 = (side + 1) // 2
        s2 = (s1 + 1) // 2
        self._hw = (s1 * s1, s2 * s2)
        self.fc = nn.Linear(16 * s2 * s2, feature_size)
        self.feature_size = feature_size

    def flops(self) -> int:
        return (conv_flops(1, 8, 3, self._hw[0]) + conv_flops(8, 16, 3, self._hw[1])
                + cost.linear_flops(self.fc.in_features, self.fc.out_features) + self.feature_size)

    def forward(self, frames: Tensor) -> Tensor:
        """(N, H, W) → (N, F)."""
        h = self.conv(frames.unsqueeze(1))
        return torch.relu(self.fc(h.flatten(1)))


class ClipClassifier(nn.Module):
    """(B, T, H, W) frames → logits (B, C). ``forward(x, return_trace=False)`` returns logits,
    or (logits, trace) with a :class:`SkipTrace` whose FLOPs include the encoder where it ran."""

    def __init__(self, hidden_size: int = 110, num_classes: int = 10, cell: str = "gru",
                 feature_size: int = 64, side: int = 28, skip: bool = True):
        super().__init__()
        self.config = dict(hidden_size=hidden_size, num_classes=num_classes, cell=cell,
                           feature_size=feature_size, side=side, skip=skip)
        self.skip = skip
        self.encoder = FrameEncoder(feature_size, side)
        if skip:
            self.rnn = SkipRNN(feature_size, hidden_size, cell=cell)
        else:
            self.rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](feature_size, hidden_size,
                                                                batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    # FLOPs ----------------------------------------------------------------------------------
    def step_flops(self) -> int:
        """FLOPs of one used frame: encoder + RNN step (+ gate)."""
        rnn = (self.rnn.flops_per_update() if self.skip else
               cost.cell_flops(self.config["cell"], self.encoder.feature_size,
                               self.config["hidden_size"]))
        return self.encoder.flops() + rnn

    def dense_flops(self, seq_len: int) -> int:
        """Every frame encoded and read by the plain RNN, head included."""
        c = self.config
        step = self.encoder.flops() + cost.cell_flops(c["cell"], c["feature_size"], c["hidden_size"])
        return seq_len * step + cost.linear_flops(c["hidden_size"], c["num_classes"])

    def set_threshold(self, theta: float) -> None:
        if self.skip:
            self.rnn.update_threshold = theta

    # forward ---------------------------------------------------------------------------------
    def _head_flops(self) -> int:
        return cost.linear_flops(self.head.in_features, self.head.out_features)

    def forward(self, x: Tensor, return_trace: bool = False):
        if x.dim() != 4:
            raise ValueError(f"frames must be (B, T, H, W), got shape {tuple(x.shape)}")
        B, T = x.shape[:2]
        lazy = (self.skip and B == 1 and not self.training and not torch.is_grad_enabled())
        if lazy:
            last, trace = self._forward_lazy(x)
        else:
            feats = self.encoder(x.flatten(0, 1)).view(B, T, -1)
            if self.skip:
                out, _, trace = self.rnn(feats, return_trace=True)
                trace.flops = trace.flops + self.encoder.flops()  # every frame was encoded
            else:
                out, _ = self.rnn(feats)
                ones = x.new_ones(B, T)
                trace = SkipTrace(ones, ones, ones * self.step_flops())
            last = out[:, -1]
        logits = self.head(last)
        if return_trace:
            trace.flops[:, -1] += self._head_flops()
            return logits, trace
        return logits

    def _forward_lazy(self, x: Tensor):
        """Batch 1, inference: the Eq. 6 jump loop of :class:`SkipRNN`, encoding a frame only
        when the state is updated with it (same float32 decisions as the batched path)."""
        rnn = self.rnn
        T = x.shape[1]
        state = rnn._initial_state(None, 1, x)
        theta, one = np.float32(rnn.update_threshold), np.float32(1.0)
        probs = np.zeros(T, dtype=np.float32)
        update = x.new_zeros(1, T)
        t, u_tilde = 0, one
        while t < T:
            probs[t] = u_tilde
            feat = self.encoder(x[:, t])                     # only used frames are encoded
            state = rnn._step(feat, state)
            delta = np.float32(rnn._delta(state).item())
            update[0, t] = 1.0
            u_tilde = delta
            t += 1
            while t < T and not (rnn.force_update or u_tilde >= theta):
                probs[t] = u_tilde
                u_tilde = np.float32(u_tilde + min(delta, one - u_tilde))
                t += 1
        f = update * self.step_flops() + (1 - update) * cost.SKIP_STEP_FLOPS
        trace = SkipTrace(torch.from_numpy(probs).to(x.dtype).unsqueeze(0), update, f)
        return state[-1][0], trace
