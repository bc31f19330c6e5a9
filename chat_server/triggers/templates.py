"""Trigger message templates: Liquid, sandboxed and bounded.

Liquid reaches only the plain data it is handed (no attributes of Python objects, no imports),
templates cannot load other templates (no file system: `include` and `render` are removed),
and loops, the output and the local namespace are bounded, so a template written in the inbox
can neither read the server nor hold a worker. Whatever goes wrong is a `TemplateError` with a
reason an admin can act on; the send is then recorded as failed and nothing is sent.
"""

from __future__ import annotations

from typing import Any, ClassVar

from liquid import DictLoader, Environment
from liquid.exceptions import LiquidError

MAX_TEMPLATE_CHARS = 5000
MAX_OUTPUT_CHARS = 10_000


class TemplateError(Exception):
    pass


class _Sandbox(Environment):
    loop_iteration_limit: ClassVar[int | None] = 1000
    output_stream_limit: ClassVar[int | None] = MAX_OUTPUT_CHARS * 4
    local_namespace_limit: ClassVar[int | None] = 20_000
    context_depth_limit: ClassVar[int] = 10
    block_nesting_limit: ClassVar[int] = 10


_env = _Sandbox(loader=DictLoader({}), strict_filters=True)
for _tag in ("include", "render"):
    _env.tags.pop(_tag, None)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def parse_template(text: str) -> Any:
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"a template is at most {MAX_TEMPLATE_CHARS} characters")
    try:
        return _env.from_string(text)
    except LiquidError as exc:
        raise TemplateError(_reason(exc)) from exc


def render(text: str, context: dict[str, Any]) -> str:
    """The message for one contact, or TemplateError saying why not (never a half message)."""
    template = parse_template(text)
    try:
        out: str = template.render(**context)
    except LiquidError as exc:
        raise TemplateError(_reason(exc)) from exc
    except (RecursionError, MemoryError, ValueError, TypeError, ArithmeticError) as exc:
        raise TemplateError(f"the template failed: {_reason(exc)}") from exc
    out = out.strip()
    if not out:
        raise TemplateError("the template renders to an empty message")
    if len(out) > MAX_OUTPUT_CHARS:
        raise TemplateError(f"the message would be longer than {MAX_OUTPUT_CHARS} characters")
    return out


def contact_context(contact: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a template sees: the contact's card fields and properties, and the event that fired."""
    properties = dict(contact.properties or {})
    name = contact.name or None
    return {
        "contact": {
            "id": contact.id, "name": name, "first_name": name.split()[0] if name else None,
            "email": contact.email, "phone": contact.phone, "properties": properties, **{
                k: v for k, v in properties.items() if k not in ("id", "name", "email", "phone", "properties")},
        },
        "event": event or {},
    }
