"""JSON-safe numbers: JSON has no inf/nan, so they travel as the strings "inf", "-inf", "nan".

Torch-free; used by `ProbeResult.to_json`, the `probe` objects of `gradlint check --probe`
and the result file of `gradlint probe`.
"""

from __future__ import annotations

import math
from typing import Any


def json_number(value: Any) -> Any:
    """JSON has no inf/nan: finite floats stay numbers, the others become the strings
    "inf", "-inf" and "nan". Everything else is returned unchanged."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def from_json_number(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return json_number(value)

