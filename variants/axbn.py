"""AXBN: XBN with the batch statistics replaced by Kalman-filtered estimates (paper eqs. 15-23).

One scalar Kalman filter per dimension for the mean and one for the standard deviation, with a
static state model (eq. 18), process noise q (eq. 19), measurement noise r / |B| (section 3.2.1)
and the gain refreshed every ``gain_interval`` adapting steps (held in between). Because P_0, q
and r are shared by all dimensions and by both statistics, P and K are scalars.

Choices where the paper is silent, written down here and in README:
- the state starts at the first observation (u_0 = v_1), so no estimate is pulled toward zero;
- eq. 22 is applied to the predicted variance: P_k = (1 - K_k) (P_{k-1} + q), the standard form;
- the filter advances only on adapting steps (not during a delay);
- the standard deviation itself is filtered (eq. 23 multiplies by sigma-hat).
With r = 0 the gain is 1 and AXBN is XBN step for step. With the paper's q = 1, r = 0.01 and
|B| = 64 the gain is about 0.9998: AXBN is numerically almost XBN.
"""

import torch

from .options import Option
from .registry import register
from .stats import kalman_gain, kalman_update, moments
from .xbn import XBN


@register("axbn")
class AXBN(XBN):
    TITLE = "AXBN"
    COLOUR = "#009e73"
    MARKER = "v"
    PROTOCOL_OPTIONS = frozenset({"gain_interval"})
    OPTIONS = {
        **XBN.OPTIONS,  # std_correction: of the observed batch std and of the memory's
        "p0": Option(float, 1.0, ge=0.0, why="the initial estimate's variance"),
        "q": Option(float, 1.0, ge=0.0, why="the process noise's variance (eq. 19)"),
        "r": Option(float, 0.01, ge=0.0, why="the measurement noise's variance: 0 is XBN"),
        "gain_interval": Option(int, 100, ge=1, why="adapting steps between gain refreshes"),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.gain_interval < 1:
            raise ValueError(f"gain_interval must be >= 1, got {self.gain_interval}")
        if min(self.p0, self.q, self.r) < 0:
            raise ValueError(f"p0, q and r must be >= 0, got {self.p0}, {self.q}, {self.r}")
        self.register_buffer("kalman_mean", torch.zeros(self.embedding_size))
        self.register_buffer("kalman_std", torch.zeros(self.embedding_size))
        self.kalman_p = float(self.p0)
        self.kalman_gain = 1.0
        self.kalman_steps = 0

    def variant_state(self):
        return {
            "kalman_p": self.kalman_p,
            "kalman_gain": self.kalman_gain,
            "kalman_steps": self.kalman_steps,
        }

    def load_variant_state(self, state):
        self.kalman_p = state["kalman_p"]
        self.kalman_gain = state["kalman_gain"]
        self.kalman_steps = state["kalman_steps"]

    def batch_statistics(self, batch):
        v_mean, v_std = moments(batch, correction=self.std_correction)
        if self.kalman_steps == 0:
            self.kalman_mean = v_mean.clone()
            self.kalman_std = v_std.clone()
        p_pred = self.kalman_p + self.q  # eq. 19
        if self.kalman_steps % self.gain_interval == 0:
            self.kalman_gain = kalman_gain(p_pred, self.r, len(batch))  # eq. 20
        self.kalman_mean = kalman_update(self.kalman_mean, v_mean, self.kalman_gain)  # eq. 21
        self.kalman_std = kalman_update(self.kalman_std, v_std, self.kalman_gain)
        self.kalman_p = (1.0 - self.kalman_gain) * p_pred  # eq. 22
        self.kalman_steps += 1
        return self.kalman_mean, self.kalman_std
