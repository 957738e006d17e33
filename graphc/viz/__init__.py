"""gc.viz: pictures of what the compiler did, at every stage.

    gc.viz.save(step, "step.svg", stage="fused")    # .dot .svg .html .mmd .json
    print(gc.viz.to_mermaid(loss, stage="autodiff"))
    print(gc.viz.summary(step))                      # kernels as a text table

Stages: "built", "autodiff", each pass of the default pipeline ("simplify",
"cse", "fold", "dce", "lower", "fuse", "memplan"), "fused" and "memory"
(`gc.viz.stages()`). `depth=1` folds name scopes into boxes; `engine` picks
Graphviz (when installed) or the pure-Python SVG renderer. Setting
GRAPHC_DUMP=DIR makes every compile write every stage to DIR (dump.py).
"""
from graphc.viz.render import save, to_dot, to_html, to_json, to_mermaid, to_svg, view
from graphc.viz.stages import stage_names as stages
from graphc.viz.summary import summary

__all__ = ["save", "to_dot", "to_svg", "to_html", "to_mermaid", "to_json", "view", "stages",
           "summary"]
