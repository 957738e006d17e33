"""How long gc.viz takes to draw a big graph without Graphviz.

An Elman RNN (embedding 8, hidden 16, tanh) unrolled over 84 steps, each step
in its own name scope, a head, gc.grad and an SGD update: about 2,100 nodes
in the `autodiff` stage. Times the pure-Python SVG (layout included), the
same folded at depth 1, and the DOT text. Target (issue 5): the SVG in under
10 seconds, and at most 60 boxes at depth 1.

    python benchmarks/viz_speed.py [--steps 84] [--repeats 3]
"""
import argparse
import statistics
import time

import numpy as np

import graphc as gc


def build(steps, hidden=16, embed=8, vocab=50, batch=4):
    """The training step as an executable (compiled lazily: nothing runs)."""
    rng = np.random.default_rng(0)
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
        loss = gc.nn.binary_cross_entropy_with_logits(gc.reshape(h @ w_out, (-1,)), labels)
    params = [table, w_ih, w_hh, b_h, w_out]
    grads = gc.grad(loss, params)
    with gc.name_scope("sgd"):
        updates = {p: p - 0.01 * g for p, g in zip(params, grads)}
    return gc.compile(loss, inputs=[ids, labels], updates=updates, device="reference")


def timed(function, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=84)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with gc.Graph("rnn"):
        step = build(args.steps)
        nodes = len(gc.viz.view(step, stage="autodiff").nodes)
        svg_s, svg = timed(lambda: gc.viz.to_svg(step, stage="autodiff", engine="python"),
                           args.repeats)
        folded_s, folded = timed(lambda: gc.viz.to_svg(step, stage="autodiff", depth=1,
                                                       engine="python"), args.repeats)
        dot_s, _ = timed(lambda: gc.viz.to_dot(step, stage="autodiff"), args.repeats)
    print(f"RNN unrolled over {args.steps} steps: {nodes} nodes in the autodiff stage")
    print(f"pure-Python SVG: {svg_s:.3f} s ({len(svg) / 1e6:.1f} MB; target < 10 s)")
    boxes = folded.count('class="node"')
    print(f"depth 1: {folded_s:.3f} s, {boxes} boxes (target <= 60)")
    print(f"DOT text: {dot_s:.3f} s   (median of {args.repeats} runs each)")


if __name__ == "__main__":
    main()
