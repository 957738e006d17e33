"""A parallel loop kernel as a function over one chunk of its outer loop (a mixin of
the CPU LoopRenderer in runtime/cpu/codegen.py; runtime/cpu/chunks.py runs the
chunks on the threads).

    def k(chunk, start, stop, a0, ..., partials, err):
        if chunk < 0:                 # the tail: called once, after every chunk
            acc0 = <the partial sums of every chunk, added up; their slots zeroed>
            <the scalars after the loop>
            return
        acc0 = 0.0
        for i0 in range(start, stop):
            ...                       # the loop's body, as a serial kernel's
        partials[chunk * 1 + 0] = acc0

A kernel with nothing after its loop has no tail and no partials. A sum across
the loop is added up chunk by chunk in the accumulator's dtype, as a prange's
reduction does; `partials` (float64, a slot per reduction per thread; the
caller's) holds a float accumulator exactly. An integer sum across the loop
keeps a prange.
"""
import numpy as np


class InChunks:
    """For LoopRenderer (which provides the accumulators and the loops)."""

    def chunk_count(self, parallel, loops, scalar_red):
        """The count of the outer loop that runs in chunks (its blocks' for long sums:
        `self.blocked`), or None for a kernel that stays serial or keeps a prange."""
        if not parallel or not loops or any(self.acc_dtype(r).kind != "f" for r in scalar_red):
            return None
        return self.block_count(loops[0], loops) if self.blocked else self.extent(loops[0])

    def acc_dtype(self, red):
        return np.dtype(np.float64 if self.accumulates_wide(red) else red.dtype)

    def in_chunks(self, body, tail, scalar_red):
        """The function's lines: `body` (the loop over one chunk's range), each sum's
        partial stored in the chunk's slot; with chunk < 0, the tail."""
        if not tail:
            return body
        n = len(scalar_red)
        ends = [f"    partials[chunk * {n} + {k}] = {self.acc(r)}"
                for k, r in enumerate(scalar_red)]
        head = ["    if chunk < 0:"] + [f"        {self.acc(r)} = {self.init(r)}"
                                          for r in scalar_red]
        if scalar_red:
            head.append(f"        for slot in range(0, partials.size, {n}):")
            for k, red in enumerate(scalar_red):
                head += [f"            {self.acc(red)} += "
                         f"np.{self.acc_dtype(red).name}(partials[slot + {k}])",
                         f"            partials[slot + {k}] = 0.0"]
        head += ["    " + line for line in tail] + ["        return"]
        return head + body + ends
