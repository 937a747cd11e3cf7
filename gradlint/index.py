"""The project index: facts gathered from every scanned file, read by rules after the walk.

For now it holds the risk factors (recurrent layers, relu recurrences, high learning
rates) by directory: a training script and the model modules beside it form one project.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from gradlint.engine import FileResult, RiskFactorSite


@dataclass
class ProjectIndex:
    risk_factors_by_file: dict[Path, list[RiskFactorSite]] = field(default_factory=dict)
    files_by_directory: dict[Path, list[Path]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, results: Iterable[FileResult]) -> "ProjectIndex":
        index = cls()
        for result in results:
            index.files_by_directory[result.path.parent].append(result.path)
            if result.risk_factors:
                index.risk_factors_by_file[result.path] = result.risk_factors
        return index

    def risk_factors_near(self, path: Path) -> list[RiskFactorSite]:
        """Risk factors in the file itself first, then in the scanned files beside it."""
        own = list(self.risk_factors_by_file.get(path, []))
        siblings = [
            site
            for other in sorted(self.files_by_directory.get(path.parent, []))
            if other != path
            for site in self.risk_factors_by_file.get(other, [])
        ]
        return own + siblings
