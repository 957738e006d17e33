"""The memory picture: a rectangle per buffer, in-place reuse marked, totals in
the title."""
import json
import xml.etree.ElementTree as ET

import pytest

import graphc as gc
from graphc.viz.memory import LEFT, PLOT_HEIGHT, TOP

NS = "{http://www.w3.org/2000/svg}"


def test_one_rectangle_per_buffer_at_its_offset_and_interval(w1):
    plan = w1.step.program.memory
    root = ET.fromstring(gc.viz.to_svg(w1.step, stage="memory"))
    buffers = {g.get("id"): g for g in root.iter(f"{NS}g") if g.get("class") == "buffer"}
    assert set(buffers) == {f"buf_{n.id}" for n in plan.buffers}
    scale = PLOT_HEIGHT / plan.arena_bytes
    widths = set()
    for node, buffer in plan.buffers.items():
        rect = buffers[f"buf_{node.id}"].find(f"{NS}rect")
        column = (float(rect.get("width")) + 2) / (buffer.end - buffer.start + 1)
        widths.add(round(column, 1))
        assert float(rect.get("x")) == pytest.approx(LEFT + buffer.start * column + 1, abs=0.2)
        assert float(rect.get("y")) == pytest.approx(TOP + buffer.offset * scale, abs=0.1)
    assert len(widths) == 1                     # one column per step


def test_in_place_buffers_are_hatched_and_name_what_they_reuse(w1):
    plan = w1.step.program.memory
    assert plan.inplace
    root = ET.fromstring(gc.viz.to_svg(w1.step, stage="memory"))
    hatched = {g.get("id") for g in root.iter(f"{NS}g") if g.get("class") == "buffer"
               and any(r.get("fill") == "url(#hatch)" for r in g.iter(f"{NS}rect"))}
    assert hatched == {f"buf_{out.id}" for out, _ in plan.inplace}
    for out, taken in plan.inplace:
        (title,) = [g.find(f"{NS}title").text for g in root.iter(f"{NS}g")
                    if g.get("id") == f"buf_{out.id}"]
        assert f"in place of {taken.name}" in title


def test_title_gives_arena_naive_and_lower_bound(w1):
    plan = w1.step.program.memory
    root = ET.fromstring(gc.viz.to_svg(w1.step, stage="memory"))
    title = next(t.text for t in root.iter(f"{NS}text") if t.get("class") == "title")
    assert f"({plan.arena_bytes} B)" in title
    assert "naive" in title and "lower bound" in title
    data = json.loads(gc.viz.to_json(w1.step, stage="memory"))
    assert (data["arena_bytes"], data["naive_bytes"], data["lower_bound"]) == \
        (plan.arena_bytes, plan.naive_bytes, plan.lower_bound)
    assert len(data["buffers"]) == len(plan.buffers)


def test_memory_html_has_a_panel_entry_per_buffer(w1):
    text = gc.viz.to_html(w1.step, stage="memory")
    for node in w1.step.program.memory.buffers:
        assert f'"buf_{node.id}"' in text


def test_memory_stage_is_not_a_graph_format(w1):
    with pytest.raises(gc.GraphcError, match="draw it as .svg, .html or .json"):
        gc.viz.to_dot(w1.step, stage="memory")
