"""Framework facts: what Lightning, Hugging Face and DeepSpeed are told about gradient clipping.

When a framework owns the training loop there is no `backward()`/`step()` pair to look at;
what decides whether gradients are clipped is a setting:

- Lightning: `Trainer(gradient_clip_val=...)` (no clipping unless set) and the module that
  `trainer.fit(module, ...)` trains (it may override `configure_gradient_clipping`, or use
  manual optimization and clip itself);
- Hugging Face: `TrainingArguments(max_grad_norm=...)` (1.0 by default, 0 disables it) and
  its `deepspeed=` config (a JSON path or a dict) whose `"gradient_clipping"` must agree;
- DeepSpeed: `deepspeed.initialize(model=..., config=...)` with a dict or a JSON file whose
  `"gradient_clipping"` is 0 (no clipping) unless set.

This module finds those calls in a file, resolves the settings through the project index
(`Resolved` values with their origin) and the module a trainer fits (`ModelFacts`). A value
that cannot be resolved is marked "unresolved" and the rules stay quiet about it. Results
are computed once per file and shared by the rules (`model.derived`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import libcst as cst

from gradlint.analysis.calls import arg_value, kwarg_value
from gradlint.analysis.model import CallSite, FileModel, Function, Kind, snippet
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import Context, contexts
from gradlint.analysis.walk import walk
from gradlint.index.facts import ModelFacts
from gradlint.index.values import Scope, Unresolved

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

# ----------------------------------------------------------------------------- names

LIGHTNING_TRAINERS = frozenset(
    {
        "lightning.Trainer",
        "lightning.pytorch.Trainer",
        "lightning.pytorch.trainer.Trainer",
        "lightning.pytorch.trainer.trainer.Trainer",
        "pytorch_lightning.Trainer",
        "pytorch_lightning.trainer.Trainer",
        "pytorch_lightning.trainer.trainer.Trainer",
    }
)
HF_TRAINING_ARGUMENTS = frozenset(
    {
        "transformers.TrainingArguments",
        "transformers.Seq2SeqTrainingArguments",
        "transformers.training_args.TrainingArguments",
        "transformers.training_args_seq2seq.Seq2SeqTrainingArguments",
    }
)
HF_TRAINERS = frozenset(
    {
        "transformers.Trainer",
        "transformers.Seq2SeqTrainer",
        "transformers.trainer.Trainer",
        "transformers.trainer_seq2seq.Seq2SeqTrainer",
    }
)
DEEPSPEED_INITIALIZE = frozenset({"deepspeed.initialize"})
FSDP_WRAPPERS = frozenset(
    {
        "torch.distributed.fsdp.FullyShardedDataParallel",
        "torch.distributed.fsdp.fully_sharded_data_parallel.FullyShardedDataParallel",
    }
)
"""The original (FSDP1) wrapper. FSDP2's `fully_shard` makes DTensor parameters, which
`torch.nn.utils.clip_grad_norm_` reduces correctly."""

HF_MAX_GRAD_NORM_DEFAULT = 1.0

# What each framework does when nothing is said (used in messages and the rule document).
LIGHTNING_DEFAULT = "Lightning does not clip gradients unless `gradient_clip_val` is set (0 or None disables it)"
HF_DEFAULT = "the Hugging Face Trainer clips to `max_grad_norm`, 1.0 by default, and 0 disables it"
DEEPSPEED_DEFAULT = 'DeepSpeed does not clip gradients unless the config sets `"gradient_clipping"` (0 disables it)'

_MOVES = {"to", "cuda", "cpu", "double", "float", "half", "bfloat16", "train"}
_JSON_LIMIT = 4_000_000
"""Bytes: a DeepSpeed config larger than this is not read (stay quiet)."""
MAX_DEPTH = 6


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, eq=False)
class Setting:
    """One setting of a framework call, as far as it is known statically."""

    state: str
    """'absent' (not passed: the framework default applies), 'value' or 'unresolved'."""
    node: cst.CSTNode | None = None
    """Where it is set in the checked file (the keyword argument, a dict entry), if there."""
    value: Any = None
    origin: str = ""
    """How the value was found (`argparse default of --clip (train.py:12)`), '' for a literal."""

    @property
    def is_value(self) -> bool:
        return self.state == "value"

    def number(self) -> float | None:
        """The value as a number, None when it is not one (None, "auto", unresolved)."""
        if self.state != "value" or isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            return None
        return self.value

    def describe(self, keyword: str, module: cst.Module) -> str:
        """`max_grad_norm=0.0`, or `max_grad_norm=args.max_grad_norm` is 0.0 (argparse default of ...)."""
        value = self.shown(with_origin=False)
        if not self.origin:
            return f"`{keyword}={value}`"
        written = self.node.value if isinstance(self.node, (cst.Arg, cst.DictElement)) else None
        if written is None:
            return f"`{keyword}` = {value} ({self.origin})"
        return f"`{keyword}={snippet(module, written, 40)}` = {value} ({self.origin})"

    def shown(self, with_origin: bool = True) -> str:
        value = self.value
        if isinstance(value, str):
            text = json.dumps(value)
        elif isinstance(value, float) and value.is_integer():
            text = repr(value)
        else:
            text = repr(value)
        return text + (f" ({self.origin})" if self.origin and with_origin else "")


ABSENT = Setting("absent")
UNRESOLVED = Setting("unresolved")


@dataclass(eq=False)
class DeepSpeedConfig:
    """A DeepSpeed config: an inline dict or a JSON file, and its `"gradient_clipping"`."""

    kind: str
    """'json' or 'dict'."""
    label: str
    """For messages: `ds_config.json` as written, or `the config dict (line 12)`."""
    clipping: Setting
    """`"gradient_clipping"`: absent, a value (a number or "auto") or unresolved."""
    path: Path | None = None
    """The JSON file read (None for a dict)."""
    inline: cst.CSTNode | None = None
    """The dict literal (or `dict(...)` call) when it is written in the checked file."""

    def clipping_text(self) -> str:
        return f'"gradient_clipping": {self.clipping.shown()} in {self.label}'


@dataclass(eq=False)
class LightningFit:
    call: cst.Call
    module: ModelFacts | None
    """The LightningModule passed to `fit`, None when it cannot be resolved."""


@dataclass(eq=False)
class LightningTrainer:
    call: cst.Call
    site: CallSite
    clip_val: Setting
    clip_algorithm: Setting
    fits: list[LightningFit] = field(default_factory=list)


@dataclass(eq=False)
class HfArguments:
    call: cst.Call
    site: CallSite
    max_grad_norm: Setting
    deepspeed: Setting
    """The `deepspeed=` argument (its value is not used: see `deepspeed_config`)."""
    deepspeed_config: DeepSpeedConfig | None
    """The config `deepspeed=` points at, None when absent or unresolved."""
    models: list[tuple[cst.Call, ModelFacts | None]] = field(default_factory=list)
    """The HF `Trainer(model=..., args=<these>)` calls and the models they train."""

    def effective_max_grad_norm(self) -> Setting:
        """`max_grad_norm`, with the default 1.0 when it is not passed."""
        if self.max_grad_norm.state == "absent":
            return Setting("value", None, HF_MAX_GRAD_NORM_DEFAULT, "the TrainingArguments default")
        return self.max_grad_norm


@dataclass(eq=False)
class DeepSpeedEngine:
    call: cst.Call
    site: CallSite
    config: DeepSpeedConfig | None
    """None when no config is passed (`args.deepspeed_config`) or it cannot be read."""
    model: ModelFacts | None


# ----------------------------------------------------------------------------- queries


def lightning_trainers(project: "ProjectIndex", path: Path, model: FileModel) -> list[LightningTrainer]:
    """Every Lightning `Trainer(...)` call of the file, with `gradient_clip_val` and what it fits."""
    table = model.derived.setdefault("frameworks", {})
    return project.deps.memo(table, "lightning", lambda: _Finder(project, path, model).lightning())


def hf_training_arguments(project: "ProjectIndex", path: Path, model: FileModel) -> list[HfArguments]:
    """Every `TrainingArguments(...)` / `Seq2SeqTrainingArguments(...)` call of the file."""
    table = model.derived.setdefault("frameworks", {})
    return project.deps.memo(table, "hf", lambda: _Finder(project, path, model).hf())


def deepspeed_engines(project: "ProjectIndex", path: Path, model: FileModel) -> list[DeepSpeedEngine]:
    """Every `deepspeed.initialize(...)` call of the file, with its config and model."""
    table = model.derived.setdefault("frameworks", {})
    return project.deps.memo(table, "deepspeed", lambda: _Finder(project, path, model).deepspeed())


def context_of(model: FileModel, function: Function | None) -> Context | None:
    """The flattened context of a function (or of the module body for None)."""
    for context in contexts(model):
        if context.function is function:
            return context
    return None


def index_of(context: Context, call: cst.Call) -> int:
    """The occurrence index of a call in its own function's context (the end when it has no event)."""
    for occ in context.occurrences:
        if not occ.via and (occ.event.call is call or occ.event.node is call):
            return occ.index
    # No event for the call itself (`trainer.fit(LitModel())`): the first event after it in the source.
    orders = context.model.derived.setdefault("frameworks.order", {})
    scope = context.function.node if context.function is not None else context.model.module
    order = orders.get(id(scope))
    if order is None:
        order = orders[id(scope)] = {id(node): position for position, node in enumerate(walk(scope))}
    target = order.get(id(call))
    if target is not None:
        for occ in context.occurrences:
            position = order.get(id(occ.event.node))
            if not occ.via and position is not None and position > target:
                return occ.index
    return len(context.occurrences)


