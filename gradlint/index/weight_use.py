"""What the code does with a square weight that is not a recurrent layer's: the module the dynamic
probe rebuilds for a GL301 on a square `nn.Linear` / `nn.Parameter` and for a GL302.

- A layer in an `nn.Sequential` / `nn.ModuleList` stack: that stack (depth, widths and the
  activations from the code, gradlint.index.stacks).
- A weight applied in a loop whose state it carries, fed a sequence element per step
  (`h = torch.tanh(h @ self.W_hh + x[t])`): a recurrence, `{"layer": "RNNCell"}` with the
  activation of the code.
- A weight applied N times in a loop that feeds nothing new (`for _ in range(depth): x =
  torch.relu(self.fc(x))`): a stack of N layers sharing the weight (`tied`), N from the code.
- A method that maps a state it is given through the weight and returns it (`forward(self, x, h):
  return torch.tanh(h @ self.W + ...)`): a cell, run over a sequence length the code does not
  state (the probe then reports where the gradient crosses the threshold).
- Applied once: one layer (its gain does not compound).

`square_weight_use(...)` returns that description as finding data (`layer`, sizes, `depth`,
`depth_origin`, `nonlinearity`, `tied`, `seq_len`...), and `matrix_evidence(...)` says whether the
code multiplies anything by the weight at all (GL302 reports only weights used as a matrix).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import libcst as cst

from gradlint.analysis.layers import layer_kind
from gradlint.analysis.model import FileModel, Function
from gradlint.analysis.names import dotted_name
from gradlint.analysis.uses import MatrixUse, matrix_uses
from gradlint.index.counts import loop_count
from gradlint.analysis.tensors import assigned_to
from gradlint.index.probe_data import model_call
from gradlint.index.stacks import stacks

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex


def weight_uses(model: FileModel, call: cst.Call, function: Function | None, call_form: bool) -> tuple[str | None, list[MatrixUse]]:
    """(the name the weight is kept under, its matrix uses) for the construction `call`
    (`nn.Parameter(...)`, `nn.Linear(...)`, a requires_grad tensor)."""
    target = assigned_to(model, call, function)
    if target is None or target.count(".") > 1 or (target.count(".") == 1 and not target.startswith("self.")):
        return target, []
    return target, matrix_uses(model, target, function, call_form=call_form)


def square_weight_use(project: ProjectIndex, path: Path, call: cst.Call, n: int | None, *, layer: bool) -> dict | None:
    """The module the probe should rebuild for the square weight built by `call` (a node of the
    file's libcst model or one a summary parsed), or None when the code never multiplies by it."""
    found = model_call(project, path, call)
    if found is None:
        return None
    model, node, function = found
    if layer:
        stacked = _container_stack(project, path, model, node)
        if stacked is not None:
            return stacked
    target, uses = weight_uses(model, node, function, call_form=layer)
    if not uses:
        return None
    bias = _bias(project, path, model, node, function) if layer else False
    return describe_uses(project, path, uses, n, target, bias)


def describe_uses(project: ProjectIndex, path: Path, uses: list[MatrixUse], n: int | None, target: str | None,
                  bias: bool) -> dict:
    width = n
    looped = [use for use in uses if use.loop is not None and use.carried]
    if looped:
        use = looped[0]
        where = project.where(path, use.node)
        if use.indexed_input:
            data: dict[str, Any] = {"layer": "RNNCell", "hidden_size": width, "input_size": width,
                                    "nonlinearity": use.activation or "identity", "bias": bias,
                                    "use": f"a recurrence at {where}"}
            count = _loop_length(project, path, use)
            if count is not None:
                data.update(seq_len=count[0], seq_len_name="loop", seq_len_origin=f"{count[1]} at {where}")
            return data
        count = _loop_length(project, path, use)
        data = {"layer": "MLP", "width": width, "tied": True, "nonlinearity": use.activation or "identity",
                "bias": bias, "use": f"applied in a loop at {where}"}
        if count is not None:
            data.update(depth=count[0], depth_origin=f"{count[1]} at {where}")
        return data
    cells = [use for use in uses if use.state_map]
    if cells:
        use = cells[0]
        where = project.where(path, use.node)
        return {"layer": "RNNCell", "hidden_size": width, "input_size": width,
                "nonlinearity": use.activation or "identity", "bias": bias,
                "use": f"a cell: `{use.function.name if use.function else '?'}` maps its state through the weight "
                       f"at {where}"}
    use = uses[0]
    where = project.where(path, use.node)
    return {"layer": "MLP", "width": width, "depth": 1, "depth_origin": f"applied once at {where}",
            "nonlinearity": use.activation or "identity", "bias": bias, "use": f"applied once at {where}"}


def matrix_evidence(model: FileModel, call: cst.Call, function: Function | None) -> list[MatrixUse]:
    """The matrix uses of the tensor built by `call` (empty: never used as a matrix here)."""
    return weight_uses(model, call, function, call_form=False)[1]


def _loop_length(project: ProjectIndex, path: Path, use: MatrixUse) -> tuple[int, str] | None:
    loop = use.loop
    if not isinstance(loop, cst.For):
        return None
    count = loop_count(loop, project.resolver, project.scope(path, use.function))
    if count.value is None or count.value < 1:
        return None
    origin = "; ".join(o for o in count.origins if o)
    text = " ".join(cst.Module([]).code_for_node(loop.iter).split())
    return count.value, f"`for ... in {text}`" + (f" ({origin})" if origin else "")


def _container_stack(project: ProjectIndex, path: Path, model: FileModel, node: cst.Call) -> dict | None:
    for stack in stacks(project, path, model):
        if stack.container is None or not any(p.site.node is node for p in stack.placed):
            continue
        layers = [p for p in stack.placed if p.is_layer]
        depth = sum(p.count.value or 0 for p in layers)
        if depth < 1:
            return None
        modules = [p.kind for p in sorted(stack.placed, key=lambda p: p.index)]
        activations = [m for m in modules if m not in ("Linear",) and layer_kind(f"torch.nn.{m}") is None]
        origins = [o for p in layers for o in p.count.origins if o]
        where = project.where(path, stack.container)
        origin = f"{depth} layers in `{dotted_name(stack.container.func) or 'nn.Sequential'}` at {where}"
        if origins:
            origin += f" ({'; '.join(dict.fromkeys(origins))})"
        data: dict[str, Any] = {"layer": "MLP", "depth": depth, "depth_origin": origin, "modules": modules}
        if activations:
            data["nonlinearity"] = activations[0]
        else:
            data["nonlinearity"] = "identity"
        return data
    return None


def _bias(project: ProjectIndex, path: Path, model: FileModel, node: cst.Call, function: Function | None) -> bool:
    from gradlint.index.layer_config import resolve_layer

    config = resolve_layer(project, path, model, node, "Linear", function)
    return config.get("bias") is not False


__all__ = ["describe_uses", "matrix_evidence", "square_weight_use", "weight_uses"]
