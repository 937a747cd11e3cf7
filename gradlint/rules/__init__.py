"""The registry: every rule, in one place, looked up by code."""

from __future__ import annotations

import re

from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext
from gradlint.rules.bptt_hidden_not_detached import BpttHiddenNotDetached
from gradlint.rules.clip_exhausted_iterator import ClipExhaustedIterator
from gradlint.rules.clipping_before_unscale import ClippingBeforeUnscale
from gradlint.rules.clipping_inside_accumulation import ClippingInsideAccumulation
from gradlint.rules.clipping_misplaced import ClippingMisplaced
from gradlint.rules.conflicting_clip_config import ConflictingClipConfig
from gradlint.rules.deep_unnormalized_stack import DeepUnnormalizedStack
from gradlint.rules.deep_vanilla_rnn import DeepVanillaRnn
from gradlint.rules.framework_clipping_disabled import FrameworkClippingDisabled
from gradlint.rules.fsdp_local_clipping import FsdpLocalClipping
from gradlint.rules.gradients_never_cleared import GradientsNeverCleared
from gradlint.rules.high_lr_without_clipping import HighLrWithoutClipping
from gradlint.rules.ineffective_clip_threshold import IneffectiveClipThreshold
from gradlint.rules.large_weight_init import LargeWeightInit
from gradlint.rules.long_unrolled_vanilla_rnn import LongUnrolledVanillaRnn
from gradlint.rules.meta_parse_error import ParseError
from gradlint.rules.meta_unused_suppression import UnusedSuppression
from gradlint.rules.missing_gradient_clipping import MissingGradientClipping
from gradlint.rules.no_weight_regularization import NoWeightRegularization
from gradlint.rules.relu_recurrence import ReluRecurrence
from gradlint.rules.retain_graph_carried_state import RetainGraphCarriedState
from gradlint.rules.sum_reduction_loss import SumReductionLoss
from gradlint.rules.unscaled_random_parameter import UnscaledRandomParameter

ALL_RULES: tuple[type[Rule], ...] = (
    ParseError,
    UnusedSuppression,
    MissingGradientClipping,
    ClippingMisplaced,
    ClippingBeforeUnscale,
    IneffectiveClipThreshold,
    ClipExhaustedIterator,
    FrameworkClippingDisabled,
    GradientsNeverCleared,
    BpttHiddenNotDetached,
    SumReductionLoss,
    ClippingInsideAccumulation,
    RetainGraphCarriedState,
    FsdpLocalClipping,
    ConflictingClipConfig,
    DeepVanillaRnn,
    ReluRecurrence,
    LongUnrolledVanillaRnn,
    DeepUnnormalizedStack,
    LargeWeightInit,
    UnscaledRandomParameter,
    HighLrWithoutClipping,
    NoWeightRegularization,
)

RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in ALL_RULES}

_CODE = re.compile(r"^GL\d{3}$")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _check_registry() -> None:
    names = [rule.name for rule in ALL_RULES]
    if len(RULES_BY_CODE) != len(ALL_RULES) or len(set(names)) != len(names):
        raise RuntimeError("gradlint rule codes and names must be unique")
    for rule in ALL_RULES:
        if not _CODE.match(rule.code) or not _NAME.match(rule.name):
            raise RuntimeError(f"malformed rule identity: {rule.code} {rule.name}")


_check_registry()


def get_rule(code_or_name: str) -> type[Rule] | None:
    key = code_or_name.strip()
    if key.upper() in RULES_BY_CODE:
        return RULES_BY_CODE[key.upper()]
    for rule in ALL_RULES:
        if rule.name == key.lower():
            return rule
    return None


def expand_selector(selector: str) -> set[str]:
    """`ALL`, a full code (`GL101`) or a prefix (`GL1`, `GL10`) -> the codes it names."""
    key = selector.strip().upper()
    if key == "ALL":
        return set(RULES_BY_CODE)
    return {code for code in RULES_BY_CODE if code.startswith(key)} if key.startswith("GL") else set()


__all__ = [
    "ALL_RULES",
    "RULES_BY_CODE",
    "Diagnostic",
    "Option",
    "Rule",
    "RuleContext",
    "expand_selector",
    "get_rule",
]
