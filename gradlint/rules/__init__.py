"""The registry: every rule, in one place, looked up by code; a rule's module is imported only
when the rule is needed.

`REGISTRY` lists each rule's code, name, module and trigger words (the substrings a file must
hold for the rule to be able to fire). That is what a run needs before it reads any file: which
codes exist, what a selector names, and which rules a file wants. So `gradlint check` imports
the module of a rule only for a file that holds one of its trigger words, and a file that holds
none never imports a rule (tests/test_registry.py holds each entry to its class).

`ALL_RULES` and `RULES_BY_CODE` still give the rule classes (importing them on first use), for
the code that needs everything a rule declares: `gradlint rules`, SARIF, the documentation.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext


class RuleEntry:
    """What the registry knows of a rule without importing it."""

    __slots__ = ("code", "name", "module", "attribute", "triggers")

    def __init__(self, code: str, name: str, module: str, attribute: str, triggers: tuple[str, ...]) -> None:
        self.code, self.name, self.module, self.attribute, self.triggers = code, name, module, attribute, triggers

    def load(self) -> type[Rule]:
        """The rule class (its module is imported the first time)."""
        return getattr(importlib.import_module(f"gradlint.rules.{self.module}"), self.attribute)

    def __repr__(self) -> str:
        return f"RuleEntry({self.code} {self.name})"


REGISTRY: tuple[RuleEntry, ...] = tuple(
    RuleEntry(*entry)
    for entry in (
        # code, name, module (gradlint.rules.<module>), class, trigger words (the class's `triggers`)
        ("GL000", "parse-error", "meta_parse_error", "ParseError", ()),
        ("GL001", "unused-suppression", "meta_unused_suppression", "UnusedSuppression", ()),
        ("GL101", "missing-gradient-clipping", "missing_gradient_clipping", "MissingGradientClipping", ("backward",)),
        ("GL102", "clipping-misplaced", "clipping_misplaced", "ClippingMisplaced", ("backward", "clip_grad")),
        ("GL103", "clipping-before-unscale", "clipping_before_unscale", "ClippingBeforeUnscale", ("scale(", ".backward(", "register_hook")),
        ("GL104", "ineffective-clip-threshold", "ineffective_clip_threshold", "IneffectiveClipThreshold", ("clip_grad",)),
        ("GL105", "clip-exhausted-iterator", "clip_exhausted_iterator", "ClipExhaustedIterator", ("clip_grad",)),
        ("GL106", "framework-clipping-disabled", "framework_clipping_disabled", "FrameworkClippingDisabled",
         ("Trainer", "TrainingArguments", "deepspeed", "LightningCLI", "hydra", ".fit(")),
        ("GL107", "gradients-never-cleared", "gradients_never_cleared", "GradientsNeverCleared", ("backward",)),
        ("GL108", "bptt-hidden-not-detached", "bptt_hidden_not_detached", "BpttHiddenNotDetached", ("backward",)),
        ("GL109", "sum-reduction-loss", "sum_reduction_loss", "SumReductionLoss", ("sum", "size_average", "backward", "training_step")),
        ("GL110", "clipping-inside-accumulation", "clipping_inside_accumulation", "ClippingInsideAccumulation",
         ("backward", "clip_grad")),
        ("GL111", "retain-graph-carried-state", "retain_graph_carried_state", "RetainGraphCarriedState",
         ("retain_graph",)),
        ("GL112", "fsdp-local-clipping", "fsdp_local_clipping", "FsdpLocalClipping", ("clip_grad_norm",)),
        ("GL113", "conflicting-clip-config", "conflicting_clip_config", "ConflictingClipConfig",
         ("max_grad_norm", "gradient_clip_val", "TrainingArguments", "LightningCLI", "hydra")),
        ("GL201", "deep-vanilla-rnn", "deep_vanilla_rnn", "DeepVanillaRnn", ("RNN",)),
        ("GL202", "relu-recurrence", "relu_recurrence", "ReluRecurrence", ("relu", "RNN", "forward")),
        ("GL203", "long-unrolled-vanilla-rnn", "long_unrolled_vanilla_rnn", "LongUnrolledVanillaRnn", ("RNN",)),
        ("GL204", "deep-unnormalized-stack", "deep_unnormalized_stack", "DeepUnnormalizedStack", ("Linear", "Conv")),
        ("GL301", "large-weight-init", "large_weight_init", "LargeWeightInit",
         ("init.", "normal_", "uniform_", "orthogonal", "eye_", "constant_", "ones_", "fill_", "mul_", "div_",
          "copy_", "*=", "/=", "eye(", "randn", "rand(")),
        ("GL302", "unscaled-random-parameter", "unscaled_random_parameter", "UnscaledRandomParameter",
         ("randn", "rand(", "normal_()", "uniform_()")),
        ("GL401", "high-lr-without-clipping", "high_lr_without_clipping", "HighLrWithoutClipping", ("backward",)),
        ("GL402", "no-weight-regularization", "no_weight_regularization", "NoWeightRegularization", ("backward",)),
    )
)

ENTRIES_BY_CODE: dict[str, RuleEntry] = {entry.code: entry for entry in REGISTRY}
META_CODES = frozenset({"GL000", "GL001"})
"""Rules the engine itself reports (parse errors, unused suppressions); they read no file."""

_LOADED: dict[str, type] = {}


def load_rule(code: str) -> type[Rule]:
    """The class of a registered rule (KeyError for an unknown code)."""
    rule = _LOADED.get(code)
    if rule is None:
        rule = _LOADED[code] = ENTRIES_BY_CODE[code].load()
    return rule


class _RulesByCode(Mapping[str, "type[Rule]"]):
    """code -> rule class, in registry order; a class is imported when it is looked up."""

    def __getitem__(self, code: str) -> type[Rule]:
        return load_rule(code)

    def __contains__(self, code: object) -> bool:
        return code in ENTRIES_BY_CODE

    def __iter__(self) -> Iterator[str]:
        return iter(ENTRIES_BY_CODE)

    def __len__(self) -> int:
        return len(ENTRIES_BY_CODE)

    def __repr__(self) -> str:
        return f"RULES_BY_CODE({', '.join(ENTRIES_BY_CODE)})"


class _AllRules(Sequence["type[Rule]"]):
    """Every rule class, in registry order (each imported on first use)."""

    @overload
    def __getitem__(self, index: int) -> type[Rule]: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[type[Rule], ...]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(load_rule(entry.code) for entry in REGISTRY[index])
        return load_rule(REGISTRY[index].code)

    def __len__(self) -> int:
        return len(REGISTRY)

    def __iter__(self) -> Iterator[type[Rule]]:
        return (load_rule(entry.code) for entry in REGISTRY)

    def __repr__(self) -> str:
        return f"ALL_RULES({', '.join(ENTRIES_BY_CODE)})"


ALL_RULES: Sequence[type[Rule]] = _AllRules()
RULES_BY_CODE: Mapping[str, type[Rule]] = _RulesByCode()

_CODE = re.compile(r"^GL\d{3}$")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _check_registry() -> None:
    names = [entry.name for entry in REGISTRY]
    if len(ENTRIES_BY_CODE) != len(REGISTRY) or len(set(names)) != len(names):
        raise RuntimeError("gradlint rule codes and names must be unique")
    for entry in REGISTRY:
        if not _CODE.match(entry.code) or not _NAME.match(entry.name):
            raise RuntimeError(f"malformed rule identity: {entry.code} {entry.name}")


_check_registry()


def entry_for(code_or_name: str) -> RuleEntry | None:
    """The registry entry of a rule code or name, without importing the rule."""
    key = code_or_name.strip()
    entry = ENTRIES_BY_CODE.get(key.upper())
    if entry is not None:
        return entry
    for entry in REGISTRY:
        if entry.name == key.lower():
            return entry
    return None


def get_rule(code_or_name: str) -> type[Rule] | None:
    entry = entry_for(code_or_name)
    return load_rule(entry.code) if entry is not None else None


def expand_selector(selector: str) -> set[str]:
    """`ALL`, a full code (`GL101`) or a prefix (`GL1`, `GL10`) -> the codes it names."""
    key = selector.strip().upper()
    if key == "ALL":
        return set(ENTRIES_BY_CODE)
    return {code for code in ENTRIES_BY_CODE if code.startswith(key)} if key.startswith("GL") else set()


def __getattr__(name: str) -> Any:
    # The rule unit's names, imported with the first rule (base.py imports libcst).
    if name in ("Diagnostic", "Option", "Rule", "RuleContext"):
        from gradlint.rules import base

        return getattr(base, name)
    raise AttributeError(f"module 'gradlint.rules' has no attribute {name!r}")


__all__ = [
    "ALL_RULES",
    "ENTRIES_BY_CODE",
    "META_CODES",
    "REGISTRY",
    "RULES_BY_CODE",
    "Diagnostic",
    "Option",
    "Rule",
    "RuleContext",
    "RuleEntry",
    "entry_for",
    "expand_selector",
    "get_rule",
    "load_rule",
]
