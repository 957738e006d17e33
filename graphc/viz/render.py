"""From (object, stage) to text in each format: the functions gc.viz exports.

Every function takes a Tensor, a list of Tensors, a Graph, a Program or an
Executable, and a stage (stages.py; default: "fused" for an executable that
ran the pass pipeline, else "autodiff"). `depth` folds name scopes deeper
than it into boxes (scopes.py); `engine` picks the SVG renderer (svg.py).
"""
from pathlib import Path

from graphc.errors import GraphcError, user_location
from graphc.viz.dot import render_dot
from graphc.viz.fused import fused_view
from graphc.viz.html import memory_details, render_html, view_details
from graphc.viz.json_format import render_json
from graphc.viz.memory import memory_data, memory_svg, memory_title
from graphc.viz.mermaid import render_mermaid
from graphc.viz.scopes import collapse
from graphc.viz.stages import (FUSED, MEMORY, Subject, check_stage, default_stage, graph_view,
                               subject_of)
from graphc.viz.svg import render_svg

FORMATS = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".html": "html", ".htm": "html",
           ".mmd": "mermaid", ".mermaid": "mermaid", ".json": "json"}


def resolve(obj, stage):
    """(Subject, stage name) for what the user passed."""
    subject = obj if isinstance(obj, Subject) else subject_of(obj)
    stage = default_stage(subject) if stage is None else stage
    check_stage(stage)
    return subject, stage


def view(obj, stage=None, depth=None):
    """The View (model.py) of a graph stage or the fused stage."""
    subject, stage = resolve(obj, stage)
    if stage == MEMORY:
        raise GraphcError("the memory stage is a picture of the arena, not a graph: "
                          "draw it as .svg, .html or .json", op="viz")
    if stage == FUSED:
        drawn = fused_view(subject.final_program(), subject.role_of, subject.plan())
    else:
        drawn = graph_view(subject, stage)
    return collapse(drawn, depth)


def to_dot(obj, stage=None, depth=None):
    """Graphviz DOT text."""
    return render_dot(view(obj, stage, depth))


def to_mermaid(obj, stage=None, depth=None):
    """Mermaid flowchart text."""
    return render_mermaid(view(obj, stage, depth))


def to_json(obj, stage=None, depth=None):
    """JSON text: nodes and edges (or, for the memory stage, the buffers)."""
    subject, stage = resolve(obj, stage)
    if stage == MEMORY:
        import json
        return json.dumps(memory_data(_planned(subject), subject.role_of), indent=1) + "\n"
    return render_json(view(subject, stage, depth))


def to_svg(obj, stage=None, depth=None, engine="auto"):
    """SVG text; engine "auto" (Graphviz when installed), "python" or "graphviz"."""
    subject, stage = resolve(obj, stage)
    if stage == MEMORY:
        return memory_svg(_planned(subject), subject.role_of)
    return render_svg(view(subject, stage, depth), engine)


def to_html(obj, stage=None, depth=None, engine="auto"):
    """One self-contained HTML page: the SVG and a side panel of details."""
    subject, stage = resolve(obj, stage)
    if stage == MEMORY:
        program = _planned(subject)
        data = memory_data(program, subject.role_of)
        return render_html(memory_title(data), memory_svg(program, subject.role_of),
                           memory_details(data), program.memory.describe())
    drawn = view(subject, stage, depth)
    overview = None
    if stage == FUSED and subject.executable is not None:
        from graphc.viz.summary import program_summary
        overview = program_summary(subject.final_program(), subject.executable.stats)
    return render_html(drawn.title, render_svg(drawn, engine), view_details(drawn), overview)


RENDERERS = {"dot": to_dot, "mermaid": to_mermaid, "json": to_json}


def save(obj, path, stage=None, depth=None, engine="auto"):
    """Write the picture to `path`, in the format its extension names
    (.dot, .svg, .html, .mmd, .json); returns the path."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise GraphcError(f"cannot tell the format of {path.name!r}: use one of "
                          f"{', '.join(sorted(FORMATS))}", op="viz")
    if kind == "svg":
        text = to_svg(obj, stage, depth, engine)
    elif kind == "html":
        text = to_html(obj, stage, depth, engine)
    else:
        text = RENDERERS[kind](obj, stage, depth)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise GraphcError(f"cannot write {path}: {error.strerror or error}", op="viz",
                          loc=user_location()) from None
    return path


def _planned(subject):
    program = subject.final_program()
    if getattr(program, "memory", None) is None:
        raise GraphcError("no memory plan: the memplan pass did not run", op="viz")
    return program
