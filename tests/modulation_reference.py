"""A plain per-layer reference of the hypergradient modulator, the readable spec.

One Python loop over layers, float64 arithmetic, ``torch.dot`` for the
feedback. Tests run the multi-tensor modulator against it step by step.
"""

import math

import torch


def _flat(tensors):
    return torch.cat([t.reshape(-1).double() for t in tensors])


class ReferenceHypergradient:
    """Apply-"update" hypergradient modulation of ``optimizer`` over ``layers`` (lists of parameters).

    ``feedback`` and ``normalise`` take the policy's options, spelt out per layer
    (every layer has a gradient at every step here).
    """

    def __init__(
        self, layers, optimizer, beta=0.02, min_gain=0.1, max_gain=10.0, decay=0.0,
        feedback="centred", smoothing=0.9, normalise="free", max_ratio=4.0,
    ):
        self.layers = layers
        self.optimizer = optimizer
        self.beta, self.decay = beta, decay
        self.log_min, self.log_max = math.log(min_gain), math.log(max_gain)
        self.feedback, self.smoothing = feedback, smoothing
        self.normalise, self.half_log_ratio = normalise, 0.5 * math.log(max_ratio)
        self.log_gain = [0.0] * len(layers)
        self.feedback_mean = [0.0] * len(layers)
        self.previous_update = [None] * len(layers)

    def gains(self):
        return [math.exp(a) for a in self.log_gain]

    def _cosines(self):
        cosines = []
        for i, params in enumerate(self.layers):
            grad = _flat([p.grad for p in params])
            previous = self.previous_update[i]
            cosine = 0.0
            if previous is not None and grad.norm() > 0 and previous.norm() > 0:
                cosine = float(torch.dot(grad, previous) / (grad.norm() * previous.norm()))
            cosines.append(cosine)
        return cosines

    def _drives(self, cosines):
        if self.feedback == "raw":
            return cosines
        if self.feedback == "centred":
            mean = sum(cosines) / len(cosines)
            return [h - mean for h in cosines]
        previous = list(self.feedback_mean)
        self.feedback_mean = [self.smoothing * m + (1 - self.smoothing) * h for m, h in zip(previous, cosines)]
        if self.feedback == "ema":
            return list(self.feedback_mean)
        return [h - m for h, m in zip(cosines, previous)]  # "relative"

    def _normalise(self):
        centre = sum(self.log_gain) / len(self.log_gain)
        for i, a in enumerate(self.log_gain):
            if self.normalise == "geomean":
                a = a - centre
            elif self.normalise == "ratio":
                a = min(max(a, centre - self.half_log_ratio), centre + self.half_log_ratio)
            self.log_gain[i] = min(max(a, self.log_min), self.log_max)

    def step(self):
        for i, drive in enumerate(self._drives(self._cosines())):
            value = (1.0 - self.decay) * self.log_gain[i] - self.beta * drive
            self.log_gain[i] = min(max(value, self.log_min), self.log_max)
        self._normalise()

        before = [[p.detach().clone() for p in params] for params in self.layers]
        self.optimizer.step()
        with torch.no_grad():
            for i, params in enumerate(self.layers):
                gain = math.exp(self.log_gain[i])
                for p, old in zip(params, before[i]):
                    p.copy_(old + gain * (p - old))
                self.previous_update[i] = _flat([p - old for p, old in zip(params, before[i])])
