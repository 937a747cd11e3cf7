"""Lightning: `Trainer(gradient_clip_val=...)`, the module `trainer.fit(module)` trains, and
whether that module clips for itself (an override of `configure_gradient_clipping`, manual
optimization with `self.clip_gradients`).

The Trainer may also be built where this file cannot show it: by a factory function or a module
of another file (`trainer = build_trainer(cfg)`, `from setup import trainer`: its `Trainer(...)`
call is read there), by `LightningCLI` from YAML configs (lightning_cli.py), or by Hydra from a
`conf/` tree (hydra.py)."""

from __future__ import annotations

import libcst as cst

from gradlint.analysis.calls import arg_value
from gradlint.analysis.model import Kind, last_assignment
from gradlint.analysis.names import dotted_name
from gradlint.analysis.walk import children
from gradlint.index.facts import ModelFacts
from gradlint.analysis.calls import kwarg_value
from gradlint.index.frameworks import deepspeed, hydra, lightning_cli
from gradlint.index.frameworks.configs import setting_from, where
from gradlint.index.frameworks.places import bound_value, context_of, index_of
from gradlint.index.frameworks.reader import SettingReader, keyword_arg
from gradlint.index.frameworks.records import (
    ABSENT,
    DEEPSPEED_STRATEGIES,
    HYDRA_INSTANTIATE,
    LIGHTNING_TRAINERS,
    UNRESOLVED,
    DeepSpeedConfig,
    LightningFit,
    LightningTrainer,
    Setting,
)
from gradlint.index.summary import FunctionSummary


def find_trainers(reader: SettingReader) -> list[LightningTrainer]:
    """The file's Trainers: `Trainer(...)` calls (with `**cfg.trainer` read from a Hydra config),
    `hydra.utils.instantiate(cfg.trainer)` calls of a Hydra app, `LightningCLI(...)` calls (one per
    config file beside the script), and Trainers built in another file that this file fits."""
    app = hydra.app_of(reader)
    trainers = []
    for site in reader.model.calls:
        if site.qualified in LIGHTNING_TRAINERS:
            trainers.append(_trainer_call(reader, site, app))
        elif site.qualified in HYDRA_INSTANTIATE and app is not None:
            found = hydra.instantiated_trainer(reader, site, app)
            if found is not None:
                trainers.append(found)
    by_call = {id(trainer.call): trainer for trainer in trainers}
    remote: dict[int, LightningTrainer] = {}
    for site in reader.model.calls:
        func = site.node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "fit"):
            continue
        context = context_of(reader.model, site.function)
        before = index_of(context, site.node) if context is not None else 0
        receiver = bound_value(func.value, reader.model, context, before)
        trainer = by_call.get(id(receiver)) if isinstance(receiver, cst.Call) else None
        if trainer is None:
            built = _built_elsewhere(reader, func.value, receiver, site)
            if built is None:
                continue
            trainer = remote.setdefault(id(site.node), built)
        argument = arg_value(site.node, 0, "model")
        module = None
        if argument is not None:
            module = reader.project.facts.of_expression(
                argument, reader.path, reader.model, context, before, site.function
            )
            if module is None and app is not None:
                module = hydra.instantiated_model(reader, app, argument, context, before)
        trainer.fits.append(LightningFit(site.node, module))
    found = trainers + list(remote.values()) + lightning_cli.find_cli(reader)
    for trainer in found:
        if not trainer.remote:
            trainer.deepspeed = _strategy_config(reader, trainer)
    return found


def _strategy_config(reader: SettingReader, trainer: LightningTrainer):
    """The DeepSpeed config of the Trainer's strategy: `strategy=DeepSpeedStrategy(config=...)` in
    the call, or `strategy: {class_path: ...DeepSpeedStrategy, init_args: {config: ...}}` in its YAML."""
    if trainer.site.qualified in LIGHTNING_TRAINERS:
        written = keyword_arg(trainer.call, "strategy")
        if written is not None:
            context = context_of(reader.model, trainer.site.function)
            before = index_of(context, trainer.call) if context is not None else 0
            strategy = bound_value(written.value, reader.model, context, before)
            if isinstance(strategy, cst.Call) and reader.model.qualify_call(strategy) in DEEPSPEED_STRATEGIES:
                config = kwarg_value(strategy, "config")
                return deepspeed.deepspeed_config(reader, config, trainer.site) if config is not None else None
    config = trainer.config
    located = config.keys.get("strategy") if config is not None else None
    strategy = located.value if located is not None else None
    if not isinstance(strategy, dict) or not str(strategy.get("class_path", "")).endswith(("DeepSpeedStrategy", "DeepSpeedPlugin")):
        return None
    init_args = strategy.get("init_args")
    written = init_args.get("config") if isinstance(init_args, dict) else None
    if isinstance(written, str) and written.endswith(".json"):
        return deepspeed.json_config(reader, written, (located.path.parent,))
    if isinstance(written, dict):
        if "gradient_clipping" not in written:
            return DeepSpeedConfig("dict", f"the `strategy` config in {where(reader.project, located)}", ABSENT)
        value = written["gradient_clipping"]
        clipping = Setting("value", None, value) if not isinstance(value, dict) else UNRESOLVED
        return DeepSpeedConfig("dict", f"the `strategy` config in {where(reader.project, located)}", clipping)
    return None


