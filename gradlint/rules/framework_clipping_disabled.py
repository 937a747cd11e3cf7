"""GL106 framework-clipping-disabled: Clipping is switched off where a framework (Lightning, Hugging Face, DeepSpeed) owns the training loop."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterator

from gradlint.analysis.model import FileModel
from gradlint.findings import Severity
from gradlint.index import frameworks
from gradlint.rules.base import Diagnostic, Rule, RuleContext

if TYPE_CHECKING:
    from gradlint.index.facts import ModelFacts


class FrameworkClippingDisabled(Rule):
    code = "GL106"
    name = "framework-clipping-disabled"
    severity = Severity.WARNING
    summary = "Clipping is switched off where a framework (Lightning, Hugging Face, DeepSpeed) owns the training loop."
    # `deepspeed`: `deepspeed.initialize` or an import from deepspeed ("initialize" alone is in most model files).
    # `.fit(`: a Trainer built in another file; `LightningCLI` and `hydra`: a Trainer built from a config.
    triggers = ("Trainer", "TrainingArguments", "deepspeed", "LightningCLI", "hydra", ".fit(")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        project, path = ctx.project, ctx.source.path
        if project is None:
            return
        if frameworks.in_test_code(path, project):
            return  # a Trainer in test code checks behaviour for a few steps; it is no training run
        yield from _one_per_call(
            (trainer, self._lightning(model, trainer, ctx)) for trainer in frameworks.lightning_trainers(project, path, model)
        )
        for arguments in frameworks.hf_training_arguments(project, path, model):
            yield from self._hugging_face(model, arguments, ctx)
        for engine in frameworks.deepspeed_engines(project, path, model):
            diagnostic = self._deepspeed(model, engine, ctx)
            if diagnostic is not None:
                yield diagnostic

    # ------------------------------------------------------------------ Lightning

    def _lightning(self, model: FileModel, trainer: frameworks.LightningTrainer, ctx: RuleContext) -> Diagnostic | None:
        project = ctx.project
        setting = trainer.clip_val
        call = _short(trainer.site.callee)
        if trainer.source and not trainer.remote:
            call += f" with {trainer.source}"
        modules = [fit.module for fit in trainer.fits if fit.module is not None]
        explicit = setting.is_value and setting.origin == "" and setting.value is None
        disabled = setting.is_value and (explicit or (setting.number() is not None and setting.number() == 0))
        if disabled and trainer.remote:
            return None  # reported where the Trainer is built
        if trainer.deepspeed_clips():
            return None  # the DeepSpeed strategy's config clips on its own value; GL113 judges a disagreement
        if disabled:
            # 0 (or a literal None) turns Lightning's clipping off whatever the module is, unless the
            # module clips with a value of its own.
            if any(frameworks.clips_itself(project, module, trainer_disables=True) for module in modules):
                return None
            module = modules[0] if modules else None
            named = _short(trainer.site.callee) if setting.node is None and setting.origin else call
            message = (
                f"{setting.describe('gradient_clip_val', model.module)} in {named} turns gradient clipping off: "
                f"{frameworks.LIGHTNING_DEFAULT}"
            )
            if module is not None and module.recurrent:
                message += f", and {module.describe_risk(project)}"
            return Diagnostic(
                setting.node or trainer.call,
                message,
                hint=_lightning_hint(module, trainer),
            )
        if setting.state != "absent" and not (setting.is_value and setting.value is None):
            return None  # a value (or one that cannot be resolved) is set
        for module in modules:
            if not module.recurrent or frameworks.clips_itself(project, module):
                continue
            where = project.where(module.path, module.info.line) if module.info is not None else ""
            risk = module.describe_risk(project)
            if setting.is_value:
                said = setting.describe("gradient_clip_val", model.module)
            else:
                said = "no `gradient_clip_val`"
            built = f" on {trainer.source}" if trainer.remote else ""
            message = (
                f"{call}{built} fits `{module.name}`" + (f" ({where})" if where else "") + f" with {said}: "
                f"{frameworks.LIGHTNING_DEFAULT}, and {risk}, so nothing bounds its gradients"
            )
            return Diagnostic(
                trainer.call,
                message,
                hint=_lightning_hint(module, trainer),
            )
        return None

    # --------------------------------------------------------------- Hugging Face

    def _hugging_face(self, model: FileModel, arguments: frameworks.HfArguments, ctx: RuleContext) -> Iterator[Diagnostic]:
        project = ctx.project
        call = _short(arguments.site.callee)
        config = arguments.deepspeed_config
        setting = arguments.max_grad_norm
        number = setting.number()
        if number is not None and number <= 0:
            ds = config.clipping.number() if config is not None else None
            if ds is not None and ds > 0:
                return  # DeepSpeed clips on its own value; GL113 reports the disagreement
            message = (
                f"{setting.describe('max_grad_norm', model.module)} in {call} turns off the Trainer's gradient clipping: "
                f"{frameworks.HF_DEFAULT}"
            )
            facts = _first_model(arguments)
            if facts is not None and facts.recurrent:
                message += f"; {facts.describe_risk(project)}"
            hint = "Drop `max_grad_norm` to get the default 1.0, or set a positive threshold (`max_grad_norm=1.0`)."
            if config is not None:
                hint += ' With DeepSpeed, keep `"gradient_clipping": "auto"` in its config so the value reaches it.'
            yield Diagnostic(
                setting.node or arguments.call,
                message,
                hint=hint,
            )
            return
        # `deepspeed=` config without "gradient_clipping": DeepSpeed does the clipping under the HF
        # Trainer, and max_grad_norm only reaches it through `"gradient_clipping": "auto"`.
        if config is None or config.clipping.state != "absent":
            return
        facts = next((facts for _, facts in arguments.models if facts is not None and facts.recurrent), None)
        if facts is None:
            return
        yield Diagnostic(
            arguments.deepspeed.node or arguments.call,
            f"the DeepSpeed config {config.label} of {call} has no \"gradient_clipping\": under DeepSpeed the "
            f"Trainer leaves clipping to DeepSpeed, and {frameworks.DEEPSPEED_DEFAULT}; `max_grad_norm` only reaches it "
            f"through `\"gradient_clipping\": \"auto\"`, and {facts.describe_risk(project)}",
            hint='Add `"gradient_clipping": "auto"` to the DeepSpeed config (it then takes `max_grad_norm`, 1.0 by default).',
        )

    # ------------------------------------------------------------------ DeepSpeed

    def _deepspeed(self, model: FileModel, engine: frameworks.DeepSpeedEngine, ctx: RuleContext) -> Diagnostic | None:
        project = ctx.project
        config = engine.config
        if config is None:
            return None
        call = _short(engine.site.callee)
        clipping = config.clipping
        number = clipping.number()
        facts = engine.model
        if number is not None and number <= 0:
            node = clipping.node if config.inline is not None and clipping.node is not None else engine.call
            message = f"{config.clipping_text()} turns gradient clipping off for {call}: {frameworks.DEEPSPEED_DEFAULT}"
            if facts is not None and facts.recurrent:
                message += f"; {facts.describe_risk(project)}"
            return Diagnostic(
                node,
                message,
                hint='Set a positive threshold in the DeepSpeed config: `"gradient_clipping": 1.0`.',
            )
        if clipping.state != "absent" or facts is None or not facts.recurrent:
            return None
        return Diagnostic(
            engine.call,
            f"the DeepSpeed config {config.label} of {call} has no \"gradient_clipping\": {frameworks.DEEPSPEED_DEFAULT}, "
            f"and the engine's model {facts.describe_risk(project)}",
            hint='Add `"gradient_clipping": 1.0` to the DeepSpeed config.',
        )


def _one_per_call(found) -> Iterator[Diagnostic]:
    """One finding per call: a `LightningCLI(...)` with several offending configs names the others."""
    by_node: dict[int, list] = {}
    order: list[int] = []
    for trainer, diagnostic in found:
        if diagnostic is None:
            continue
        key = id(diagnostic.node)
        if key not in by_node:
            by_node[key] = []
            order.append(key)
        by_node[key].append((trainer, diagnostic))
    for key in order:
        entries = by_node[key]
        trainer, diagnostic = entries[0]
        others = [other.source for other, _ in entries[1:] if other.source]
        if others:
            listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            diagnostic = replace(diagnostic, message=f"{diagnostic.message} (the same holds for {listed})")
        yield diagnostic


def _lightning_hint(module: "ModelFacts | None", trainer: "frameworks.LightningTrainer | None" = None) -> str:
    if module is not None and module.manual_optimization:
        return (
            f"`{module.name}` uses manual optimization, where Lightning never clips: call "
            "`self.clip_gradients(opt, gradient_clip_val=1.0, gradient_clip_algorithm=\"norm\")` between "
            "`self.manual_backward(loss)` and `opt.step()`."
        )
    if trainer is not None and trainer.config is not None and not trainer.remote:
        return (
            f"Set a positive threshold in the Trainer section of {trainer.source}: `gradient_clip_val: 1.0` (norm "
            "clipping; `gradient_clip_algorithm: value` clips values), or override `configure_gradient_clipping`."
        )
    return (
        "Pass a positive threshold to the Trainer: `Trainer(..., gradient_clip_val=1.0)` (norm clipping; "
        "`gradient_clip_algorithm=\"value\"` clips values), or override `configure_gradient_clipping`."
    )


def _first_model(arguments: frameworks.HfArguments) -> "ModelFacts | None":
    return next((facts for _, facts in arguments.models if facts is not None), None)


def _short(callee: str) -> str:
    return f"`{callee}(...)`"
