import pytest
import torch

from gradmod.modulation.signals import feedback_cosine, layer_norms, per_tensor

COSINE_TOLERANCE = {torch.float64: 1e-12, torch.float32: 2e-6}


def random_layers(dtype, scales=(1.0, 1e-3)):
    # Two layers: tensors 0-1 form layer 0, tensors 2-4 form layer 1.
    shapes = [(4, 3), (4,), (5, 5), (5,), (2, 5)]
    index = torch.tensor([0, 0, 1, 1, 1])
    a = [torch.randn(s, dtype=dtype) for s in shapes]
    b = [torch.randn(s, dtype=dtype) * scales[i % 2] for i, s in enumerate(shapes)]
    return a, b, index


def plain_cosine(a, b, index, layer):
    flat_a = torch.cat([t.reshape(-1) for t, i in zip(a, index) if i == layer]).double()
    flat_b = torch.cat([t.reshape(-1) for t, i in zip(b, index) if i == layer]).double()
    return float(torch.dot(flat_a, flat_b) / (flat_a.norm() * flat_b.norm()))


def test_layer_norms_match_concatenation():
    a, _, index = random_layers(torch.float64)

    norms = layer_norms(a, index, 2, torch.float64)

    expected = [torch.cat([a[0].reshape(-1), a[1]]).norm(), torch.cat([t.reshape(-1) for t in a[2:]]).norm()]
    assert torch.allclose(norms, torch.stack(expected), rtol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_feedback_cosine_matches_plain(dtype):
    grads, previous, index = random_layers(dtype)
    expected = [plain_cosine(grads, previous, index, layer) for layer in (0, 1)]
    grad_norm = layer_norms(grads, index, 2, dtype)
    previous_norm = layer_norms(previous, index, 2, dtype)

    cosine = feedback_cosine(grads, [p.clone() for p in previous], grad_norm, previous_norm, index)

    assert cosine.tolist() == pytest.approx(expected, abs=COSINE_TOLERANCE[dtype])


def test_feedback_cosine_parallel_and_opposite():
    grads, _, index = random_layers(torch.float64)
    previous = [-3.0 * g if i < 2 else 1e-4 * g for i, g in enumerate(grads)]
    grad_norm = layer_norms(grads, index, 2, torch.float64)
    previous_norm = layer_norms(previous, index, 2, torch.float64)

    cosine = feedback_cosine(grads, previous, grad_norm, previous_norm, index)

    assert cosine.tolist() == pytest.approx([-1.0, 1.0], abs=1e-12)


def test_feedback_cosine_zero_norms_give_zero():
    grads, previous, index = random_layers(torch.float32)
    for t in grads[:2]:
        t.zero_()
    for t in previous[2:]:
        t.zero_()
    grad_norm = layer_norms(grads, index, 2, torch.float32)
    previous_norm = layer_norms(previous, index, 2, torch.float32)

    cosine = feedback_cosine(grads, previous, grad_norm, previous_norm, index)

    assert cosine.tolist() == [0.0, 0.0]


def test_per_tensor_spreads_layer_values():
    _, _, index = random_layers(torch.float32)
    like = [torch.zeros(1)] * 5

    values = per_tensor(torch.tensor([2.0, 5.0]), index, like)

    assert [float(v) for v in values] == [2.0, 2.0, 5.0, 5.0, 5.0]
