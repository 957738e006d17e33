"""Adjacent loop axes collapsed into one (a mixin of the CPU LoopRenderer in
runtime/cpu/codegen.py).

A conv epilogue or a conv bias gradient loops over (N, C, H, W) with W = 24
innermost: LLVM vectorizes 24 points (one 16-wide vector and a remainder)
and pays a loop exit per image row. Where every index map the kernel uses
steps through axes h and w as one run (stride of h == extent of w * stride
of w), the two loops are one loop over H * W points, and each index term
`i2 * 24 + i3` becomes `i2`. W2's conv2 bias gradient (a where and a sum over
N, H, W per channel) went from 879 to 211 us.

The renderer renders a kernel once with every axis, noting each affine map
it writes (`maps_seen`), then, when `collapsible_groups` finds axes to merge,
renders it again with them merged: the maps are the same in both renders.
"""
import numpy as np


class CollapsedAxes:
    """Loop axes merged into groups, for LoopRenderer (which sets `domain`, `kept`,
    `reduced` and `collapse`: head axis -> the axes of its group)."""

    def loop_axes(self, axes):
        """The axes among `axes` that have a loop: all but the non-first members of a group."""
        absorbed = {a for group in self.collapse.values() for a in group[1:]}
        return [a for a in axes if a not in absorbed]

    def extent(self, axis):
        """Points of axis's loop: its own, or its group's product."""
        group = self.collapse.get(axis, (axis,))
        return int(np.prod([self.domain[a] for a in group], dtype=np.int64))

    def axis_terms(self, axes, strides):
        """`i{a} * stride` terms of one affine map over `axes`; a group's head loop runs
        over its members' points in order, so it steps by its last member's stride."""
        by_axis = dict(zip(axes, strides))
        self.maps_seen.append(by_axis)
        terms = []
        for axis in self.loop_axes(axes):
            group = self.collapse.get(axis, (axis,))
            if not _runs_together(group, by_axis, self.domain):
                raise AssertionError(f"axes {group} of {self.name} were collapsed for a map "
                                     "they do not run through as one")
            stride = by_axis[group[-1]]
            if stride:
                terms.append(f"i{axis} * {stride}" if stride != 1 else f"i{axis}")
        return terms

    def collapsible_groups(self):
        """head axis -> group, for runs of adjacent kept (or adjacent reduced) axes, none of
        extent 1, that every map seen so far steps through as one run."""
        groups = {}
        for axes in (self.kept, self.reduced):
            run = []
            for axis in list(axes) + [None]:
                extends = run and axis == run[-1] + 1 and self.domain[axis] > 1 and all(
                    _runs_together((run[-1], axis), m, self.domain) for m in self.maps_seen)
                if extends:
                    run.append(axis)
                    continue
                if len(run) > 1:
                    groups[run[0]] = tuple(run)
                run = [axis] if axis is not None and self.domain[axis] > 1 else []
        return groups


def _runs_together(group, strides, domain):
    """Whether a map with these per-axis strides walks `group`'s axes as one run."""
    present = [a for a in group if a in strides]
    if len(present) < len(group):
        return len(present) == 0
    return all(strides[a] == domain[b] * strides[b] for a, b in zip(group, group[1:]))
