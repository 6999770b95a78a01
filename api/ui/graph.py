"""A lineage graph laid out in layers, drawn as SVG on the server (no script needed to read it).

Layers follow the edges (a node sits one layer right of the furthest node that feeds it, a
longest-path layering; edges that would close a cycle are drawn but do not move nodes);
within a layer nodes keep the order of the mean position of what feeds them (one barycentre
pass), which keeps most edges short and uncrossed for the graphs lineage has.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 44, 70, 18, 16
#: Past this many nodes the picture is unreadable: the page says so and lists them instead.
MAX_DRAWN = 400


@dataclass(frozen=True)
class Placed:
    id: str
    kind: str
    label: str
    sub: str
    href: str | None
    x: int
    y: int
    focus: bool


@dataclass(frozen=True)
class Line:
    x1: int
    y1: int
    x2: int
    y2: int
    kind: str


@dataclass(frozen=True)
class Drawing:
    nodes: list[Placed]
    lines: list[Line]
    width: int
    height: int


def _label(node: dict[str, Any]) -> tuple[str, str, str | None]:
    kind = str(node.get("kind", ""))
    if kind == "run":
        run_id = str(node.get("run_id", ""))
        workflow = str(node.get("workflow") or "")
        return (
            f"run {run_id[:8]}",
            f"{workflow} · expunged" if node.get("expunged") else workflow,
            f"/runs/{quote(run_id)}",
        )
    if kind == "task":
        run_id = str(node.get("run_id", ""))
        return str(node.get("name", "")), f"task of {run_id[:8]}", f"/runs/{quote(run_id)}#timeline"
    if kind == "file":
        return str(node.get("path") or "file"), f"sha256 {str(node.get('sha256', ''))[:12]}", None
    name, namespace = str(node.get("name", "")), str(node.get("namespace") or "")
    href = f"/lineage?{_query(node)}" if kind in ("dataset", "job") else None
    return name, f"{kind} · {namespace}", href


def _query(node: dict[str, Any]) -> str:
    return f"node_id={quote(str(node.get('marquez_id') or node['id']), safe='')}"


def layers(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: longest path from a source, ignoring edges that close a cycle."""
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
    order: list[str] = []
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in ids:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    layer = dict.fromkeys(ids, 0)
    for node in reversed(order):  # topological order of the acyclic part
        for nxt in succ[node]:
            if (node, nxt) not in back and nxt in layer:
                layer[nxt] = max(layer[nxt], layer[node] + 1)
    return layer


def draw(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], focus: str | None) -> Drawing:
    ids = [str(n["id"]) for n in nodes]
    known = set(ids)
    pairs = [(str(e["source"]), str(e["target"])) for e in edges]
    pairs = [(a, b) for a, b in pairs if a in known and b in known]
    layer = layers(ids, pairs)
    columns: dict[int, list[str]] = defaultdict(list)
    for node_id in ids:
        columns[layer[node_id]].append(node_id)
    preds: dict[str, list[str]] = defaultdict(list)
    for a, b in pairs:
        preds[b].append(a)
    row: dict[str, float] = {}
    for col in sorted(columns):
        members = columns[col]
        if col > 0:
            members.sort(key=lambda n: sum(row.get(p, 0) for p in preds[n]) / max(1, len(preds[n])))
        for index, node_id in enumerate(members):
            row[node_id] = index
    tallest = max((len(m) for m in columns.values()), default=0)
    by_id = {str(n["id"]): n for n in nodes}
    placed: dict[str, Placed] = {}
    for col, members in columns.items():
        offset = (tallest - len(members)) * (NODE_H + GAP_Y) / 2
        for index, node_id in enumerate(members):
            label, sub, href = _label(by_id[node_id])
            placed[node_id] = Placed(
                id=node_id,
                kind=str(by_id[node_id].get("kind", "")),
                label=label,
                sub=sub,
                href=href,
                x=PAD + col * (NODE_W + GAP_X),
                y=int(PAD + offset + index * (NODE_H + GAP_Y)),
                focus=node_id == focus,
            )
    lines = [
        Line(
            placed[a].x + NODE_W,
            placed[a].y + NODE_H // 2,
            placed[b].x,
            placed[b].y + NODE_H // 2,
            str(e.get("kind", "")),
        )
        for e in edges
        if (a := str(e["source"])) in placed and (b := str(e["target"])) in placed
    ]
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max(1, tallest) * (NODE_H + GAP_Y) - GAP_Y
    return Drawing(list(placed.values()), lines, width, height)


def from_marquez(graph: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Marquez's ``{graph: [{id, type, data, inEdges, outEdges}]}`` as nodes and edges."""
    nodes, edges = [], []
    for entry in graph:
        data = entry.get("data") or {}
        kind = "dataset" if str(entry.get("type", "")).upper() == "DATASET" else "job"
        nodes.append(
            {
                "id": entry["id"],
                "marquez_id": entry["id"],
                "kind": kind,
                "name": data.get("name", entry["id"]),
                "namespace": data.get("namespace", ""),
            }
        )
        for edge in entry.get("outEdges") or []:
            edges.append({"source": edge["origin"], "target": edge["destination"], "kind": "flows"})
    return nodes, edges
