"""The workloads W1-W5 of BENCHMARKS.md as graphc graphs.

A "step" is forward + loss + backward + SGD with momentum 0.9 and lr 0.01
(PyTorch semantics: v <- 0.9 v + g; p <- p - 0.01 v), the same batch every
step. Each builder returns a `Workload`: placeholders, feeds (seeded random
data of the right shape), the loss, the parameters and the updates, built in
the current default graph. Tests import these to assert kernel counts.
"""
import numpy as np

import graphc as gc


class Workload:
    def __init__(self, name, inputs, feeds, outputs, params, updates):
        self.name, self.inputs, self.feeds = name, inputs, feeds
        self.outputs, self.params, self.updates = outputs, params, updates

    def compile(self, **options):
        return gc.compile(self.outputs, inputs=self.inputs, updates=self.updates, **options)


def sgd_momentum(params, grads, lr=0.01, momentum=0.9):
    """PyTorch's SGD with momentum as an update dict (velocities are variables too)."""
    updates = {}
    for p, g in zip(params, grads):
        v = gc.variable(np.zeros(p.shape, p.dtype), name=f"{p.name}_velocity", trainable=False)
        v_new = momentum * v + g
        updates[v] = v_new
        updates[p] = p - lr * v_new
    return updates


def _uniform(rng, shape, fan_in):
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _linear(rng, x, fan_in, fan_out, name):
    w = gc.variable(_uniform(rng, (fan_in, fan_out), fan_in), name=f"{name}_w")
    b = gc.variable(_uniform(rng, (fan_out,), fan_in), name=f"{name}_b")
    return x @ w + b, [w, b]


def mlp(batch=128, seed=0, train=True):
    """W1 (train) / W5 (forward only, batch 1): 784-512-256-10 with ReLU."""
    rng = np.random.default_rng(seed)
    x = gc.placeholder((None, 784), name="x")
    h, p1 = _linear(rng, x, 784, 512, "fc1")
    h, p2 = _linear(rng, gc.relu(h), 512, 256, "fc2")
    logits, p3 = _linear(rng, gc.relu(h), 256, 10, "fc3")
    params = p1 + p2 + p3
    feeds = [rng.standard_normal((batch, 784)).astype(np.float32)]
    if not train:
        return Workload("W5 latency", [x], feeds, [logits], params, {})
    y = gc.placeholder((None,), "int64", name="y")
    loss = gc.nn.cross_entropy(logits, y)
    updates = sgd_momentum(params, gc.grad(loss, params))
    feeds.append(rng.integers(0, 10, batch))
    return Workload("W1 mlp", [x, y], feeds, [loss], params, updates)


def cnn(batch=64, seed=0):
    """W2: conv 1->32 3x3, ReLU, conv 32->64 3x3, ReLU, maxpool 2, 9216-128-10."""
    rng = np.random.default_rng(seed)
    x = gc.placeholder((None, 1, 28, 28), name="x")
    y = gc.placeholder((None,), "int64", name="y")
    w1 = gc.variable(_uniform(rng, (32, 1, 3, 3), 9), name="conv1_w")
    b1 = gc.variable(_uniform(rng, (32,), 9), name="conv1_b")
    w2 = gc.variable(_uniform(rng, (64, 32, 3, 3), 288), name="conv2_w")
    b2 = gc.variable(_uniform(rng, (64,), 288), name="conv2_b")
    h = gc.relu(gc.nn.conv2d(x, w1, b1))
    h = gc.relu(gc.nn.conv2d(h, w2, b2))
    h = gc.reshape(gc.nn.max_pool2d(h, 2), (-1, 9216))
    h, p3 = _linear(rng, h, 9216, 128, "fc1")
    logits, p4 = _linear(rng, gc.relu(h), 128, 10, "fc2")
    params = [w1, b1, w2, b2] + p3 + p4
    loss = gc.nn.cross_entropy(logits, y)
    feeds = [rng.standard_normal((batch, 1, 28, 28)).astype(np.float32),
             rng.integers(0, 10, batch)]
    return Workload("W2 cnn", [x, y], feeds, [loss], params,
                    sgd_momentum(params, gc.grad(loss, params)))


def rnn(batch=64, steps=50, vocab=5000, embed=64, hidden=128, seed=0, train=True):
    """W3: embedding, Elman RNN (tanh) over 50 steps, last hidden -> Linear 1, BCE
    (train=False: the recurrence alone, returning the last hidden state)."""
    rng = np.random.default_rng(seed)
    ids = gc.placeholder((None, steps), "int64", name="ids")
    y = gc.placeholder((None,), name="y")
    table = gc.variable(rng.standard_normal((vocab, embed)).astype(np.float32), name="embedding")
    w_ih = gc.variable(_uniform(rng, (embed, hidden), hidden), name="w_ih")
    w_hh = gc.variable(_uniform(rng, (hidden, hidden), hidden), name="w_hh")
    b_h = gc.variable(_uniform(rng, (hidden,), hidden), name="b_h")
    x = gc.nn.embedding(ids, table)
    h = None
    for t in range(steps):
        pre = x[:, t] @ w_ih + b_h
        h = gc.tanh(pre if h is None else pre + h @ w_hh)
    if not train:
        return Workload("W3 recurrence", [ids], [rng.integers(0, vocab, (batch, steps))], [h],
                        [table, w_ih, w_hh, b_h], {})
    logits, p_out = _linear(rng, h, hidden, 1, "out")
    loss = gc.nn.binary_cross_entropy_with_logits(gc.reshape(logits, (-1,)), y)
    params = [table, w_ih, w_hh, b_h] + p_out
    feeds = [rng.integers(0, vocab, (batch, steps)), rng.integers(0, 2, batch).astype(np.float32)]
    return Workload("W3 rnn", [ids, y], feeds, [loss], params,
                    sgd_momentum(params, gc.grad(loss, params)))


def fusion(n=4_194_304, seed=0):
    """W4: loss = sum(gelu_tanh(x * a + b)); the step computes dx, da, db and updates a, b."""
    rng = np.random.default_rng(seed)
    x = gc.placeholder((n,), name="x")
    a = gc.variable(np.float32(1.5), name="a")
    b = gc.variable(np.float32(0.25), name="b")
    loss = gc.sum(gc.gelu(x * a + b, approximate="tanh"))
    dx, da, db = gc.grad(loss, [x, a, b])
    feeds = [rng.standard_normal(n).astype(np.float32)]
    return Workload("W4 fusion", [x], feeds, [loss, dx], [a, b],
                    sgd_momentum([a, b], [da, db]))


ALL = {"mlp": mlp, "cnn": cnn, "rnn": rnn, "fusion": fusion,
       "latency": lambda **kw: mlp(batch=1, train=False, **kw)}
