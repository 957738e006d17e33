"""The tutorial's classic first network, in graphc.

2 inputs -> 2 ReLU hidden units -> 1 sigmoid output, binary cross-entropy,
plain gradient descent, on a generated separable 2-D problem. The gradients
derived by hand (the backprop a tutorial writes out) are built beside
gc.grad's, and the script checks that they agree before training.

    python examples/classic_network.py [--steps 400] [--lr 0.5] [--seed 0]
"""
import argparse

import numpy as np

import graphc as gc


def make_data(n=200, seed=0):
    """Two separable clouds: label 1 above the line x0 + x1 = 0.5, margin 0.3."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(4 * n, 2))
    margin = x[:, 0] + x[:, 1] - 0.5
    x = x[np.abs(margin) > 0.3][:n]
    y = (x[:, 0] + x[:, 1] > 0.5).astype(np.float32)
    return x.astype(np.float32), y


def build(seed=0):
    """The network, its loss, gc.grad's gradients and the hand-derived ones."""
    rng = np.random.default_rng(seed)
    x = gc.placeholder((None, 2), name="x")
    y = gc.placeholder((None,), name="y")
    w1 = gc.variable(rng.normal(0, 1, (2, 2)).astype(np.float32), name="w1")
    b1 = gc.variable(np.full(2, 0.1, np.float32), name="b1")
    w2 = gc.variable(rng.normal(0, 1, (2, 1)).astype(np.float32), name="w2")
    b2 = gc.variable(np.zeros(1, np.float32), name="b2")
    params = [w1, b1, w2, b2]

    pre = x @ w1 + b1                       # (N, 2)
    h = gc.relu(pre)
    z = gc.reshape(h @ w2 + b2, (-1,))      # (N,) logits
    p = gc.sigmoid(z)
    loss = gc.nn.binary_cross_entropy_with_logits(z, y)

    # Backprop by hand: dL/dz of mean BCE-with-logits is (p - y) / N.
    n = gc.size(z)
    dz = gc.reshape((p - y) / n, (-1, 1))   # (N, 1)
    dw2 = gc.transpose(h) @ dz
    db2 = gc.sum(dz, axis=0)
    dh = dz @ gc.transpose(w2)
    dpre = dh * (pre > 0).astype("float32")
    dw1 = gc.transpose(x) @ dpre
    db1 = gc.sum(dpre, axis=0)
    by_hand = [dw1, db1, dw2, db2]
    return x, y, params, p, loss, gc.grad(loss, params), by_hand


def main(steps=400, lr=0.5, seed=0, verbose=True):
    data, labels = make_data(seed=seed)
    x, y, params, p, loss, grads, by_hand = build(seed)

    compare = gc.compile(grads + by_hand, inputs=[x, y], device="reference")
    values = compare(data, labels)
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(values[:4], values[4:]))
    if verbose:
        print(f"gc.grad vs hand-derived gradients: max difference {gap:.2e}")

    updates = {w: w - lr * g for w, g in zip(params, grads)}
    step = gc.compile(loss, inputs=[x, y], updates=updates, device="reference")
    predict = gc.compile(p, inputs=[x], device="reference")
    for i in range(steps):
        value = step(data, labels)
        if verbose and (i % 100 == 0 or i == steps - 1):
            accuracy = float(np.mean((predict(data) > 0.5) == labels))
            print(f"step {i:4d}  loss {float(value):.4f}  accuracy {accuracy:.3f}")
    accuracy = float(np.mean((predict(data) > 0.5) == labels))
    return {"gradient_gap": gap, "loss": float(value), "accuracy": accuracy}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = main(args.steps, args.lr, args.seed)
    print(f"final: loss {result['loss']:.4f}, accuracy {result['accuracy']:.3f}")
