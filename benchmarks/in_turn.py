"""Worker processes stepped in turn, so that a slow phase of a shared machine hits
each alike (benchmarks/model_step.py, paired_steps.py).

A worker prints "ready" once built and warmed up, then for each line it reads runs
its step and prints the seconds it took first on a line.
"""
import subprocess


def start_workers(commands, **popen):
    """{name: worker process} for {name: command}, each ready."""
    workers = {name: subprocess.Popen(command, text=True, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, **popen.get(name, {}))
               for name, command in commands.items()}
    for worker in workers.values():
        if worker.stdout.readline().strip() != "ready":
            raise SystemExit("a worker failed to start")
    return workers


def step_in_turn(workers, rounds):
    """{name: [seconds of each round]}: one step of each worker a round, the order
    alternating; the workers are then stopped."""
    times = {name: [] for name in workers}
    names = list(workers)
    for i in range(rounds):
        for name in (names if i % 2 else names[::-1]):
            workers[name].stdin.write("step\n")
            workers[name].stdin.flush()
            times[name].append(float(workers[name].stdout.readline().split()[0]))
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()
    return times
