"""`Pipeline`: runs passes in order over a concrete Program, in place, and
keeps a record of each (its report, its time and a snapshot of the program
after it) for tests, dumps and the fusion report.

A pass is a function `pass_(program) -> dict` (its report) that rewrites
`program` in place and keeps its meaning: the same outputs and updates for
every feed, as the reference interpreter computes them.
"""
import time


class PassRecord:
    def __init__(self, name, report, seconds, snapshot):
        self.name, self.report, self.seconds, self.snapshot = name, report, seconds, snapshot

    def __repr__(self):
        return f"<pass {self.name}: {self.report} in {self.seconds * 1e3:.1f} ms>"


class Pipeline:
    """An ordered list of passes; `run` can stop after any of them."""

    def __init__(self, passes):
        self.passes = list(passes)

    @property
    def names(self):
        return [p.__name__ for p in self.passes]

    def run(self, program, stop_after=None, snapshots=True):
        records = []
        for pass_ in self.passes:
            start = time.perf_counter()
            report = pass_(program) or {}
            elapsed = time.perf_counter() - start
            records.append(PassRecord(pass_.__name__, report, elapsed,
                                      program.copy() if snapshots else None))
            if pass_.__name__ == stop_after:
                break
        return records


def cleanup_pipeline():
    """The graph-to-graph passes: simplify, cse, fold, dce."""
    from graphc.passes.cse import cse
    from graphc.passes.dce import dce
    from graphc.passes.fold import fold
    from graphc.passes.simplify import simplify
    return Pipeline([simplify, cse, fold, dce])


def default_pipeline():
    """What an optimizing device runs: the cleanup, then lowering, fusion and the memory plan."""
    from graphc.passes.fuse import fuse
    from graphc.passes.lower import lower
    from graphc.passes.memplan import memplan
    return Pipeline(cleanup_pipeline().passes + [lower, fuse, memplan])
