"""Expression evaluation for the init-program interpreter (gradlint.index.init_program).

`Evaluator.ev(node, frame)` computes what an expression of the init code is: the layer, one of
its parameters (`self.rnn.weight_hh_l0`, `getattr(self.rnn, f"weight_hh_l{i}")`, `w[h:2 * h]`,
`w.chunk(4, 0)`), a listing (`named_parameters()`, `modules()`), a number or string (through the
project's resolver for names the code does not bind), or UNKNOWN. The interpreter subclasses it
and supplies `call_statement` (calls with an effect) and `method_of` (the owner's methods).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import arg_value
from gradlint.analysis.inits import FUNCTION_ARGUMENTS, METHOD_ARGUMENTS, REQUIRED
from gradlint.analysis.model import FileModel
from gradlint.analysis.names import dotted_name
from gradlint.analysis.tensors import PARAMETER_CLASSES, TENSOR_MOVES, strip_data, tensor_shape
from gradlint.index.init_values import (
    BUILTINS,
    STRING_METHODS,
    UNKNOWN,
    ClassRef,
    Frame,
    FunctionRef,
    Layer,
    LayerRef,
    OtherRef,
    OwnerRef,
    ParamRef,
    TypeRef,
    arith,
    compare_values,
    has_refs,
    instance_of,
    is_number,
    listed,
    torch_class,
    truth,
)

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

MAX_ITERATIONS = 256


class Evaluator:
    project: ProjectIndex
    layer: Layer
    call: cst.Call
    instances: dict[int, OwnerRef]

    def call_statement(self, call: cst.Call, frame: Any) -> Any:  # pragma: no cover - the interpreter's
        raise NotImplementedError

    def method_of(self, owner: OwnerRef, name: str, frame: Any) -> FunctionRef | None:  # pragma: no cover
        raise NotImplementedError

    def tensor_of(self, node: cst.BaseExpression, frame: Frame) -> Any:
        return self.ev(strip_data(node), frame)

    def iterate(self, node: cst.BaseExpression, frame: Frame) -> list | None:
        value = self.ev(node, frame)
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, range):
            return list(value)[:MAX_ITERATIONS]
        if isinstance(value, (dict, str)):
            return list(value)
        return None

    def ev(self, node: cst.BaseExpression, frame: Frame) -> Any:
        try:
            return self._ev(node, frame)
        except (ArithmeticError, ValueError, TypeError, OverflowError, IndexError, KeyError, AttributeError):
            return UNKNOWN

    def _ev(self, node: cst.BaseExpression, frame: Frame) -> Any:
        if node is self.call:
            return LayerRef()
        if id(node) in self.instances and isinstance(node, cst.Call):
            return self.instances[id(node)]
        if isinstance(node, cst.Name):
            name = node.value
            if name in frame.env:
                return frame.env[name]
            if name in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[name]
            if name in frame.model.functions:
                return FunctionRef(frame.path, frame.model, frame.model.functions[name])
            found = torch_class(frame.model.qualify_expr(node))
            if found is not None:
                return found
            return self.resolved(node, frame)
        if isinstance(node, (cst.Integer, cst.Float)):
            return node.evaluated_value
        if isinstance(node, cst.SimpleString):
            return node.evaluated_value
        if isinstance(node, cst.ConcatenatedString):
            left, right = self.ev(node.left, frame), self.ev(node.right, frame)
            return left + right if isinstance(left, str) and isinstance(right, str) else UNKNOWN
        if isinstance(node, cst.FormattedString):
            return self.formatted(node, frame)
        if isinstance(node, (cst.List, cst.Tuple)):
            items = [self.ev(element.value, frame) for element in node.elements if not isinstance(element, cst.StarredElement)]
            if len(items) != len(node.elements):
                return UNKNOWN
            return items if isinstance(node, cst.List) else tuple(items)
        if isinstance(node, cst.Attribute):
            return self.attribute(node, frame)
        if isinstance(node, cst.Subscript):
            return self.subscript(node, frame)
        if isinstance(node, cst.Call):
            return self.evaluate_call(node, frame)
        if isinstance(node, cst.UnaryOperation):
            value = self.ev(node.expression, frame)
            if isinstance(node.operator, cst.Not):
                known = truth(value)
                return UNKNOWN if known is None else not known
            if isinstance(node.operator, cst.Minus) and is_number(value):
                return -value
            if isinstance(node.operator, cst.Plus) and is_number(value):
                return value
            return UNKNOWN
        if isinstance(node, cst.BinaryOperation):
            left, right = self.ev(node.left, frame), self.ev(node.right, frame)
            result = arith(type(node.operator).__name__, left, right)
            return self.resolved(node, frame) if result is UNKNOWN and not has_refs(left, right) else result
        if isinstance(node, cst.BooleanOperation):
            left = truth(self.ev(node.left, frame))
            if isinstance(node.operator, cst.And):
                if left is False:
                    return False
                right = truth(self.ev(node.right, frame))
                return False if right is False else (True if left and right else UNKNOWN)
            if left is True:
                return True
            right = truth(self.ev(node.right, frame))
            return True if right is True else (False if left is False and right is False else UNKNOWN)
        if isinstance(node, cst.Comparison):
            return self.compare(node, frame)
        if isinstance(node, cst.IfExp):
            known = truth(self.ev(node.test, frame))
            if known is None:
                return UNKNOWN
            return self.ev(node.body if known else node.orelse, frame)
        return self.resolved(node, frame)

    def resolved(self, node: cst.BaseExpression, frame: Frame) -> Any:
        scope = self.project.scope(frame.path, frame.function)
        found = self.project.resolver.resolve(node, scope)
        if found is None or not isinstance(found.value, (int, float, str, bool, list, tuple)):
            return UNKNOWN
        return found.value

    def formatted(self, node: cst.FormattedString, frame: Frame) -> Any:
        parts = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                parts.append(part.value)
            elif isinstance(part, cst.FormattedStringExpression):
                value = self.ev(part.expression, frame)
                if value is UNKNOWN or part.format_spec or part.conversion:
                    return UNKNOWN
                if not isinstance(value, (int, str, float)):
                    return UNKNOWN
                parts.append(str(value))
        return "".join(parts)

    def attribute(self, node: cst.Attribute, frame: Frame) -> Any:
        attr = node.attr.value
        found = torch_class(frame.model.qualify_expr(node))
        if found is not None:
            return found
        base = self.ev(node.value, frame)
        return self.get_attribute(base, attr, node, frame)

    def get_attribute(self, base: Any, attr: str, node: cst.BaseExpression | None, frame: Frame) -> Any:
        if isinstance(base, OwnerRef):
            if attr == base.path[0]:
                return LayerRef() if len(base.path) == 1 else OwnerRef(base.path[1:], "")
            method = self.method_of(base, attr, frame)
            if method is not None:
                return FunctionRef(method.path, method.model, method.function, bound_self=base)
            value = self.owner_value(base, attr)
            if value is not UNKNOWN:
                return value
            if node is not None:
                value = self.resolved(node, frame)
                if value is not UNKNOWN:
                    return value
            return OtherRef()
        if isinstance(base, LayerRef):
            param = self.layer.parameter(attr)
            if param is not None:
                return param
            if attr in ("hidden_size", "input_size", "num_layers", "bias", "bidirectional"):
                value = getattr(self.layer, attr)
                return value if value is not None else UNKNOWN
            if attr == "__class__":
                return TypeRef(base)
            return UNKNOWN
        if isinstance(base, TypeRef) and attr == "__name__":
            return self.layer.kind if isinstance(base.of, LayerRef) else UNKNOWN
        if isinstance(base, ParamRef):
            if attr == "data":
                return base
            if attr in ("shape",):
                return UNKNOWN
            if attr == "ndim":
                return base.dims
            return UNKNOWN
        if isinstance(base, OtherRef):
            return OtherRef()
        if base is UNKNOWN and node is not None and not self.mentions_env(node, frame):
            return self.resolved(node, frame)
        return UNKNOWN

    def owner_value(self, owner: OwnerRef, attr: str) -> Any:
        """A number or string the owner's class keeps as `self.<attr>` (`self.hidden = hidden`),
        resolved in the class's scope (through its construction's call sites)."""
        init = self.method_of(owner, "__init__", None)
        if init is None:
            return UNKNOWN
        node = cst.Attribute(cst.Name("self"), cst.Name(attr))
        found = self.project.resolver.resolve(node, self.project.scope(init.path, init.function))
        if found is None or not isinstance(found.value, (int, float, str, bool)):
            return UNKNOWN
        return found.value

    def mentions_env(self, node: cst.BaseExpression, frame: Frame) -> bool:
        while isinstance(node, (cst.Attribute, cst.Subscript, cst.Call)):
            node = node.value if not isinstance(node, cst.Call) else node.func
        return isinstance(node, cst.Name) and node.value in frame.env

    def subscript(self, node: cst.Subscript, frame: Frame) -> Any:
        base = self.ev(node.value, frame)
        if len(node.slice) != 1:
            if isinstance(base, ParamRef):
                first = node.slice[0].slice
                if isinstance(first, cst.Slice) and all(
                    isinstance(element.slice, cst.Slice) and element.slice.lower is None and element.slice.upper is None
                    for element in node.slice[1:]
                ):
                    return self.slice_param(base, first, frame)
                return UNKNOWN
            return UNKNOWN
        element = node.slice[0].slice
        if isinstance(base, ParamRef):
            if isinstance(element, cst.Slice):
                return self.slice_param(base, element, frame)
            return UNKNOWN
        if isinstance(element, cst.Index):
            index = self.ev(element.value, frame)
            if isinstance(base, (list, tuple, str)) and isinstance(index, int):
                return base[index]
            if isinstance(base, dict) and isinstance(index, (str, int)):
                return base.get(index, UNKNOWN)
            if base is UNKNOWN and not self.mentions_env(node, frame):
                return self.resolved(node, frame)
            return UNKNOWN
        if isinstance(element, cst.Slice) and isinstance(base, (list, tuple, str)):
            lower = self.ev(element.lower, frame) if element.lower is not None else None
            upper = self.ev(element.upper, frame) if element.upper is not None else None
            if (lower is None or isinstance(lower, int)) and (upper is None or isinstance(upper, int)):
                return base[lower:upper]
        return UNKNOWN

    def slice_param(self, param: ParamRef, element: cst.Slice, frame: Frame) -> Any:
        if element.step is not None:
            return UNKNOWN
        total = self.layer.rows()
        if param.rows is not None:
            return UNKNOWN  # a slice of a slice: rare
        lower = self.ev(element.lower, frame) if element.lower is not None else 0
        upper = self.ev(element.upper, frame) if element.upper is not None else total
        if not isinstance(lower, int) or not isinstance(upper, int) or isinstance(lower, bool):
            return UNKNOWN
        if lower < 0 or upper < 0:
            if total is None:
                return UNKNOWN
            lower, upper = lower % total if lower < 0 else lower, upper % total if upper < 0 else upper
        if total is not None and lower == 0 and upper >= total:
            return param
        return ParamRef(param.name, param.dims, (lower, upper), None, param.label)

    def compare(self, node: cst.Comparison, frame: Frame) -> Any:
        left = self.ev(node.left, frame)
        result: Any = True
        for target in node.comparisons:
            right = self.ev(target.comparator, frame)
            outcome = compare_values(type(target.operator).__name__, left, right, self.layer)
            if outcome is UNKNOWN:
                return UNKNOWN
            if not outcome:
                result = False
            left = right
        return result

    def evaluate_call(self, call: cst.Call, frame: Frame) -> Any:
        func = call.func
        name = dotted_name(func) or ""
        qualified = frame.model.qualify_expr(func) or ""
        args = [arg for arg in call.args if arg.keyword is None and not arg.star]
        if name == "isinstance" and len(args) == 2:
            subject = self.ev(args[0].value, frame)
            classes = self.classes(args[1].value, frame)
            return instance_of(subject, classes, self.layer)
        if name == "type" and len(args) == 1:
            return TypeRef(self.ev(args[0].value, frame))
        if name == "getattr" and len(args) >= 2:
            base = self.ev(args[0].value, frame)
            attr = self.ev(args[1].value, frame)
            if isinstance(attr, str):
                return self.get_attribute(base, attr, None, frame)
            return UNKNOWN
        if name in ("range", "len", "str", "int", "float", "enumerate", "zip", "list", "tuple", "reversed", "abs",
                    "min", "max", "sorted"):
            values = [self.ev(arg.value, frame) for arg in args]
            if any(v is UNKNOWN for v in values) or len(args) != len(call.args):
                return UNKNOWN
            if name == "enumerate":
                return list(enumerate(listed(values[0])))
            if name == "zip":
                return list(zip(*[listed(v) for v in values]))
            if name == "len" and isinstance(values[0], ParamRef):
                return UNKNOWN
            return BUILTINS[name](*values)
        if qualified.startswith("math.") and qualified.rsplit(".", 1)[-1] in ("sqrt", "log", "exp", "pow", "floor", "ceil"):
            values = [self.ev(arg.value, frame) for arg in args]
            if all(is_number(v) for v in values):
                return getattr(math, qualified.rsplit(".", 1)[-1])(*values)
            return UNKNOWN
        if qualified.startswith("torch.nn.init.") or qualified.endswith(".trunc_normal_"):
            return self.call_statement(call, frame)
        if isinstance(func, cst.Attribute):
            attr = func.attr.value
            base = self.ev(func.value, frame)
            if isinstance(base, (LayerRef, OwnerRef)) and attr in ("named_parameters", "parameters", "modules",
                                                                   "children", "named_modules", "named_children"):
                return self.listing(base, attr)
            if isinstance(base, (LayerRef, OwnerRef)) and attr in tuple(vocab.MODULE_MOVES) + ("train", "eval",
                                                                                            "requires_grad_"):
                return base
            if isinstance(base, ParamRef):
                if attr in ("dim", "ndimension"):
                    return base.dims
                if attr in ("size",) and not call.args:
                    return UNKNOWN
                if attr in ("chunk", "split", "tensor_split", "unbind"):
                    return self.blocks(base, attr, call, frame)
                if attr in TENSOR_MOVES or attr in ("view_as",):
                    return base
                if attr in METHOD_ARGUMENTS or attr == "copy_":
                    return self.call_statement(call, frame)
                return UNKNOWN
            if isinstance(base, str) and attr in STRING_METHODS:
                values = [self.ev(arg.value, frame) for arg in args]
                if any(v is UNKNOWN for v in values) or len(args) != len(call.args):
                    return UNKNOWN
                return getattr(base, attr)(*values)
            if isinstance(base, OwnerRef):
                method = self.method_of(base, attr, frame)
                if method is not None:
                    return self.call_statement(call, frame)
            if isinstance(base, OtherRef):
                return OtherRef()
        if qualified in ("torch.chunk", "torch.split") and args:
            base = self.ev(args[0].value, frame)
            if isinstance(base, ParamRef):
                return self.blocks(base, qualified.rsplit(".", 1)[-1], cst.Call(func, call.args[1:]), frame)
        if self.mentions_env(call, frame) or any(self.mentions_env(arg.value, frame) for arg in call.args):
            return UNKNOWN
        return self.resolved(call, frame)

    def classes(self, node: cst.BaseExpression, frame: Frame) -> list[ClassRef] | None:
        if isinstance(node, (cst.Tuple, cst.List)):
            found: list[ClassRef] = []
            for element in node.elements:
                inner = self.classes(element.value, frame)
                if inner is None:
                    return None
                found.extend(inner)
            return found
        found = torch_class(frame.model.qualify_expr(node))
        if found is not None:
            return [found]
        name = dotted_name(node)
        if name is not None:
            symbol = self.project.resolve_callee(frame.path, name)
            if symbol is not None and symbol.kind == "class":
                return [ClassRef(None)]
        return None

    def listing(self, base: Any, attr: str) -> list:
        prefix = ".".join(base.path) + "." if isinstance(base, OwnerRef) else ""
        if attr in ("named_parameters", "parameters"):
            params = [ParamRef(p.name, p.dims, label=prefix + p.name) for p in self.layer.parameters()]
            if attr == "parameters":
                return params
            return [(p.label, p) for p in params]
        modules: list[Any] = []
        named = attr.startswith("named")
        if attr in ("modules", "named_modules") and isinstance(base, OwnerRef):
            modules.append(("", base) if named else base)
        if isinstance(base, LayerRef):
            return [("", base)] if named else [base]
        if attr in ("children", "named_children") and len(base.path) > 1:
            layer_entry: Any = OwnerRef(base.path[1:], "")
        else:
            layer_entry = LayerRef()
        other = OtherRef()
        modules.append((".".join(base.path), layer_entry) if named else layer_entry)
        modules.append(("other", other) if named else other)
        return modules

    def blocks(self, param: ParamRef, attr: str, call: cst.Call, frame: Frame) -> Any:
        if param.rows is not None or param.block is not None:
            return UNKNOWN
        first = arg_value(call, 0, "chunks" if attr == "chunk" else "split_size_or_sections")
        dim = arg_value(call, 1, "dim")
        if dim is not None and self.ev(dim, frame) not in (0, -2 if param.dims == 2 else 0):
            return UNKNOWN
        if attr == "unbind":
            return UNKNOWN
        value = self.ev(first, frame) if first is not None else UNKNOWN
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return UNKNOWN
        total = self.layer.rows()
        if attr == "chunk" or attr == "tensor_split":
            count = value
        elif total is not None and total % value == 0:
            count = total // value
        else:
            return UNKNOWN
        if total is not None and total % count == 0:
            size = total // count
            return [ParamRef(param.name, param.dims, (i * size, (i + 1) * size), None, param.label) for i in range(count)]
        return [ParamRef(param.name, param.dims, None, (i, count), param.label) for i in range(count)]

    # ------------------------------------------------------------ specs

    def function_spec(self, name: str, call: cst.Call, frame: Frame) -> dict | None:
        table = FUNCTION_ARGUMENTS.get(name)
        if table is None:
            return None
        values = self.read(call, table, frame)
        if values is None:
            return None
        spec: dict[str, Any] = {"init": name}
        if name in ("orthogonal_", "xavier_normal_", "xavier_uniform_"):
            spec["gain_argument"] = values["gain"]
        elif name == "constant_":
            spec["val"] = values["val"]
        else:
            spec.update(values)
        return spec

    def method_spec(self, attr: str, call: cst.Call, frame: Frame) -> dict | None:
        values = self.read(call, METHOD_ARGUMENTS[attr], frame)
        if values is None:
            return None
        if attr == "normal_":
            return {"init": "normal_", **values}
        if attr == "uniform_":
            return {"init": "uniform_", "a": values["from"], "b": values["to"]}
        if attr == "fill_":
            return {"init": "constant_", "val": values["value"]}
        if attr == "zero_":
            return {"init": "zeros_"}
        factor = values["other"]
        if not is_number(factor) or factor == 0:
            return None
        return {"init": "multiply", "factor": float(factor if attr == "mul_" else 1 / factor)}

    def read(self, call: cst.Call, table, frame: Frame) -> dict | None:
        values: dict[str, Any] = {}
        for name, position, default in table:
            node = arg_value(call, position, name)
            if node is None:
                if default is REQUIRED:
                    return None
                values[name] = default
                continue
            value = self.ev(node, frame)
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                return None
            values[name] = float(value) if isinstance(value, int) else value
        return values

    def value_spec(self, value: cst.BaseExpression | None, frame: Frame, depth: int = 0) -> dict | None:
        """The init a new value amounts to: `torch.eye(h) * 1.5` -> eye_ scaled by 1.5."""
        if value is None or depth > 4:
            return None
        value = unwrap_value(frame.model, value)
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, (cst.Multiply, cst.Divide)):
            right = self.ev(value.right, frame)
            left = self.ev(value.left, frame) if isinstance(value.operator, cst.Multiply) else UNKNOWN
            if is_number(right) and right != 0:
                inner, factor = self.value_spec(value.left, frame, depth + 1), (
                    right if isinstance(value.operator, cst.Multiply) else 1 / right)
            elif is_number(left):
                inner, factor = self.value_spec(value.right, frame, depth + 1), left
            else:
                return None
            if inner is None:
                return None
            return dict(inner, scale=float(inner.get("scale", 1.0)) * float(factor))
        if not isinstance(value, cst.Call):
            number = self.ev(value, frame)
            return {"init": "constant_", "val": float(number)} if is_number(number) else None
        qualified = frame.model.qualify_expr(value.func) or ""
        if qualified.startswith("torch.nn.init."):
            name = qualified.rsplit(".", 1)[-1]
            return self.function_spec(name if name.endswith("_") else name + "_", value, frame)
        if isinstance(value.func, cst.Attribute) and value.func.attr.value in METHOD_ARGUMENTS:
            return self.method_spec(value.func.attr.value, value, frame)
        shape = tensor_shape(frame.model, value)
        if shape is None:
            return None
        factory = shape[0]
        if factory == "eye":
            return {"init": "eye_"}
        if factory == "zeros":
            return {"init": "zeros_"}
        if factory == "ones":
            return {"init": "ones_"}
        if factory == "randn":
            return {"init": "normal_", "mean": 0.0, "std": 1.0}
        if factory == "rand":
            return {"init": "uniform_", "a": 0.0, "b": 1.0}
        if factory == "full" and len(value.args) >= 2:
            fill = self.ev(value.args[1].value, frame)
            return {"init": "constant_", "val": float(fill)} if is_number(fill) else None
        return None


def unwrap_value(model: FileModel, value: cst.BaseExpression) -> cst.BaseExpression:
    for _ in range(6):
        if isinstance(value, cst.Call) and model.qualify_expr(value.func) in PARAMETER_CLASSES:
            inner = arg_value(value, 0, "data")
            if inner is None:
                return value
            value = inner
            continue
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
                value.func.attr.value in TENSOR_MOVES:
            value = value.func.value
            continue
        return value
    return value
