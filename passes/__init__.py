"""The middle end: graph-to-graph passes, one per file (simplify, cse, fold,
dce, fuse, memplan) run by a Pipeline. They arrive with the CPU compiler;
the reference device runs the graph exactly as built.
"""
