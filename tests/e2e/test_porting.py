"""The porting check: the tutorial's SimpleCNN trains in graphc as it does by hand.

The same model, from the same initial weights, written twice: once with
graphc (examples/mnist_binary_cnn.py's SimpleCNN, float32, compiled for the
CPU), once in NumPy float64 with every forward and backward written out
(conv, ReLU, linear, sigmoid, binary cross-entropy) and PyTorch's SGD with
momentum. Three steps on the same batches: the losses agree to 1e-5 relative.
"""
import os
import sys

import numpy as np
import pytest

import graphc as gc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples"))
from mnist_binary_cnn import SimpleCNN  # noqa: E402

LR, MOMENTUM, BATCH, STEPS = 0.01, 0.9, 8, 3


# -- the model by hand, in NumPy float64 --------------------------------------------------

def patches(x, k=3):
    """im2col: (N, C, H, W) -> (N, H-k+1, W-k+1, C*k*k), in the weight's (c, i, j) order."""
    n, c, h, w = x.shape
    cols = np.empty((n, h - k + 1, w - k + 1, c, k, k))
    for i in range(k):
        for j in range(k):
            cols[:, :, :, :, i, j] = x[:, :, i:i + h - k + 1, j:j + w - k + 1].transpose(0, 2, 3, 1)
    return cols.reshape(n, h - k + 1, w - k + 1, c * k * k)


def forward(p, x, y):
    """The loss and what the backward pass reads."""
    cols = patches(x)                                                   # (N, 26, 26, 9)
    z1 = (cols @ p["conv1.weight"].reshape(32, -1).T).transpose(0, 3, 1, 2) \
        + p["conv1.bias"][None, :, None, None]                          # (N, 32, 26, 26)
    a1 = np.maximum(z1, 0)
    flat = a1.reshape(len(x), -1)
    h = flat @ p["fc1.weight"].T + p["fc1.bias"]
    z = (h @ p["fc2.weight"].T + p["fc2.bias"])[:, 0]
    prob = 1 / (1 + np.exp(-z))
    loss = -np.mean(y * np.log(prob) + (1 - y) * np.log(1 - prob))
    return loss, (cols, z1, flat, h, prob)


def backward(p, x, y, saved):
    """Gradients of the mean BCE loss, layer by layer, as the chain rule writes them."""
    cols, z1, flat, h, prob = saved
    n = len(x)
    d_prob = (prob - y) / (prob * (1 - prob)) / n                       # BCE
    d_z = (d_prob * prob * (1 - prob))[:, None]                        # sigmoid
    g = {"fc2.weight": d_z.T @ h, "fc2.bias": d_z.sum(0)}
    d_h = d_z @ p["fc2.weight"]
    g["fc1.weight"], g["fc1.bias"] = d_h.T @ flat, d_h.sum(0)
    d_flat = d_h @ p["fc1.weight"]
    d_z1 = d_flat.reshape(z1.shape) * (z1 > 0)                          # ReLU
    d_out = d_z1.transpose(0, 2, 3, 1).reshape(-1, 32)                 # (N*26*26, 32)
    g["conv1.weight"] = (d_out.T @ cols.reshape(-1, 9)).reshape(p["conv1.weight"].shape)
    g["conv1.bias"] = d_out.sum(0)
    return g


def train_by_hand(weights, batches):
    """Losses of STEPS SGD-momentum steps, the loss after the last step, the weights."""
    p = {name: w.astype(np.float64) for name, w in weights.items()}
    buffers = {name: np.zeros_like(w) for name, w in p.items()}
    losses = []
    for x, y in batches:
        loss, saved = forward(p, x, y)
        for name, grad in backward(p, x, y, saved).items():
            buffers[name] = MOMENTUM * buffers[name] + grad     # torch.optim.SGD's buffer
            p[name] = p[name] - LR * buffers[name]
        losses.append(loss)
    losses.append(forward(p, *batches[-1])[0])
    return np.array(losses), p


# -- the same in graphc ------------------------------------------------------------------

def train_with_graphc(model, batches, device="cpu"):
    x = gc.placeholder((None, 1, 28, 28), name="x")
    y = gc.placeholder((None,), name="y")
    loss = gc.nn.binary_cross_entropy(model(x).reshape(-1), y)
    optimizer = gc.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    step = gc.compile([loss], inputs=[x, y], updates=optimizer.minimize(loss), device=device)
    evaluate = gc.compile([loss], inputs=[x, y], device=device)
    losses = [float(step(xb.astype(np.float32), yb.astype(np.float32))[0])
              for xb, yb in batches]
    xb, yb = batches[-1]
    losses.append(float(evaluate(xb.astype(np.float32), yb.astype(np.float32))[0]))
    return np.array(losses), model.state_dict()


def make_batches(seed=0):
    """STEPS batches of images in [0, 1] with balanced 0/1 labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(BATCH) % 2
    return [(rng.random((BATCH, 1, 28, 28)), rng.permutation(labels).astype(float))
            for _ in range(STEPS)]


def test_hand_written_backward_matches_finite_differences():
    """The NumPy reference itself is right: a few gradient entries by central differences."""
    gc.manual_seed(1)
    weights = {name: w.astype(np.float64) for name, w in SimpleCNN().state_dict().items()}
    x, y = make_batches(1)[0]
    grads = backward(weights, x, y, forward(weights, x, y)[1])
    rng, eps = np.random.default_rng(2), 1e-6
    for name in weights:
        for _ in range(3):
            index = tuple(rng.integers(0, s) for s in weights[name].shape)
            saved = weights[name][index]
            weights[name][index] = saved + eps
            up = forward(weights, x, y)[0]
            weights[name][index] = saved - eps
            down = forward(weights, x, y)[0]
            weights[name][index] = saved
            assert grads[name][index] == pytest.approx((up - down) / (2 * eps),
                                                       rel=1e-4, abs=1e-9), (name, index)


def test_simple_cnn_losses_match_numpy_float64_over_three_sgd_momentum_steps():
    gc.manual_seed(0)
    model = SimpleCNN()
    batches = make_batches()
    initial = model.state_dict()
    by_hand, hand_weights = train_by_hand(initial, batches)
    graphc_losses, graphc_weights = train_with_graphc(model, batches)
    assert by_hand[-1] < by_hand[0] - 0.01      # the steps do train
    np.testing.assert_allclose(graphc_losses, by_hand, rtol=1e-5, atol=0)
    for name, weight in hand_weights.items():   # and every layer moved the same way
        moved = weight - initial[name]
        np.testing.assert_allclose(graphc_weights[name] - initial[name], moved, rtol=0,
                                   atol=1e-3 * np.abs(moved).max(), err_msg=name)