def bound_value(
    expression: cst.BaseExpression | None, model: FileModel, context: Context | None, before: int, depth: int = 0
) -> cst.BaseExpression | None:
    """What a name (`trainer`, `self.trainer`, `config`) was last assigned before occurrence `before`.

    Other expressions are returned as they are; a name that is not assigned (a parameter) gives None.
    """
    if expression is None or depth > MAX_DEPTH:
        return None
    if not isinstance(expression, (cst.Name, cst.Attribute)):
        return expression
    name = dotted_name(expression)
    if name is None:
        return expression
    if context is None:
        value = model.constants.get(name) if "." not in name else None
    else:
        value = context.binding(name, before)
    if value is None:
        return None
    if isinstance(value, (cst.Name, cst.Attribute)) and dotted_name(value) != name:
        return bound_value(value, model, context, before, depth + 1)
    return value


def is_fsdp_wrapper(qualified: str | None) -> bool:
    return qualified in FSDP_WRAPPERS


# ----------------------------------------------------------------------------- finder




class _Finder:
    def __init__(self, project: "ProjectIndex", path: Path, model: FileModel) -> None:
        self.project = project
        self.path = path
        self.model = model

    # ------------------------------------------------------------------ Lightning

    def lightning(self) -> list[LightningTrainer]:
        trainers = [
            LightningTrainer(
                site.node,
                site,
                self._setting(site.node, "gradient_clip_val", site.function),
                self._setting(site.node, "gradient_clip_algorithm", site.function),
            )
            for site in self.model.calls
            if site.qualified in LIGHTNING_TRAINERS
        ]
        if not trainers:
            return []
        by_call = {id(trainer.call): trainer for trainer in trainers}
        for site in self.model.calls:
            func = site.node.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "fit"):
                continue
            context = context_of(self.model, site.function)
            before = index_of(context, site.node) if context is not None else 0
            receiver = bound_value(func.value, self.model, context, before)
            trainer = by_call.get(id(receiver)) if isinstance(receiver, cst.Call) else None
            if trainer is None:
                continue
            argument = arg_value(site.node, 0, "model")
            module = None
            if argument is not None:
                module = self.project.facts.of_expression(
                    argument, self.path, self.model, context, before, site.function
                )
            trainer.fits.append(LightningFit(site.node, module))
        return trainers

    # --------------------------------------------------------------- Hugging Face

    def hf(self) -> list[HfArguments]:
        found = []
        for site in self.model.calls:
            if site.qualified not in HF_TRAINING_ARGUMENTS:
                continue
            deepspeed = _keyword_arg(site.node, "deepspeed")
            config = None
            if deepspeed is not None:
                config = self._deepspeed_config(deepspeed.value, site)
            found.append(
                HfArguments(
                    site.node,
                    site,
                    self._setting(site.node, "max_grad_norm", site.function),
                    self._setting(site.node, "deepspeed", site.function),
                    config,
                )
            )
        if not found:
            return []
        by_call = {id(arguments.call): arguments for arguments in found}
        for site in self.model.calls:
            if site.qualified not in HF_TRAINERS:
                continue
            context = context_of(self.model, site.function)
            before = index_of(context, site.node) if context is not None else 0
            bound = bound_value(arg_value(site.node, 1, "args"), self.model, context, before)
            arguments = by_call.get(id(bound)) if isinstance(bound, cst.Call) else None
            if arguments is None:
                continue
            argument = arg_value(site.node, 0, "model")
            facts = None
            if argument is not None:
                facts = self.project.facts.of_expression(
                    argument, self.path, self.model, context, before, site.function
                )
            arguments.models.append((site.node, facts))
        return found

    # ------------------------------------------------------------------ DeepSpeed

    def deepspeed(self) -> list[DeepSpeedEngine]:
        engines = []
        for site in self.model.calls:
            if site.qualified not in DEEPSPEED_INITIALIZE:
                continue
            argument = kwarg_value(site.node, "config")
            if argument is None:
                argument = kwarg_value(site.node, "config_params")
            config = self._deepspeed_config(argument, site) if argument is not None else None
            context = context_of(self.model, site.function)
            before = index_of(context, site.node) if context is not None else 0
            facts = None
            engine_model = arg_value(site.node, 1, "model")
            if engine_model is not None:
                facts = self.project.facts.of_expression(
                    engine_model, self.path, self.model, context, before, site.function
                )
            engines.append(DeepSpeedEngine(site.node, site, config, facts))
        return engines

    def _deepspeed_config(self, expression: cst.BaseExpression, site: CallSite) -> DeepSpeedConfig | None:
        """The config an expression stands for: a dict literal (followed through names) or a JSON path."""
        context = context_of(self.model, site.function)
        before = index_of(context, site.node) if context is not None else 0
        bound = bound_value(expression, self.model, context, before)
        is_dict_call = isinstance(bound, cst.Call) and dotted_name(bound.func) == "dict"
        if isinstance(bound, cst.Dict) or is_dict_call:
            clipping = self._dict_clipping(bound, Scope(self.path, self.model, site.function))
            if clipping is None:
                return None
            if isinstance(expression, cst.Name):
                clipping = self._mutated(expression.value, clipping, site)
            label = "the config dict" + (f" `{expression.value}`" if isinstance(expression, cst.Name) else "")
            return DeepSpeedConfig("dict", label, clipping, inline=bound)
        resolved = self.project.resolver.resolve(expression, Scope(self.path, self.model, site.function))
        if resolved is None:
            return None
        if isinstance(resolved.value, dict):
            # A dict defined in another module (`from ds_configs import ZERO2`).
            symbol = self.project.resolve(self.path, expression.value) if isinstance(expression, cst.Name) else None
            target = symbol.target if symbol is not None and symbol.kind == "value" else None
            if not isinstance(target, (cst.Dict, cst.Call)) or symbol is None:
                return None
            clipping = self._dict_clipping(target, Scope(symbol.path, symbol.model))
            if clipping is None:
                return None
            if clipping.node is not None:
                where = self.project.where(symbol.path, clipping.node)
                clipping = Setting(clipping.state, None, clipping.value, clipping.origin or where)
            label = f"the config dict `{symbol.name}` ({self.project.where(symbol.path, target)})"
            return DeepSpeedConfig("dict", label, clipping)
        if isinstance(resolved.value, str) and resolved.value.endswith(".json"):
            data, file = self._json(resolved.value)
            if data is None:
                return None
            if "gradient_clipping" in data:
                clipping = Setting("value", None, data["gradient_clipping"])
            else:
                clipping = ABSENT
            return DeepSpeedConfig("json", f"`{resolved.value}`", clipping, path=file)
        return None

    def _dict_clipping(self, node: cst.BaseExpression, scope: Scope) -> Setting | None:
        """`"gradient_clipping"` of a dict literal or `dict(...)` call; None when the keys cannot be read."""
        unknown_keys = False
        if isinstance(node, cst.Dict):
            for element in node.elements:
                if not isinstance(element, cst.DictElement):
                    unknown_keys = True  # `**base`
                    continue
                key = self.project.resolver.resolve(element.key, scope)
                if key is None:
                    unknown_keys = True
                    continue
                if key.value == "gradient_clipping":
                    return self._value(element, element.value, scope)
        elif isinstance(node, cst.Call):
            for arg in node.args:
                if arg.keyword is None:
                    unknown_keys = True
                elif arg.keyword.value == "gradient_clipping":
                    return self._value(arg, arg.value, scope)
        else:
            return None
        return UNRESOLVED if unknown_keys else ABSENT

    def _mutated(self, name: str, clipping: Setting, site: CallSite) -> Setting:
        """`config["gradient_clipping"] = x` or `config.update(...)` after the literal: the later value wins."""
        where = site.function.node if site.function is not None else self.model.module
        if name in self.model.constants and site.function is not None:
            where = self.model.module
        scope = Scope(self.path, self.model, site.function)
        for node in walk(where):
            if isinstance(node, cst.Assign):
                for target in node.targets:
                    subscript = target.target
                    if not (isinstance(subscript, cst.Subscript) and dotted_name(subscript.value) == name):
                        continue
                    if len(subscript.slice) != 1 or not isinstance(subscript.slice[0].slice, cst.Index):
                        clipping = UNRESOLVED
                        continue
                    key = self.project.resolver.resolve(subscript.slice[0].slice.value, scope)
                    if key is None:
                        clipping = UNRESOLVED
                    elif key.value == "gradient_clipping":
                        clipping = self._value(node, node.value, scope)
            elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                if dotted_name(node.func.value) == name and node.func.attr.value in ("update", "setdefault", "pop"):
                    clipping = UNRESOLVED
            elif isinstance(node, cst.AugAssign) and dotted_name(node.target) == name:
                clipping = UNRESOLVED
        return clipping

    def _json(self, written: str) -> tuple[dict | None, Path | None]:
        """The JSON object at `written`: beside the script, then under the project roots."""
        relative = Path(written)
        candidates = [relative] if relative.is_absolute() else [self.path.parent / relative] + [
            root / relative for root in self.project.roots
        ]
        cache = self.project.table("frameworks.json")
        for candidate in candidates:
            self.project.deps.note(("file", str(candidate)))
            if candidate not in cache:
                cache[candidate] = _read_json(self.project, candidate)
            if cache[candidate] is not None:
                return cache[candidate], candidate
        return None, None

    # -------------------------------------------------------------------- values

    def _setting(self, call: cst.Call, keyword: str, function: Function | None) -> Setting:
        arg = _keyword_arg(call, keyword)
        if arg is None:
            if any(a.star == "**" for a in call.args):
                return UNRESOLVED  # `Trainer(**config)` may set it
            return ABSENT
        return self._value(arg, arg.value, Scope(self.path, self.model, function))

    def _value(self, node: cst.CSTNode, value: cst.BaseExpression, scope: Scope) -> Setting:
        resolved = self.project.resolver.resolve(value, scope)
        if resolved is None or isinstance(resolved.value, Unresolved):
            return Setting("unresolved", node)
        literal = isinstance(value, (cst.Integer, cst.Float, cst.SimpleString, cst.UnaryOperation)) or (
            isinstance(value, cst.Name) and value.value in ("None", "True", "False")
        )
        return Setting("value", node, resolved.value, "" if literal else resolved.origin)


