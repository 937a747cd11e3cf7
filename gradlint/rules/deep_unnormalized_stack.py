"""GL204 deep-unnormalized-stack: Eight or more Linear/Conv layers are stacked with no normalization layer and no residual connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gradlint.analysis.inits import init_ops
from gradlint.analysis.layers import STACK_KINDS, function_of, layer_kind, torch_nn_name
from gradlint.analysis.model import FileModel, in_class
from gradlint.findings import Severity
from gradlint.index.layer_config import resolve_layer
from gradlint.index.stacks import (
    MAX_LISTED,
    Placed,
    Stack,
    class_has_norm_layer,
    class_normalizes,
    class_stack,
    has_residual,
    stacks,
)
from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext


class DeepUnnormalizedStack(Rule):
    code = "GL204"
    name = "deep-unnormalized-stack"
    severity = Severity.WARNING
    summary = "Eight or more Linear/Conv layers are stacked with no normalization layer and no residual connection."
    options = (
        Option("min-depth", 8, "Report stacks with at least this many Linear/Conv layers."),
    )
    triggers = ("Linear", "Conv")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        minimum = ctx.options["min-depth"]
        if not any(layer_kind(site.qualified) in STACK_KINDS for site in model.calls):
            return
        for stack in stacks(ctx.project, ctx.source.path, model):
            if not any(p.is_layer for p in stack.placed) or any(p.is_norm for p in stack.placed):
                continue
            owner = stack.owner
            if owner is not None and (has_residual(model, owner) or class_normalizes(model, owner)):
                continue
            if stack.container is not None and torch_nn_name(model.qualify_call(stack.container)) == "ModuleList":
                if owner is not None and class_has_norm_layer(model, owner):
                    continue
            if stack.container is None:
                stack.placed = class_stack(model, stack, minimum)
            layers = [p for p in stack.placed if p.is_layer]
            depth = sum((p.count.value or 0) * p.layers_each for p in layers)
            if depth < minimum:
                continue
            data = _data(model, ctx, stack, depth)
            origins_text = "; ".join(dict.fromkeys(o for p in layers for o in p.count.origins if o))
            data["depth_origin"] = f"{depth} layers stacked at {ctx.project.where(ctx.source.path, stack.node)}" + (
                f" ({origins_text})" if origins_text else "")
            kinds = sorted({k for p in layers for k in ([p.kind] if p.block is None else [b[3] for b in p.block.layers])})
            shown = "/".join(f"`nn.{kind}`" for kind in kinds)
            blocks = [p for p in layers if p.block is not None]
            inside = ""
            if blocks:
                count = sum(p.count.value or 0 for p in blocks)
                names = ", ".join(dict.fromkeys(f"`{p.block.name}`" for p in blocks))
                inside = f" in {count} {names} blocks ({blocks[0].block.where})"
            origins = [o for p in layers for o in p.count.origins if o]
            why = f" ({'; '.join(dict.fromkeys(origins))})" if origins else ""
            initialised = _initialised(model, stack)
            yield Diagnostic(
                stack.node,
                f"{stack.what} stacks {depth} {shown} layers{inside}{why} with no normalization layer and no residual "
                f"connection: the gradient is a product of {depth} layer Jacobians, so unless the init is exactly "
                f"right it explodes or vanishes with depth"
                + ("." if initialised else "; with PyTorch's default init, which these layers keep, it shrinks by "
                   "about 0.4 per relu layer (it vanishes; a larger init or a weight that grows in training makes it "
                   "explode)."),
                hint=(
                    "Insert a normalization layer (`nn.LayerNorm`/`nn.BatchNorm1d` for Linear, `nn.BatchNorm2d`/"
                    "`nn.GroupNorm` for Conv) after each layer, or make the blocks residual (`x = x + block(x)`)."
                ),
                data=data,
                severity=None if initialised else Severity.INFO,
            )


def _initialised(model: FileModel, stack: Stack) -> bool:
    """Whether the code may give the stack's layers an init of its own: an init operation (or
    `.apply(...)`) in the class that holds the stack, or in the function that builds its container.
    Without one the layers keep PyTorch's default init (Linear/Conv: U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), gain 1/sqrt(3)), under which the gradient shrinks with depth (about 0.41 per
    relu layer) rather than explodes: the finding is info."""
    functions = [f for f in model.all_functions if stack.owner is not None and in_class(f, stack.owner)]
    if stack.container is not None:
        builder = function_of(model, stack.container)
        if builder is not None:
            functions.append(builder)
    if not functions:
        functions = [None]
    for function in functions:
        if init_ops(model, function):
            return True
    return any(
        site.function in functions and site.callee.rsplit(".", 1)[-1] == "apply" for site in model.calls
    )


# ------------------------------------------------------------------------- data


def _data(model: FileModel, ctx: RuleContext, stack: Stack, depth: int) -> dict:
    """`{"layers": [...], "depth": N, "widths": [[in, out], ...], "modules": [...]}` in build order."""
    ordered = sorted(stack.placed, key=lambda p: p.index)
    sequence: list[Placed] = []
    unresolved: list[str] = []
    position = 0
    while position < len(ordered):
        group_key = ordered[position].repeats
        end = position
        while end < len(ordered) and ordered[end].repeats == group_key:
            end += 1
        block = ordered[position:end]
        times = block[0].count.value
        if times is None:
            unresolved.append(f"repetitions of {', '.join(p.kind for p in block)}")
            times = 0
        elif any(p.count.value != times for p in block):
            times = 1  # mixed repetition counts inside one group: keep the source order once each
        for _ in range(times):
            sequence.extend(block)
            if len(sequence) > MAX_LISTED:
                break
        position = end
    widths: list[Any] = []
    layers: list[str] = []
    modules: list[str] = []
    for placed in sequence[:MAX_LISTED]:
        if placed.block is not None:
            inner = placed.block.layers
            for path, block_model, site, kind in inner:
                layers.append(kind)
                modules.append(kind)
                widths.append(_widths(ctx, path, block_model, site, kind, unresolved))
            if placed.block.activation:
                modules.append(_MODULE_OF.get(placed.block.activation, placed.block.activation))
            continue
        modules.append(placed.kind)
        if not placed.is_layer:
            continue
        layers.append(placed.kind)
        widths.append(_widths(ctx, ctx.source.path, model, placed.site, placed.kind, unresolved))
    return {
        "layers": layers,
        "depth": depth,
        "widths": widths,
        "modules": modules,
        "unresolved": unresolved,
    }


_MODULE_OF = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU", "silu": "SiLU",
              "leaky_relu": "LeakyReLU", "elu": "ELU", "selu": "SELU"}


def _widths(ctx: RuleContext, path: Any, model: Any, site: Any, kind: str, unresolved: list[str]) -> list:
    """[in, out] of one Linear/Conv layer, resolved in the scope it is built in."""
    config = resolve_layer(ctx.project, path, model, site.node, kind, site.function)
    names = ("in_features", "out_features") if kind == "Linear" else ("in_channels", "out_channels")
    pair = [config.get(names[0]), config.get(names[1])]
    if None in pair:
        note = f"widths of nn.{kind}"
        if note not in unresolved:
            unresolved.append(note)
    return pair
