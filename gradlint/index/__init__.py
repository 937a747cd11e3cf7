"""The project index (phase between parsing and rules): cross-file facts and values.

The value resolver and the model facts are made on first use, so that building the index for
a run whose files hold no trigger word (the cache still asks it about dependencies) imports
neither them nor libcst.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from gradlint.index.project import ProjectIndex as _ProjectIndex
from gradlint.index.project import Symbol

if TYPE_CHECKING:
    from gradlint.index.facts import Facts, LayerSite, ModelFacts
    from gradlint.index.values import Resolved, Resolver, Scope


class ProjectIndex(_ProjectIndex):
    """Files and symbols, with a value resolver and model facts on top."""

    @cached_property
    def resolver(self) -> "Resolver":
        from gradlint.index.values import Resolver

        return Resolver(self)

    @cached_property
    def facts(self) -> "Facts":
        from gradlint.index.facts import Facts

        return Facts(self)


_LAZY = {
    "Facts": "gradlint.index.facts",
    "LayerSite": "gradlint.index.facts",
    "ModelFacts": "gradlint.index.facts",
    "Resolved": "gradlint.index.values",
    "Resolver": "gradlint.index.values",
    "Scope": "gradlint.index.values",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["Facts", "LayerSite", "ModelFacts", "ProjectIndex", "Resolved", "Resolver", "Scope", "Symbol"]
