"""GL402 no-weight-regularization: The optimizer of a recurrent model has no weight decay and its step has no gradient clipping."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradlint.analysis.calls import arg_value, kwarg_value
from gradlint.analysis.model import FileModel, Kind
from gradlint.analysis.steps import TrainingStep, is_optimizer_step, step_instances
from gradlint.analysis.values import string_value
from gradlint.findings import Severity
from gradlint.index.optimizer_clipping import optimizer_clipping
from gradlint.index.optimizers import OptimizerSite
from gradlint.index.trained import Trained, trained
from gradlint.rules._helpers import fmt, origin_text, text, trained_model_name, unclipped
from gradlint.rules._training import weight_training
from gradlint.rules.base import Diagnostic, Rule, RuleContext

# torch.optim's default weight_decay per optimizer, and the position of the argument
# (None: the optimizer has no weight_decay argument).
TORCH_DEFAULTS: dict[str, tuple[float, int] | None] = {
    "SGD": (0.0, 4),
    "Adam": (0.0, 4),
    "AdamW": (0.01, 4),
    "RMSprop": (0.0, 4),
    "Adagrad": (0.0, 3),
    "Adadelta": (0.0, 4),
    "Adamax": (0.0, 4),
    "NAdam": (0.0, 4),
    "RAdam": (0.0, 4),
    "ASGD": (0.0, 5),
    "LBFGS": None,
    "Rprop": None,
    "SparseAdam": None,
}
OTHER_DEFAULTS = {"transformers.AdamW": (0.0, 4), "transformers.optimization.AdamW": (0.0, 4)}


class NoWeightRegularization(Rule):
    code = "GL402"
    name = "no-weight-regularization"
    severity = Severity.INFO
    summary = "The optimizer of a recurrent model has no weight decay and its step has no gradient clipping."
    triggers = ("backward",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        path = ctx.source.path
        project = ctx.project
        reported: set[str] = set()
        for instances in step_instances(model):
            if not unclipped(instances):
                continue
            found = weight_training(instances, path, project)
            if found is None:
                continue  # a check in a test, or an optimizer over plain tensors
            # Every optimizer that applies this backward's gradients (an encoder's and a decoder's).
            for step, trained_here in _optimizers_of(instances[0], found, project, path):
                site = trained_here.site
                if site is None or not site.constructor or optimizer_clipping(site, project) is not None:
                    continue
                facts = trained_here.recurrent
                if facts is None:
                    continue
                decay = _weight_decay(site, project)
                if decay is None:
                    continue
                how = decay[1]
                optimizer_step = step.step.event
                here = site.path == path
                node = site.call if here else optimizer_step.node
                key = project.where(site.path, site.call)
                if key in reported:
                    continue
                reported.add(key)
                layer = facts.recurrent[0]
                where_layer = project.where(layer.path, layer.node)
                built = "" if here else f" (built at {key})"
                message = (
                    f"`{site.family}`{built} trains `{facts.name}`, which has a recurrent layer ({layer.label} at "
                    f"{where_layer}), with {how}, and its step ({text(model, optimizer_step)} at line "
                    f"{ctx.line_of(optimizer_step.node)}) has no gradient clipping: nothing bounds the growth of the "
                    "recurrent weights, whose gain sets how fast gradients grow over time."
                )
                names = trained_here.names_at(project.function_summary(path, step.context.function))
                params = f"{names[0] if names else trained_model_name(step)}.parameters()"
                hint = (
                    f"Clip between backward and step (`torch.nn.utils.clip_grad_norm_({params}, max_norm=1.0)`), "
                    f"or add a small `weight_decay` (e.g. 1e-5) to `{site.family}(...)`"
                    + (" or use `torch.optim.AdamW`." if site.family == "Adam" else ".")
                )
                related = ((optimizer_step.node, "the unclipped optimizer step"),) if here else ()
                yield Diagnostic(node, message, hint=hint, related=related)


def _optimizers_of(step: TrainingStep, found: Trained, project, path) -> Iterator[tuple[TrainingStep, Trained]]:
    """The step's optimizer, then those of the other unclipped steps on the same backward."""
    yield step, found
    context = step.context
    for occ in context.occurrences[step.backward.index + 1 :]:
        if occ.kind is Kind.BACKWARD:
            break
        if occ is step.step or occ.kind is not Kind.STEP or not is_optimizer_step(context, occ):
            continue
        sibling = TrainingStep(context, step.backward, occ)
        if sibling.clips or sibling.misplaced_clips:
            continue
        other = trained(sibling, project, path)
        if not other.tensors_only:
            yield sibling, other


def _weight_decay(site: OptimizerSite, project) -> tuple[float, str] | None:
    """(0, "weight_decay=0 (...)") when the optimizer applies no weight decay; None when it does or is unknown."""
    qualified = site.qualified
    if qualified.startswith("torch.optim."):
        defaults = TORCH_DEFAULTS.get(site.family, ())
    else:
        defaults = OTHER_DEFAULTS.get(qualified, ())
    if defaults is None:
        return None  # no weight_decay argument at all (LBFGS, Rprop, SparseAdam)
    position = defaults[1] if defaults else -1
    node = arg_value(site.call, position, "weight_decay") if position >= 0 else kwarg_value(site.call, "weight_decay")
    if node is not None:
        resolved = project.resolver.resolve(node, site.scope)
        if resolved is None or isinstance(resolved.value, bool) or not isinstance(resolved.value, (int, float)):
            return None
        if resolved.value != 0:
            return None
        origin = f" ({origin_text(resolved.origin)})" if resolved.origin else ""
        return 0.0, f"`weight_decay={fmt(resolved.value)}`{origin}"
    if _groups_decay(site, project):
        return None
    if not defaults or defaults[0] != 0:
        return None  # unknown default, or a decaying one (torch's AdamW: 0.01)
    return 0.0, "no `weight_decay` (the default is 0)"


def _groups_decay(site: OptimizerSite, project) -> bool:
    """Parameter groups (`[{"params": ..., "weight_decay": 0.01}, ...]`) that set a weight decay (or may)."""
    params = arg_value(site.call, 0, "params")
    if isinstance(params, cst.Name):
        from gradlint.index.weights import bind_name

        bound = bind_name(params.value, site.scope)
        params = bound.value if bound is not None else params
    if not isinstance(params, (cst.List, cst.Tuple)):
        return False
    for element in params.elements:
        group = element.value
        if not isinstance(group, cst.Dict):
            continue
        for entry in group.elements:
            if isinstance(entry, cst.DictElement) and string_value(entry.key) == "weight_decay":
                resolved = project.resolver.resolve(entry.value, site.scope)
                if resolved is None or resolved.value != 0:
                    return True
    return False
