"""Reading a framework call's settings: each keyword argument resolved through the project index."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.analysis.model import FileModel, Function
from gradlint.index.frameworks.records import ABSENT, UNRESOLVED, Setting
from gradlint.index.values import Scope, Unresolved

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex


class SettingReader:
    """The settings of the framework calls in one file."""

    def __init__(self, project: "ProjectIndex", path: Path, model: FileModel) -> None:
        self.project = project
        self.path = path
        self.model = model

    def setting(self, call: cst.Call, keyword: str, function: Function | None) -> Setting:
        arg = keyword_arg(call, keyword)
        if arg is None:
            if any(a.star == "**" for a in call.args):
                return UNRESOLVED  # `Trainer(**config)` may set it
            return ABSENT
        return self.value(arg, arg.value, self.project.scope(self.path, function))

    def value(self, node: cst.CSTNode, value: cst.BaseExpression, scope: Scope) -> Setting:
        resolved = self.project.resolver.resolve(value, scope)
        if resolved is None or isinstance(resolved.value, Unresolved):
            return Setting("unresolved", node)
        literal = isinstance(value, (cst.Integer, cst.Float, cst.SimpleString, cst.UnaryOperation)) or (
            isinstance(value, cst.Name) and value.value in ("None", "True", "False")
        )
        return Setting("value", node, resolved.value, "" if literal else resolved.origin)


def keyword_arg(call: cst.Call, keyword: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg
    return None
