"""The project index (phase between parsing and rules): cross-file facts and values."""

from gradlint.index.facts import Facts, LayerSite, ModelFacts
from gradlint.index.project import ProjectIndex as _ProjectIndex
from gradlint.index.project import Symbol
from gradlint.index.values import Resolved, Resolver, Scope


class ProjectIndex(_ProjectIndex):
    """Files and symbols, with a value resolver and model facts on top."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resolver = Resolver(self)
        self.facts = Facts(self)


__all__ = ["Facts", "LayerSite", "ModelFacts", "ProjectIndex", "Resolved", "Resolver", "Scope", "Symbol"]
