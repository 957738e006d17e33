"""The pure-Python layered layout: no overlaps, inside its bounds, deterministic."""
import itertools

import graphc as gc
from graphc.viz.layout import layered, layout_view
from viz_graphs import unrolled_rnn


def overlap(a, b):
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def test_edges_point_down_and_boxes_do_not_overlap():
    loss, _, _, _ = unrolled_rnn(steps=6)
    view = gc.viz.view(loss, stage="autodiff")
    layout = layout_view(view)
    boxes = list(layout.nodes.values())
    assert len(boxes) == len(view.nodes)
    by_row = {}
    for box in boxes:
        by_row.setdefault(box.y + box.h / 2, []).append(box)
    for row in by_row.values():
        row.sort(key=lambda b: b.x)
        assert all(a.x + a.w <= b.x for a, b in zip(row, row[1:]))
    for edge in view.edges:                     # a graph's edges go down the page
        assert layout.nodes[edge.source].y < layout.nodes[edge.target].y
    assert all(0 <= b.x and b.x + b.w <= layout.width + 1e-6 and 0 <= b.y and
               b.y + b.h <= layout.height + 1e-6 for b in boxes)


def test_clusters_enclose_their_nodes_and_do_not_overlap(w1):
    view = gc.viz.view(w1.step, stage="fused")
    layout = layout_view(view)
    for cluster in view.clusters:
        outer = layout.clusters[cluster.id]
        for member in cluster.members:
            box = layout.nodes[member]
            assert outer.x <= box.x and box.x + box.w <= outer.x + outer.w
            assert outer.y <= box.y and box.y + box.h <= outer.y + outer.h
    for a, b in itertools.combinations(layout.clusters.values(), 2):
        assert not overlap(a, b)


def test_cycles_between_items_are_laid_out():
    sizes = {item: (40, 20) for item in "abc"}
    positions, (width, height) = layered(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")],
                                         sizes)
    assert set(positions) == {"a", "b", "c"}
    assert positions["a"][1] < positions["b"][1] < positions["c"][1]


def test_a_source_sits_just_above_its_first_reader():
    sizes = {item: (40, 20) for item in "abcdv"}
    positions, _ = layered(["v", "a", "b", "c", "d"],
                           [("a", "b"), ("b", "c"), ("c", "d"), ("v", "d")], sizes)
    assert positions["v"][1] == positions["c"][1]


def test_same_input_same_layout():
    loss, _, _, _ = unrolled_rnn(steps=3)
    first = gc.viz.to_svg(loss, stage="autodiff", engine="python")
    assert gc.viz.to_svg(loss, stage="autodiff", engine="python") == first
