"""One self-contained HTML page: the SVG, and a side panel that shows, for the
node, kernel or buffer clicked, its op, shape, dtype, source line and (for a
kernel and its nodes) the generated source.

Guarantees: no external resource (no network access needed to open it); the
details are a JSON island (`<script type="application/json">`) keyed by the
SVG element ids; text reaches the page only through `textContent`, so no
name or source line can inject markup.
"""
import json
from html import escape

from graphc.viz.model import format_bytes

STYLE = """
body { margin: 0; font-family: Helvetica, Arial, sans-serif; display: flex; height: 100vh; }
#graph { flex: 1; overflow: auto; background: #fff; }
#panel { width: 420px; border-left: 1px solid #d1d5db; padding: 12px; overflow: auto;
         background: #f9fafb; font-size: 13px; }
#panel h1 { font-size: 15px; margin: 0 0 6px; }
#panel h2 { font-size: 14px; margin: 14px 0 6px; }
#panel table { border-collapse: collapse; width: 100%; }
#panel td { border-top: 1px solid #e5e7eb; padding: 3px 4px; vertical-align: top; }
#panel td:first-child { color: #6b7280; width: 90px; }
#panel pre { background: #111827; color: #e5e7eb; padding: 8px; font-size: 11px;
             overflow: auto; }
#filter { width: 100%; box-sizing: border-box; margin: 6px 0; padding: 4px; }
.selected rect, .selected ellipse, .selected polygon, .selected path {
  stroke-width: 3px !important; }
.match rect, .match ellipse, .match polygon {
  stroke: #f59e0b !important; stroke-width: 3px !important; }
"""

SCRIPT = """
const details = JSON.parse(document.getElementById('graphc-details').textContent);
const info = document.getElementById('details');
function row(table, key, value) {
  const tr = table.insertRow();
  tr.insertCell().textContent = key;
  tr.insertCell().textContent = value;
}
function show(id) {
  const d = details[id]; if (!d) return;
  document.querySelectorAll('.selected').forEach(e => e.classList.remove('selected'));
  const el = document.getElementById(id); if (el) el.classList.add('selected');
  info.replaceChildren();
  const h = document.createElement('h2'); h.textContent = d.title; info.appendChild(h);
  const table = document.createElement('table');
  for (const [k, v] of Object.entries(d.fields)) row(table, k, v);
  info.appendChild(table);
  const code = d.code || (d.cluster && details[d.cluster] ? details[d.cluster].code : null);
  if (code) {
    const pre = document.createElement('pre'); pre.textContent = code; info.appendChild(pre);
  }
}
document.getElementById('graph').addEventListener('click', e => {
  const el = e.target.closest('g.node, g.cluster, g.buffer'); if (el) show(el.id);
});
document.getElementById('filter').addEventListener('input', e => {
  const q = e.target.value.toLowerCase();
  for (const [id, d] of Object.entries(details)) {
    const el = document.getElementById(id); if (!el) continue;
    const hit = q && (d.title + ' ' + Object.values(d.fields).join(' ')).toLowerCase().includes(q);
    el.classList.toggle('match', Boolean(hit));
  }
});
"""


def view_details(view):
    """{element id: {"title", "fields", "code", "cluster"}} for every node and cluster of a
    View; a node shows the code of its cluster (its kernel's generated source)."""
    cluster_of = view.cluster_of()
    details = {}
    for node in view.nodes.values():
        title = node.info.get("name") or " / ".join(node.label[:1])
        details[node.id] = {"title": title, "fields": node.info, "code": None,
                            "cluster": cluster_of.get(node.id)}
    for cluster in view.clusters:
        details[cluster.id] = {"title": " ".join(cluster.label[:1]), "fields": cluster.info,
                               "code": cluster.code}
    return details


def memory_details(data):
    """Side-panel entries for the buffers of a memory picture (memory.memory_data)."""
    details = {}
    for b in data["buffers"]:
        fields = {"op": b["op"], "shape": b["shape"], "dtype": b["dtype"],
                  "bytes": f"{b['bytes']} ({format_bytes(b['bytes'])})",
                  "offset": str(b["offset"]), "live steps": f"[{b['start']}, {b['end']}]",
                  "role": b["role"] or "", "source line": b["source line"]}
        if b["shares"]:
            fields["in place of"] = b["shares"]
        details[b["id"]] = {"title": b["node"], "fields": fields, "code": None}
    return details


def render_html(title_lines, svg, details, summary=None):
    """The page: `svg` inline, `details` in the panel, `summary` (text) above them."""
    island = json.dumps(details).replace("</", "<\\/").replace("<!--", "<\\!--")
    title = escape(title_lines[0] if title_lines else "graphc")
    heading = "".join(f"<div>{escape(line)}</div>" for line in title_lines[1:])
    overview = f"<h2>summary</h2><pre>{escape(summary)}</pre>" if summary else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<div id=\"graph\">\n{svg}</div>\n"
            f"<aside id=\"panel\"><h1>{title}</h1>{heading}"
            "<input id=\"filter\" type=\"search\" placeholder=\"highlight: name, op, shape...\">"
            "<div id=\"details\"><p>Click a node, kernel or buffer for its details.</p></div>"
            f"{overview}</aside>\n"
            f"<script type=\"application/json\" id=\"graphc-details\">{island}</script>\n"
            f"<script>{SCRIPT}</script>\n</body>\n</html>\n")