def _trainer_call(reader: SettingReader, site, app) -> LightningTrainer:
    clip_val = reader.setting(site.node, "gradient_clip_val", site.function)
    algorithm = reader.setting(site.node, "gradient_clip_algorithm", site.function)
    trainer = LightningTrainer(site.node, site, clip_val, algorithm)
    if app is not None and clip_val is UNRESOLVED:
        config = hydra.unpacked_trainer(reader, site, app)
        if config is not None:
            trainer.clip_val = setting_from(reader.project, config, "gradient_clip_val")
            trainer.clip_algorithm = setting_from(reader.project, config, "gradient_clip_algorithm")
            trainer.source = f"`{config.label}`"
            trainer.config = config
    return trainer


def _built_elsewhere(reader: SettingReader, written: cst.BaseExpression, receiver, site) -> LightningTrainer | None:
    """A Trainer that another file (or a factory function) builds: `trainer = build_trainer(cfg)`
    with `build_trainer` returning a `Trainer(...)`, or `from setup import trainer`."""
    project = reader.project
    if isinstance(receiver, cst.Call):
        callee = dotted_name(receiver.func)
        symbol = project.resolve_callee(reader.path, callee) if callee else None
        if symbol is None or symbol.kind != "function" or not isinstance(symbol.target, FunctionSummary):
            return None
        found = _returned_trainer(project, symbol.path, symbol.target)
        how = f"built by `{callee}`"
    elif receiver is None and isinstance(written, cst.Name):
        symbol = project.resolve(reader.path, written.value)
        if symbol is None or symbol.kind != "value" or symbol.path == reader.path:
            return None
        found = _module_trainer(project, symbol.path, symbol.name)
        how = f"imported as `{written.value}`"
    else:
        return None
    if found is None:
        return None
    path, trainer = found
    where = project.where(path, trainer.call)
    return LightningTrainer(
        site.node, site, trainer.clip_val, trainer.clip_algorithm, source=f"the Trainer {how} ({where})",
        remote=path != reader.path, config=trainer.config,
    )


def _trainers_of(project, path):
    """The `Trainer(...)` calls of another file (read once; a file being read is not read again)."""
    summary = project.summary(path)
    building = project.table("frameworks.building")
    if summary is None or "Trainer" not in summary.text or path in building:
        return None, []
    model = project.model(path)
    if model is None:
        return None, []
    from gradlint.index.frameworks import lightning_trainers

    building[path] = True
    try:
        trainers = lightning_trainers(project, path, model)
    finally:
        building.pop(path, None)
    return model, [t for t in trainers if t.site.qualified in LIGHTNING_TRAINERS]


def _returned_trainer(project, path, function: FunctionSummary):
    model, trainers = _trainers_of(project, path)
    if model is None:
        return None
    target = next((f for f in model.all_functions if f.key == function.key), None)
    if target is None:
        return None
    for node in _returns(target.node):
        value = node.value
        if isinstance(value, cst.Name):
            value = last_assignment(target, value.value)
        trainer = next((t for t in trainers if t.call is value), None)
        if trainer is not None:
            return path, trainer
    return None


def _module_trainer(project, path, name: str):
    model, trainers = _trainers_of(project, path)
    if model is None:
        return None
    value = model.constants.get(name)
    trainer = next((t for t in trainers if t.call is value), None)
    return (path, trainer) if trainer is not None else None


def _returns(function: cst.FunctionDef) -> list[cst.Return]:
    found, stack = [], [function.body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.BaseExpression)):
            continue
        if isinstance(node, cst.Return):
            if node.value is not None:
                found.append(node)
            continue
        stack.extend(children(node))
    return found


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
