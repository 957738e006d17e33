"""`graphc viz SCRIPT.py [--stage STAGE ...] [-o OUT] [-- ARGS...]`: run a script
with GRAPHC_DUMP on, so that every executable it compiles writes its stages
under OUT (dump.py). Opens nothing; prints where the index is.

`main(argv)` is the console entry point's body (also `python -m graphc.viz.cli`);
it returns the exit status: 0, or 1 when the script failed or compiled nothing.
"""
import argparse
import os
import runpy
import sys
from pathlib import Path

from graphc.viz.dump import ENV, STAGES_ENV
from graphc.viz.stages import stage_names


def parser(parser_class=argparse.ArgumentParser):
    p = parser_class(prog="graphc viz", description="Run SCRIPT with GRAPHC_DUMP "
                                "on: every compile writes its graphs, fusion report, memory "
                                "plan and generated source under OUT.")
    p.add_argument("script", help="the Python script to run")
    p.add_argument("--stage", action="append", choices=stage_names(), metavar="STAGE",
                   help="draw only this stage (repeatable; default: every stage): "
                   + ", ".join(stage_names()))
    p.add_argument("-o", "--out", default="graphc_dump", help="the dump folder (default: "
                   "./graphc_dump)")
    p.epilog = "Arguments after -- are passed to the script."
    return p


def main(argv=None, parser_class=argparse.ArgumentParser):
    """`graphc viz`; parser_class decides how argument errors read (the graphc
    command passes its one-line one)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    viz_parser = parser(parser_class)
    options, script_args = viz_parser.parse_args(argv[:cut]), argv[cut + 1:]
    if not Path(options.script).is_file():
        viz_parser.error(f"{options.script} is not a file: give the Python script to run")
    out = Path(options.out).resolve()
    out.mkdir(parents=True, exist_ok=True)      # an unwritable OUT fails here, in one line
    saved_env = {k: os.environ.get(k) for k in (ENV, STAGES_ENV)}
    saved_argv = sys.argv
    os.environ[ENV] = str(out)
    if options.stage:
        os.environ[STAGES_ENV] = ",".join(options.stage)
    else:
        os.environ.pop(STAGES_ENV, None)
    sys.argv = [options.script, *script_args]
    sys.path.insert(0, str(Path(options.script).resolve().parent))   # as `python SCRIPT` does
    before = _dumps(out)
    status = 0
    try:
        runpy.run_path(options.script, run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = saved_argv
        sys.path.pop(0)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    written = sorted(_dumps(out) - before)
    if not written:
        print(f"graphc viz: {options.script} compiled nothing; no dump under {out}",
              file=sys.stderr)
        return status or 1
    print(f"graphc viz: {len(written)} dump(s) of {options.script} in {out}: open "
          f"{out / 'index.html'}")
    return status


def _dumps(out):
    """The dump folders under `out`."""
    return {p.name for p in out.iterdir() if (p / "index.html").exists()} if out.is_dir() else set()


if __name__ == "__main__":
    sys.exit(main())
