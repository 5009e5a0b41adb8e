"""Template rendering for workflow and source definitions.

Rules (DESIGN.md, "Semantics"):
- A string that is exactly one `{{ expression }}` yields the expression's native
  value (an int stays an int, a dict stays a dict); anything else renders to a
  string.
- Undefined names are errors, never empty strings (StrictUndefined).
- Templates are sandboxed (no attribute access to Python internals, no
  mutation of the context).
- Rendering is never recursive: only strings written in the definition are
  templates. Values from the event are data and pass through untouched, even
  when they contain `{{ ... }}`.

One deliberate departure from stock Jinja: `a.b` on a mapping reads the key
`b` before any attribute, so a form field called `items` or `values` is the
field, not the dict method.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import RenderError
from engine.filters import FILTERS

_SINGLE_EXPRESSION = re.compile(r"^\{\{[-+]?(.*?)[-+]?\}\}$", re.DOTALL)


class _Environment(ImmutableSandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


class Renderer:
    """Compiles and caches templates; safe to share between threads."""

    def __init__(self) -> None:
        self.env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.env.filters.update(FILTERS)
        self._compiled: dict[str, Any] = {}

    def render(self, value: Any, context: Mapping[str, Any]) -> Any:
        """Render every string inside `value` (a definition fragment: str, list, dict)."""
        if isinstance(value, str):
            return self.render_str(value, context)
        if isinstance(value, dict):
            return {key: self.render(item, context) for key, item in value.items()}
        if isinstance(value, list):
            return [self.render(item, context) for item in value]
        return value

    def render_str(self, source: str, context: Mapping[str, Any]) -> Any:
        """Render one template string; native value when it is a single expression."""
        if "{" not in source:
            return source
        kind, compiled = self._compile(source)
        try:
            if kind == "expression":
                result = compiled(**context)
                if isinstance(result, Undefined):
                    result._fail_with_undefined_error()
                if callable(result):
                    raise RenderError(f"{source!r} yields a function, not a value; did you forget the ()?")
                return result
            return compiled.render(context)
        except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise RenderError(f"{source!r}: {exc}") from exc

    def is_true(self, condition: str | bool | None, context: Mapping[str, Any]) -> bool:
        """Evaluate an `if:`; None (absent) is true. Strings 'false', '0', '' and 'none' are false."""
        if condition is None:
            return True
        value = self.render(condition, context)
        if isinstance(value, str):
            return value.strip().lower() not in ("", "false", "0", "no", "none", "null")
        return bool(value)

    def check_syntax(self, source: str) -> None:
        """Raise RenderError if `source` is not a valid template (used when loading definitions)."""
        if "{" in source:
            self._compile(source)

    def _compile(self, source: str) -> tuple[str, Any]:
        cached = self._compiled.get(source)
        if cached is None:
            cached = self._compiled[source] = self._compile_uncached(source)
        return cached

    def _compile_uncached(self, source: str) -> tuple[str, Any]:
        try:
            tree = self.env.parse(source)
            match = _SINGLE_EXPRESSION.match(source)
            if match and _is_single_output(tree):
                return "expression", self.env.compile_expression(match.group(1), undefined_to_none=False)
            return "template", self.env.from_string(source)
        except TemplateSyntaxError as exc:
            raise RenderError(f"{source!r}: template syntax error: {exc.message}") from exc


def _is_single_output(tree: nodes.Template) -> bool:
    """True when the whole template is one `{{ ... }}` with nothing around it."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return False
    parts = tree.body[0].nodes
    return len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData)
