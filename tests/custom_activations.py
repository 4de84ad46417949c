"""Activations a user might write, for `gainkit gains package.module:callable` tests.

The tests copy this file into a temporary directory on PYTHONPATH (tests/ is not a package).
"""

import torch


def swish(x):
    return x * torch.sigmoid(x)


class ScaledTanh:
    def __init__(self, scale=1.0):
        self.scale = scale

    def __call__(self, x):
        return self.scale * torch.tanh(x)


def log(x):  # nan for x < 0
    return torch.log(x)


def step(x):  # no autograd derivative
    return (x > 0).to(x.dtype)


def centred(x):  # same shape, but every output depends on every input
    return x - x.mean()


def reduce(x):
    return x.sum()


NOT_CALLABLE = 3
