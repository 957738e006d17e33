"""Per-kernel timings of one executable (what `Executable.profile()` returns)."""
import time


class Profile:
    """rows: (kernel name, what it computes, seconds per call), in schedule order."""

    def __init__(self, rows, repeats):
        self.rows, self.repeats = rows, repeats

    @property
    def total(self):
        return sum(seconds for _, _, seconds in self.rows)

    def __str__(self):
        total = self.total or 1e-12
        lines = [f"{'kernel':40} {'us/call':>10} {'share':>7}  computes"]
        for name, what, seconds in self.rows:
            lines.append(f"{name[:40]:40} {seconds * 1e6:10.1f} {seconds / total:7.1%}  {what[:60]}")
        lines.append(f"{'total':40} {self.total * 1e6:10.1f}   (median of {self.repeats} runs)")
        return "\n".join(lines)


def time_steps(steps, repeats):
    """Median seconds of each (name, what, callable) over `repeats` rounds, run in order."""
    samples = {name: [] for name, _, _ in steps}
    for _ in range(repeats):
        for name, _, run in steps:
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return Profile([(name, what, median(samples[name])) for name, what, _ in steps], repeats)
