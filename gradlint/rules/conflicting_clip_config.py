"""GL113 conflicting-clip-config: Two places set gradient clipping for the same run and disagree."""

from __future__ import annotations

import math
from typing import Iterator

from gradlint.analysis.model import FileModel
from gradlint.findings import Severity
from gradlint.index import frameworks
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class ConflictingClipConfig(Rule):
    code = "GL113"
    name = "conflicting-clip-config"
    severity = Severity.WARNING
    summary = "Two places set gradient clipping for the same run and disagree."
    # TrainingArguments(deepspeed=...) without max_grad_norm compares its default 1.0; a LightningCLI
    # or Hydra app reads gradient_clip_val from YAML configs.
    triggers = ("max_grad_norm", "gradient_clip_val", "TrainingArguments", "LightningCLI", "hydra")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        project, path = ctx.project, ctx.source.path
        if project is None or frameworks.in_test_code(path, project):
            return  # a test may set conflicting values on purpose (to check the error)
        for trainer in frameworks.lightning_trainers(project, path, model):
            diagnostic = self._lightning(model, trainer, ctx)
            if diagnostic is not None:
                yield diagnostic
        for arguments in frameworks.hf_training_arguments(project, path, model):
            diagnostic = self._hugging_face(model, arguments, ctx)
            if diagnostic is not None:
                yield diagnostic

    def _lightning(self, model: FileModel, trainer, ctx: RuleContext) -> Diagnostic | None:
        if trainer.remote:
            return None  # judged where the Trainer is built
        setting = trainer.clip_val
        number = setting.number()
        conflict = self._lightning_deepspeed(model, trainer)
        if conflict is not None:
            return conflict
        if number is None or number <= 0:
            return None  # Lightning only objects to a positive gradient_clip_val
        for fit in trainer.fits:
            module = fit.module
            if module is None or not module.manual_optimization:
                continue
            where = ctx.project.where(module.path, module.info.line) if module.info is not None else ""
            clips = frameworks.clips_itself(ctx.project, module)
            message = (
                f"`{trainer.site.callee}(...)` sets {setting.describe('gradient_clip_val', model.module)} but fits `{module.name}`"
                + (f" ({where})" if where else "")
                + ", which uses manual optimization (`self.automatic_optimization = False`): Lightning does not "
                "clip for manual optimization and raises a MisconfigurationException when `fit` starts"
                + (f" (`{module.name}` already clips in its training step)" if clips else "")
            )
            hint = (
                "Remove `gradient_clip_val` from the Trainer"
                + (f" section of {trainer.source}" if trainer.config is not None else "")
            ) + (
                "; the module's own clipping stays in charge."
                if clips
                else ", and clip in `training_step` with `self.clip_gradients(opt, gradient_clip_val="
                f"{setting.value!r}, gradient_clip_algorithm=\"norm\")` between `self.manual_backward(loss)` and `opt.step()`."
            )
            related = ((setting.node, "Trainer-level clipping is set here"),) if setting.node is not None else ()
            return Diagnostic(
                trainer.call,
                message,
                hint=hint,
                related=related,
            )
        return None

    def _lightning_deepspeed(self, model: FileModel, trainer) -> Diagnostic | None:
        """`gradient_clip_val` against the `"gradient_clipping"` of a DeepSpeed strategy's config."""
        config = trainer.deepspeed
        if config is None:
            return None
        ds_number = config.clipping.number()
        number = trainer.clip_val.number()
        if ds_number is None or number is None or math.isclose(ds_number, number):
            return None
        callee = trainer.site.callee
        source = f" (from {trainer.source})" if trainer.source else ""
        message = (
            f"`{callee}(...)`{source} sets {trainer.clip_val.describe('gradient_clip_val', model.module)} while its "
            f"DeepSpeed strategy's config sets {config.clipping_text()}: Lightning only passes `gradient_clip_val` "
            "to DeepSpeed when the config has no \"gradient_clipping\", so DeepSpeed clips at its own value and "
            "the Trainer's is silently ignored"
        )
        related = ((trainer.clip_val.node, "the Trainer's threshold"),) if trainer.clip_val.node is not None else ()
        return Diagnostic(
            trainer.call,
            message,
            hint=(
                'Keep one threshold: remove "gradient_clipping" from the DeepSpeed config (Lightning then passes '
                "`gradient_clip_val` to it), or make the two values equal."
            ),
            related=related,
        )

    def _hugging_face(self, model: FileModel, arguments, ctx: RuleContext) -> Diagnostic | None:
        config = arguments.deepspeed_config
        if config is None or not config.clipping.is_value:
            return None
        ds = config.clipping
        if ds.value == "auto":
            return None  # the Trainer fills it in with max_grad_norm
        ds_number = ds.number()
        hf = arguments.effective_max_grad_norm()
        hf_number = hf.number()
        if ds_number is None or hf_number is None or math.isclose(ds_number, hf_number):
            return None
        if hf.node is not None:
            hf_text = hf.describe("max_grad_norm", model.module)
        else:
            hf_text = f"`max_grad_norm` at its default {hf_number!r}"
        callee = arguments.site.callee
        message = (
            f"`{callee}(...)` has {hf_text} while its DeepSpeed config sets {config.clipping_text()}: "
            "under DeepSpeed the engine does the clipping, and the Trainer stops with a ValueError about "
            "DeepSpeed config values that mismatch TrainingArguments"
        )
        related = []
        if hf.node is not None:
            related.append((hf.node, "the Trainer's threshold"))
        if ds.node is not None and config.inline is not None:
            related.append((ds.node, "DeepSpeed's threshold"))
        elif arguments.deepspeed.node is not None:
            related.append((arguments.deepspeed.node, "the DeepSpeed config"))
        return Diagnostic(
            arguments.call,
            message,
            hint=(
                'Set `"gradient_clipping": "auto"` in the DeepSpeed config so that it takes `max_grad_norm`, '
                "or make the two values equal."
            ),
            related=tuple(related),
        )
