"""The fused stage: one cluster per kernel of the fusion pass (passes/fuse.py).

A kernel's cluster holds the nodes it computes (its library call and its loop
nodes, inlined copies included) and the values it is the first to read
without computing them (placeholders, variables and constants, drawn as
ellipses, and zero-copy aliases, drawn as dashed "buffer" boxes): a picture
of each kernel with its inputs and outputs. An alias that no kernel reads sits with the kernel that
writes its base.

Guarantees: exactly one cluster per kernel, in schedule order; every node of
the program that some kernel computes or reads is in exactly one cluster
(a node that no kernel touches, like a fed placeholder nothing reads, stays
outside). An edge between two clusters is labelled with the fusion pass's
reason for not fusing them, when it gave one.
"""
from graphc.viz.model import SOURCE_OPS, VCluster, View, graph_edges, node_id, vnode


def fused_view(program, role_of, plan=None):
    """The View of `program` (fused: it has `program.fusion`)."""
    fusion = program.fusion
    nodes = program.graph.topological()
    home = cluster_homes(fusion, nodes)
    computed_nodes = {n for k in fusion.kernels for n in k.all_nodes}
    vnodes = []
    for node in nodes:
        computed = node in computed_nodes or node.op.name in SOURCE_OPS
        vnodes.append(vnode(node, role_of(node), None if computed else "buffer"))
        if node in home:
            vnodes[-1].info["kernel"] = fusion.kernels[home[node]].name
    clusters = [_cluster(kernel, [node_id(n) for n in nodes if home.get(n) == kernel.index],
                         plan)
                for kernel in fusion.kernels]
    edges = graph_edges(nodes)
    by_id = {node_id(n): n for n in nodes}
    for edge in edges:
        producer, consumer = by_id[edge.source], by_id[edge.target]
        if home.get(producer) != home.get(consumer):
            edge.reason = fusion.reasons.get((producer, consumer)) or \
                fusion.reasons.get((producer, None))
    report = fusion.report()
    title = [f"fused: {report['kernels']} kernels, {report['aliases']} aliases, "
             f"{report['unfused_edges']} unfused edges", f"{len(nodes)} nodes"]
    return View("fused", title, vnodes, edges, clusters)


def cluster_homes(fusion, nodes):
    """{node: index of the kernel whose cluster holds it} (see the module docstring)."""
    home = {}
    for kernel in fusion.kernels:
        for node in kernel.all_nodes:
            home.setdefault(node, kernel.index)
    for kernel in fusion.kernels:           # schedule order: the first reader wins
        for node in kernel.all_nodes:
            for operand in node.inputs:
                home.setdefault(operand, kernel.index)
    for node in nodes:                      # aliases only the caller reads
        base = node
        while base not in home and base.inputs and base in fusion.aliases:
            base = base.inputs[0]
        if node not in home and base in home:
            home[node] = home[base]
    return home


def _cluster(kernel, members, plan):
    library = kernel.library.op.name if kernel.library is not None else None
    label = [kernel.name, f"domain {tuple(kernel.domain)}"]
    info = {"kernel": kernel.name, "domain": str(tuple(kernel.domain)),
            "nodes": str(len(kernel.all_nodes)),
            "reads": ", ".join(n.name for n in kernel.inputs),
            "writes": ", ".join(n.name for n in kernel.outputs)}
    if library is not None:
        info["library call"] = library
    if kernel.reduce_axes is not None:
        info["reduce axes"] = str(tuple(kernel.reduce_axes))
    return VCluster(f"cluster_k{kernel.index}", label, members, info, kernel_source(kernel, plan))


def kernel_source(kernel, plan):
    """The generated source of a kernel's loop (CPU backend), or what runs instead."""
    loops = getattr(plan, "loops", None) or {}
    loop = loops.get(kernel)
    parts = []
    if kernel.library is not None:
        node = kernel.library
        args = ", ".join(i.name for i in node.inputs)
        parts.append(f"# library call\n{node.name} = {node.op.name}({args})")
    if loop is not None:
        parts.append(loop.source)
    elif plan is None and any(n in kernel.level for n in kernel.nodes):
        parts.append("# loop nest: generated when a backend compiles the program")
    return "\n\n".join(parts) or None