def _read_json(project: "ProjectIndex", path: Path) -> dict | None:
    """A JSON object from an in-memory source of the run or from disk; None when missing or invalid."""
    source = project.sources.get(path)
    text = source.text if source is not None else None
    if text is None:
        try:
            if not path.is_file() or path.stat().st_size > _JSON_LIMIT:
                return None
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _keyword_arg(call: cst.Call, keyword: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg
    return None




def clip_events_of(facts: ModelFacts, skip: tuple[str, ...] = ()) -> list:
    """The clip events in the methods of a module's own class (methods named in `skip` left out)."""
    if facts.info is None:
        return []
    return [
        event
        for name, method in facts.info.methods.items()
        if name not in skip
        for event in method.body.events()
        if event.kind is Kind.CLIP
    ]


def clips_itself(facts: ModelFacts, trainer_disables: bool = False) -> bool:
    """A Lightning module that takes care of clipping itself, whatever the Trainer's `gradient_clip_val`.

    It overrides `configure_gradient_clipping`, or clips in one of its methods (`self.clip_gradients`
    under manual optimization, `clip_grad_norm_` in `on_before_optimizer_step`; a clip in the wrong
    place is GL102's finding, not a missing clip). With `trainer_disables` (the Trainer passes 0), an
    override only counts when it clips with a threshold of its own.
    """
    if clip_events_of(facts, skip=("configure_gradient_clipping",)):
        return True
    if facts.configures_clipping:
        return override_clips_with_own_value(facts) if trainer_disables else True
    if trainer_disables:
        return False
    return facts.clips_manually


def override_clips_with_own_value(facts: ModelFacts) -> bool:
    """`configure_gradient_clipping` clips with a threshold of its own, not the Trainer's `gradient_clip_val`.

    An override that only passes `gradient_clip_val` on clips nothing when the Trainer says 0.
    """
    if facts.info is None or not facts.configures_clipping:
        return False
    method = facts.info.methods.get("configure_gradient_clipping")
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
