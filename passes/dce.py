"""Dead-code elimination.

Guarantees: afterwards every node reaches an output or an update value,
except the program's placeholders (kept so feeds bind by position) and the
variables that updates write (kept so the program stays whole: `copy`).
Meaning unchanged.
"""


def dce(program):
    live = program.graph.ancestors(program.roots()) | set(program.inputs)
    live |= {var for var, _ in program.updates}
    dead = [n for n in program.graph.topological() if n not in live]
    for node in dead:
        program.graph.remove(node)
    return {"removed": len(dead)}
