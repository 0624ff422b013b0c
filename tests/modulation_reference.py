"""A plain per-layer reference of the hypergradient modulator, the readable spec.

One Python loop over layers, float64 arithmetic, ``torch.dot`` for the
feedback. Tests run the multi-tensor modulator against it step by step.
"""

import math

import torch


def _flat(tensors):
    return torch.cat([t.reshape(-1).double() for t in tensors])


class ReferenceHypergradient:
    """Apply-"update" hypergradient modulation of ``optimizer`` over ``layers`` (lists of parameters)."""

    def __init__(self, layers, optimizer, beta=0.02, min_gain=0.1, max_gain=10.0, decay=0.0):
        self.layers = layers
        self.optimizer = optimizer
        self.beta, self.decay = beta, decay
        self.log_min, self.log_max = math.log(min_gain), math.log(max_gain)
        self.log_gain = [0.0] * len(layers)
        self.previous_update = [None] * len(layers)

    def gains(self):
        return [math.exp(a) for a in self.log_gain]

    def step(self):
        for i, params in enumerate(self.layers):
            grad = _flat([p.grad for p in params])
            previous = self.previous_update[i]
            feedback = 0.0
            if previous is not None and grad.norm() > 0 and previous.norm() > 0:
                feedback = float(torch.dot(grad, previous) / (grad.norm() * previous.norm()))
            value = (1.0 - self.decay) * self.log_gain[i] - self.beta * feedback
            self.log_gain[i] = min(max(value, self.log_min), self.log_max)

        before = [[p.detach().clone() for p in params] for params in self.layers]
        self.optimizer.step()
        with torch.no_grad():
            for i, params in enumerate(self.layers):
                gain = math.exp(self.log_gain[i])
                for p, old in zip(params, before[i]):
                    p.copy_(old + gain * (p - old))
                self.previous_update[i] = _flat([p - old for p, old in zip(params, before[i])])
