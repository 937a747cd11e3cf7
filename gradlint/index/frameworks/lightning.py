"""Lightning: `Trainer(gradient_clip_val=...)`, the module `trainer.fit(module)` trains, and
whether that module clips for itself (an override of `configure_gradient_clipping`, manual
optimization with `self.clip_gradients`)."""

from __future__ import annotations

import libcst as cst

from gradlint.analysis.calls import arg_value
from gradlint.analysis.model import Kind
from gradlint.index.facts import ModelFacts
from gradlint.index.frameworks.places import bound_value, context_of, index_of
from gradlint.index.frameworks.reader import SettingReader
from gradlint.index.frameworks.records import LIGHTNING_TRAINERS, LightningFit, LightningTrainer


def find_trainers(reader: SettingReader) -> list[LightningTrainer]:
    trainers = [
        LightningTrainer(
            site.node,
            site,
            reader.setting(site.node, "gradient_clip_val", site.function),
            reader.setting(site.node, "gradient_clip_algorithm", site.function),
        )
        for site in reader.model.calls
        if site.qualified in LIGHTNING_TRAINERS
    ]
    if not trainers:
        return []
    by_call = {id(trainer.call): trainer for trainer in trainers}
    for site in reader.model.calls:
        func = site.node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "fit"):
            continue
        context = context_of(reader.model, site.function)
        before = index_of(context, site.node) if context is not None else 0
        receiver = bound_value(func.value, reader.model, context, before)
        trainer = by_call.get(id(receiver)) if isinstance(receiver, cst.Call) else None
        if trainer is None:
            continue
        argument = arg_value(site.node, 0, "model")
        module = None
        if argument is not None:
            module = reader.project.facts.of_expression(
                argument, reader.path, reader.model, context, before, site.function
            )
        trainer.fits.append(LightningFit(site.node, module))
    return trainers


def clip_events_of(project, facts: ModelFacts, skip: tuple[str, ...] = ()) -> list:
    """The clip events in the methods of a module's own class (methods named in `skip` left out),
    read from the libcst model of the class's file (a Lightning module's file, once per question)."""
    info = _class_info(project, facts)
    if info is None:
        return []
    return [
        event
        for name, method in info.methods.items()
        if name not in skip
        for event in method.body.events()
        if event.kind is Kind.CLIP
    ]


def clips_itself(project, facts: ModelFacts, trainer_disables: bool = False) -> bool:
    """A Lightning module that takes care of clipping itself, whatever the Trainer's `gradient_clip_val`.

    It overrides `configure_gradient_clipping`, or clips in one of its methods (`self.clip_gradients`
    under manual optimization, `clip_grad_norm_` in `on_before_optimizer_step`; a clip in the wrong
    place is GL102's finding, not a missing clip). With `trainer_disables` (the Trainer passes 0), an
    override only counts when it clips with a threshold of its own.
    """
    if clip_events_of(project, facts, skip=("configure_gradient_clipping",)):
        return True
    if facts.configures_clipping:
        return override_clips_with_own_value(project, facts) if trainer_disables else True
    if trainer_disables:
        return False
    return facts.clips_manually


def override_clips_with_own_value(project, facts: ModelFacts) -> bool:
    """`configure_gradient_clipping` clips with a threshold of its own, not the Trainer's `gradient_clip_val`.

    An override that only passes `gradient_clip_val` on clips nothing when the Trainer says 0.
    """
    if facts.info is None or not facts.configures_clipping:
        return False
    info = _class_info(project, facts)
    method = info.methods.get("configure_gradient_clipping") if info is not None else None
    if method is None:
        return True  # inherited from a project base class: assume it decides on its own
    params = set(method.params[2:]) | {"gradient_clip_val"}
    for event in method.body.events():
        if event.kind is not Kind.CLIP:
            continue
        threshold = event.threshold
        if threshold is not None and not (isinstance(threshold, cst.Name) and threshold.value in params):
            return True
    return False


def _class_info(project, facts: ModelFacts):
    """The libcst record of the module's class (its file's model)."""
    if facts.info is None or facts.path is None:
        return None
    model = project.model(facts.path)
    return model.classes.get(facts.info.name) if model is not None else None
