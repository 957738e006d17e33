"""GRAPHC_DUMP=DIR: every compile writes what the compiler did, with no change to
the user's code (as XLA_FLAGS=--xla_dump_to does).

Each compiled signature of each executable gets one folder under DIR,
`NNN_<first output's name>`, holding:
    NN_<stage>.dot, NN_<stage>.svg   the graph after each stage (built,
                                     autodiff, each pass, fused)
    fused.html                       the fused graph with its side panel
    fusion_report.txt                which nodes became which kernel, and why
                                     each unfused edge was not fused
    memory_plan.txt, memory.svg      the memory plan, as text and picture
    generated_source.py              the backend's generated module
    summary.txt                      the kernels, one line each
    index.html                       links to all of the above
and DIR/index.html links every folder. GRAPHC_DUMP_STAGES=a,b limits the
stages drawn. Writing a dump never breaks a compile: a failure is logged.
"""
import html
import logging
import os
import re
from pathlib import Path

from graphc.viz.dot import render_dot
from graphc.viz.render import to_html, to_svg, view
from graphc.viz.stages import AUTODIFF, BUILT, FUSED, MEMORY, executable_subject
from graphc.viz.summary import program_summary
from graphc.viz.svg import render_svg

log = logging.getLogger("graphc")
ENV, STAGES_ENV = "GRAPHC_DUMP", "GRAPHC_DUMP_STAGES"
INDEX_STYLE = ("body { font-family: Helvetica, Arial, sans-serif; margin: 2em; } "
               "td { padding: 2px 12px 2px 0; } a { margin-right: 8px; }")


def dump_if_requested(executable, plan):
    """Called by Executable after each new compile: dump when GRAPHC_DUMP is set."""
    directory = os.environ.get(ENV)
    if not directory:
        return None
    try:
        return dump_executable(executable, plan, directory, _wanted_stages())
    except OSError as error:    # a picture must never cost the user their compile
        log.warning("GRAPHC_DUMP: could not write the dump to %s: %s", directory,
                    error.strerror or error)
    except Exception:           # a bug of the dump's: its traceback helps
        log.warning("GRAPHC_DUMP: could not write the dump to %s", directory, exc_info=True)
    return None


def _wanted_stages():
    text = os.environ.get(STAGES_ENV, "")
    return [s.strip() for s in text.split(",") if s.strip()] or None


def dump_executable(executable, plan, directory, stages=None):
    """Write the dump of `executable`'s compile into `plan` (a backend plan) under
    `directory`; returns the folder."""
    subject = executable_subject(executable, plan)
    folder = _new_folder(Path(directory), _label(executable))
    written = []                            # (section, [file names], description)
    graph_stages = [BUILT, AUTODIFF]
    if subject.compiled:
        graph_stages += [r.name for r in subject.pipeline()[0] if r.snapshot is not None]
        graph_stages.append(FUSED)
    for number, stage in enumerate(graph_stages):
        if stages is not None and stage not in stages:
            continue
        drawn = view(subject, stage)
        stem = f"{number:02d}_{stage}"
        _write(folder / f"{stem}.dot", render_dot(drawn))
        _write(folder / f"{stem}.svg", render_svg(drawn))
        written.append(("stages", [f"{stem}.svg", f"{stem}.dot"], " / ".join(drawn.title)))
    program = plan.program
    if getattr(program, "fusion", None) is not None:
        _write(folder / "fusion_report.txt", program.fusion.describe())
        written.append(("fusion", ["fusion_report.txt"], "fusion report"))
        if stages is None or FUSED in stages:
            _write(folder / "fused.html", to_html(subject, FUSED))
            written.append(("fusion", ["fused.html"], "fused graph with details (HTML)"))
    if getattr(program, "memory", None) is not None:
        _write(folder / "memory_plan.txt", program.memory.describe())
        written.append(("memory", ["memory_plan.txt"], "memory plan"))
        if stages is None or MEMORY in stages:
            _write(folder / "memory.svg", to_svg(subject, MEMORY))
            written.append(("memory", ["memory.svg"], "memory plan picture"))
    source = getattr(plan, "source", None)
    if source:
        _write(folder / "generated_source.py", source)
        written.append(("code", ["generated_source.py"], "generated source"))
    text = program_summary(program, executable.stats)
    _write(folder / "summary.txt", text)
    written.append(("code", ["summary.txt"], "kernel summary"))
    _write(folder / "index.html", _index(folder.name, executable, written, text))
    _write(Path(directory) / "index.html", _top_index(Path(directory)))
    return folder


def _label(executable):
    names = [n.name for n in executable._outputs] or [v.name for v, _ in executable._updates]
    name = names[0] if names else "step"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40]


def _new_folder(directory, label):
    directory.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in directory.iterdir()
             if (m := re.match(r"(\d+)_", p.name)) and p.is_dir()]
    number = max(taken, default=-1) + 1
    while True:
        folder = directory / f"{number:03d}_{label}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:             # another process took it
            number += 1


def _write(path, text):
    path.write_text(text, encoding="utf-8")


def _index(name, executable, written, summary_text):
    """The folder's index: a table per section, each row its files and what they show."""
    sections = {}
    for section, files, description in written:
        links = " ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in files)
        sections.setdefault(section, []).append(
            f"<tr><td>{links}</td><td>{html.escape(description)}</td></tr>")
    body = "".join(f"<h2>{html.escape(section)}</h2><table>{''.join(rows)}</table>"
                   for section, rows in sections.items())
    stats = ", ".join(f"{k} {v}" for k, v in executable.stats.items() if k != "module")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>graphc dump {html.escape(name)}</title><style>{INDEX_STYLE}</style></head>"
            f"<body><h1>graphc dump {html.escape(name)}</h1><p>{html.escape(stats)}</p>{body}"
            f"<h2>summary</h2><pre>{html.escape(summary_text)}</pre></body></html>\n")


def _top_index(directory):
    folders = sorted(p.name for p in directory.iterdir()
                     if p.is_dir() and (p / "index.html").exists())
    items = "".join(f'<li><a href="{html.escape(f)}/index.html">{html.escape(f)}</a></li>'
                    for f in folders)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>graphc dumps</title></head><body><h1>graphc dumps</h1>"
            f"<ul>{items}</ul></body></html>\n")
