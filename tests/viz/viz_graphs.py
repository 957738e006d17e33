"""Graphs the viz tests draw: small ones, W1's training step, and a big RNN."""
import numpy as np

import graphc as gc


def small_training_step(batch=4):
    """x @ w + b -> relu -> mean, its gradients and an SGD update, in scopes."""
    rng = np.random.default_rng(0)
    x = gc.placeholder((batch, 3), name="x")
    with gc.name_scope("layer"):
        w = gc.variable(rng.standard_normal((3, 2)).astype(np.float32), name="w")
        b = gc.variable(np.zeros(2, np.float32), name="b")
        h = gc.relu(x @ w + b)
    loss = gc.mean(h * h)
    gw, gb = gc.grad(loss, [w, b])
    updates = {w: w - 0.1 * gw, b: b - 0.1 * gb}
    return x, loss, [w, b], updates


def unrolled_rnn(steps, hidden=16, embed=8, vocab=50, batch=4, seed=0):
    """An Elman RNN unrolled over `steps`, each step in scope rnn/step<t>, a head,
    gradients and an SGD update (scope sgd). Returns (loss, params, updates, placeholders)."""
    rng = np.random.default_rng(seed)
    ids = gc.placeholder((batch, steps), "int64", name="ids")
    labels = gc.placeholder((batch,), name="labels")
    with gc.name_scope("rnn"):
        table = gc.variable(rng.standard_normal((vocab, embed)).astype(np.float32), name="table")
        w_ih = gc.variable(rng.normal(0, 0.1, (embed, hidden)).astype(np.float32), name="w_ih")
        w_hh = gc.variable(rng.normal(0, 0.1, (hidden, hidden)).astype(np.float32), name="w_hh")
        b_h = gc.variable(np.zeros(hidden, np.float32), name="b_h")
        x = gc.nn.embedding(ids, table)
        h = gc.zeros((1, hidden))
        for t in range(steps):
            with gc.name_scope(f"step{t}"):
                h = gc.tanh(x[:, t] @ w_ih + h @ w_hh + b_h)
    with gc.name_scope("head"):
        w_out = gc.variable(rng.normal(0, 0.1, (hidden, 1)).astype(np.float32), name="w_out")
        logits = gc.reshape(h @ w_out, (-1,))
        loss = gc.nn.binary_cross_entropy_with_logits(logits, labels)
    params = [table, w_ih, w_hh, b_h, w_out]
    grads = gc.grad(loss, params)
    with gc.name_scope("sgd"):
        updates = {p: p - 0.01 * g for p, g in zip(params, grads)}
    return loss, params, updates, [ids, labels]


def small_cnn(batch=2):
    """conv 1->4 3x3, ReLU, max pool 2, linear 36->3, cross-entropy, SGD; on cpu."""
    rng = np.random.default_rng(0)
    x = gc.placeholder((batch, 1, 8, 8), name="x")
    y = gc.placeholder((batch,), "int64", name="y")
    with gc.name_scope("conv"):
        w1 = gc.variable(rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32), name="w")
        b1 = gc.variable(np.zeros(4, np.float32), name="b")
        h = gc.nn.max_pool2d(gc.relu(gc.nn.conv2d(x, w1, b1)), 2)
    with gc.name_scope("fc"):
        w2 = gc.variable(rng.normal(0, 0.3, (36, 3)).astype(np.float32), name="w")
        logits = gc.reshape(h, (-1, 36)) @ w2
    loss = gc.nn.cross_entropy(logits, y)
    params = [w1, b1, w2]
    grads = gc.grad(loss, params)
    step = gc.compile(loss, inputs=[x, y], device="cpu",
                      updates={p: p - 0.1 * g for p, g in zip(params, grads)})
    feeds = [rng.standard_normal((batch, 1, 8, 8)).astype(np.float32), np.array([0, 2])]
    return step, feeds
