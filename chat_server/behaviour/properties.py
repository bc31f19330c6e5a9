"""Property operations: how identify (widget and backend) and the admin API change a card.

`set`, `set_once` (only when not set), `increment` (numbers), `append` and `union` (lists;
union skips values already there), `remove` (from a list), `unset`. Applied in order to one
contact's properties; a value keeps its type (number, text, boolean, ISO date as text, list).
An operation that does not fit the stored type is refused, and then none of them apply.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .filters import PropertyKey, Storable, _Strict

Scalar = Annotated[str, Field(max_length=2000), Storable] | Annotated[float, Field(allow_inf_nan=False)] | bool
Value = Scalar | Annotated[list[Scalar], Field(max_length=1000)]
MAX_LIST = 1000


class PropertyOperation(_Strict):
    op: Literal["set", "set_once", "increment", "append", "union", "remove", "unset"]
    key: PropertyKey
    value: Value | None = None

    @model_validator(mode="after")
    def _value_fits(self) -> PropertyOperation:
        if self.op == "unset":
            if self.value is not None:
                raise ValueError("'unset' takes no value")
        elif self.value is None:
            raise ValueError(f"'{self.op}' needs a value")
        elif self.op == "increment" and (isinstance(self.value, bool) or not isinstance(self.value, int | float)):
            raise ValueError("'increment' adds a number")
        return self


class OperationError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _number(value: float) -> float | int:
    """Whole numbers stay integers, so 1 + 1 is stored as 2, not 2.0."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value


def apply_operations(properties: dict[str, Any], operations: list[PropertyOperation]) -> tuple[dict[str, Any], set[str]]:
    """The properties after the operations, and the keys whose value changed."""
    props = dict(properties)
    for operation in operations:
        key, value, current = operation.key, operation.value, props.get(operation.key)
        if operation.op == "set":
            props[key] = _number(value) if isinstance(value, float) else value
        elif operation.op == "set_once":
            if current is None:
                props[key] = _number(value) if isinstance(value, float) else value
        elif operation.op == "unset":
            props.pop(key, None)
        elif operation.op == "increment":
            if current is not None and (isinstance(current, bool) or not isinstance(current, int | float)):
                raise OperationError(key, f"'{key}' holds {type(current).__name__}, not a number: it cannot be incremented")
            assert isinstance(value, int | float)
            total = (current or 0) + value
            if not math.isfinite(total):
                raise OperationError(key, f"'{key}' would no longer be a finite number")
            props[key] = _number(float(total))
        else:
            if current is not None and not isinstance(current, list):
                raise OperationError(key, f"'{key}' is not a list: '{operation.op}' works on lists")
            items = list(current or [])
            given = value if isinstance(value, list) else [value]
            given = [_number(v) if isinstance(v, float) else v for v in given]
            if operation.op == "append":
                items.extend(given)
            elif operation.op == "union":
                items.extend(v for n, v in enumerate(given) if v not in items and v not in given[:n])
            else:
                items = [v for v in items if v not in given]
            if len(items) > MAX_LIST:
                raise OperationError(key, f"'{key}' would hold more than {MAX_LIST} items")
            props[key] = items
    changed = {k for k in set(properties) | set(props) if properties.get(k) != props.get(k)
               or type(properties.get(k)) is not type(props.get(k))}
    return props, changed
