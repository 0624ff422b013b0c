"""Shared fixtures: every test is seeded through ``seed``."""

import random

import numpy as np
import pytest
import torch

SEED = 1234


@pytest.fixture(autouse=True)
def seed():
    """Seed Python, NumPy and torch before each test and return the seed."""
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    return SEED
