"""Mermaid output: a node statement per graph node, a link per edge."""
import re

import graphc as gc
from viz_graphs import small_training_step

NODE = re.compile(r'^\s*(n\d+)(\["|\(\["|\[\[")', re.M)
LINK = re.compile(r"^\s*(n\d+) (-->|-\.->)(\|\"[^\"]*\"\|)? (n\d+)$", re.M)


def test_mermaid_has_a_node_per_graph_node_and_a_link_per_edge():
    _, loss, _, updates = small_training_step()
    tensors = [loss] + list(updates.values())
    text = gc.viz.to_mermaid(tensors, stage="autodiff")
    assert text.startswith("flowchart TD\n")
    nodes = loss.graph.ancestors([t.node for t in tensors])
    declared = NODE.findall(text)
    assert sorted(i for i, _ in declared) == sorted(f"n{n.id}" for n in nodes)
    pairs = {(f"n{p.id}", f"n{n.id}") for n in nodes for p in n.inputs}
    assert {(a, b) for a, _, _, b in LINK.findall(text)} == pairs


def test_mermaid_colours_roles_with_a_legend():
    _, loss, _, updates = small_training_step()
    step = gc.compile(loss, updates=updates, device="reference")
    text = gc.viz.to_mermaid(step, stage="autodiff")
    for role in ("forward", "backward", "update"):
        assert f"classDef {role} fill:" in text
        assert f'legend_{role}["{role}"]:::{role}' in text
        assert re.search(rf"^  class n\d+(,n\d+)* {role}$", text, re.M)


def test_mermaid_fused_has_a_subgraph_per_kernel(w1):
    text = gc.viz.to_mermaid(w1.step, stage="fused")
    subgraphs = re.findall(r"^  subgraph (cluster_k\d+)\[", text, re.M)
    assert len(subgraphs) == len(w1.step.program.fusion.kernels)
    assert "-.->" in text                     # unfused edges are dotted


def test_quotes_in_labels_are_escaped():
    x = gc.placeholder((2,), name='say "hi"')
    text = gc.viz.to_mermaid(gc.exp(x))
    assert 'say #quot;hi#quot;' in text
