"""`Pipeline`: runs passes in order over a concrete Program, in place, and
keeps a record of each (its report, its time and a snapshot of the program
after it) for tests, dumps and the fusion report.

A pass is a function `pass_(program) -> dict` (its report) that rewrites
`program` in place and keeps its meaning: the same outputs and updates for
every feed, as the reference interpreter computes them.
"""
import time


class PassRecord:
    """A pass's report, its seconds and `snapshot`, the program after it: kept by the
    run, or (a run given `replay`) made on first request by running the pipeline
    again on a fresh copy of its input."""

    def __init__(self, name, report, seconds, snapshot=None, replay=None):
        self.name, self.report, self.seconds = name, report, seconds
        self._snapshot, self._replay = snapshot, replay

    @property
    def snapshot(self):
        if self._snapshot is None and self._replay is not None:
            self._replay()
        return self._snapshot

    def __repr__(self):
        return f"<pass {self.name}: {self.report} in {self.seconds * 1e3:.1f} ms>"


class Pipeline:
    """An ordered list of passes; `run` can stop after any of them."""

    def __init__(self, passes):
        self.passes = list(passes)

    @property
    def names(self):
        return [p.__name__ for p in self.passes]

    def run(self, program, stop_after=None, snapshots=True, replay=None):
        """The records of the passes run on `program`. snapshots=False keeps no copies;
        then `replay`, a function returning a fresh copy of the input program, makes
        them when first asked for (copying after every pass of a large graph took
        longer than the passes: 1.4-1.9 s against 0.8 s for an LSTM over 50 steps)."""
        records = []
        for pass_ in self.passes:
            start = time.perf_counter()
            report = pass_(program) or {}
            elapsed = time.perf_counter() - start
            records.append(PassRecord(pass_.__name__, report, elapsed,
                                      program.copy() if snapshots else None))
            if pass_.__name__ == stop_after:
                break
        if not snapshots and replay is not None:
            def make_snapshots():
                again = self.run(replay(), stop_after=records[-1].name)
                for record, redone in zip(records, again):
                    record._snapshot, record._replay = redone._snapshot, None
            for record in records:
                record._replay = make_snapshots
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
