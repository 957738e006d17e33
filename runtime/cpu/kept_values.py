"""Costly values that a later pass over a row needs again, kept in memory rather
than computed again (a mixin of the LoopRenderer in runtime/cpu/codegen.py).

A softmax kernel passes over each row three times: the max, the sum of
exp(x - max), then exp(x - max) / sum. Its third pass computed the exp again.
Now the first pass that computes a costly value (an op defined with
`costly = True`: exp, log, tanh, ...) which a later pass needs stores it in the
buffer of an element output that the last of those passes writes (its own
buffer, if the value is an output), and the later passes load it from there.
The holder's own value is written over it only at the end of that last pass.

Only placed values are kept: a costly value fusion inlines (computed from
buffers alone, as tanh(x) of an input) is still computed by every pass that
reads it.

Guarantees: every value is still computed by one expression at one point, so
its rounding is the one the pass computing it gives; a holder is never an
output that shares an input's buffer (memplan gives none to a multi-pass
kernel today, and a later pass would read the input overwritten).
"""
from graphc.passes.kernels import ELEMENT


class KeptValues:
    """For LoopRenderer (which provides stages, outputs, needed_elements and names)."""

    def choose_kept(self, passes, members):
        """Sets `kept_in` (value -> the output whose buffer holds it between passes) and
        `first_use` (value -> the pass that computes and stores it); `members[p]` is
        pass p's (accumulated reductions, element writes)."""
        self.kept_in, self.first_use = {}, {}
        if passes < 2:
            return
        element_out = [n for _, writes in members for n in writes]
        taken = set()
        for value in reversed(self.placed(ELEMENT)):     # a reader first: it may need less
            uses = [p for p, (accumulate, writes) in enumerate(members)
                    if value in self.needed_elements(accumulate, writes, set(self.kept_in))]
            if len(uses) < 2 or not self.costly(value):
                continue
            holder = self.holder(value, uses[-1], element_out, taken)
            if holder is not None:
                self.kept_in[value], self.first_use[value] = holder, uses[0]
                taken.add(holder)

    def holder(self, value, last, element_out, taken):
        """The output whose buffer can hold `value` until pass `last` is done."""
        if value in element_out:
            return None if value in self.in_place else value
        for out in element_out:
            if out not in taken and out not in self.in_place and out.dtype == value.dtype \
                    and self.stage.get(out, 0) == last:
                return out
        return None

    def costly(self, node):
        """Whether computing `node` again costs more than a store and a load: a costly op
        in its own expression (itself, or the inlined nodes it reads)."""
        if node.op.costly:
            return True
        return any(i in self.inlined and self.costly(i) for i in node.inputs)

    def loaded_in(self, stage):
        """The kept values that pass `stage` reads back instead of computing."""
        return {v for v, first in self.first_use.items() if first < stage}

    def stored_in(self, stage):
        """The kept values that pass `stage` computes and stores in another's buffer."""
        return [v for v, first in self.first_use.items()
                if first == stage and self.kept_in[v] is not v]

    def kept_slot(self, value, element):
        """`holder[point]`: where a kept value lives at the loop's point."""
        return f"{self.arg_out(self.kept_in[value])}" \
            f"[{self.subscript(self.identity_ids(ELEMENT), ELEMENT, element)}]"
