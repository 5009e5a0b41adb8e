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

The sandbox also bounds what one template may allocate, because an operand can
come from the sender (`{{ '-' * event.data.qty }}`): repetition (`*`) makes at
most MAX_REPEAT characters or items (Jinja's own bound on `range()`), a power
at most MAX_POWER_BITS bits, and a whole rendered string at most
MAX_RENDERED_CHARS. Jinja's `lipsum(n)` (unbounded text), `namespace` (the one
way to grow a value across loop iterations), `cycler` and `joiner` are not
offered, and a template cannot include, import or extend another: there are no
files to read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment

from engine.errors import RenderError
from engine.filters import FILTERS

_SINGLE_EXPRESSION = re.compile(r"^\{\{[-+]?(.*?)[-+]?\}\}$", re.DOTALL)

MAX_REPEAT = MAX_RANGE  # characters or items one `*` may make: 100,000
MAX_POWER_BITS = 64 * 1024  # about 20,000 digits
MAX_RENDERED_CHARS = 16 * 1024 * 1024  # one rendered string; far above any API field, far below a worker's memory
_GLOBALS = ("range", "dict")  # of Jinja's default globals, the ones a workflow has a use for
_OTHER_TEMPLATES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


class _Environment(ImmutableSandboxedEnvironment):
    # Intercepted operators also escape Jinja's compile-time constant folding, so `'a' * 10**9`
    # written as literals is refused when it runs instead of being built while the workflow loads.
    intercepted_binops = frozenset({"*", "**", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repetition(left, right)
            _check_repetition(right, left)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_widths(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Padding widths are sizes too: `x.center(10**9)`. (Argument names as Jinja's own.)"""
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        if isinstance(owner, str) and name in _PADDING_METHODS:
            _check_size(name, args[:1])
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        """So are format widths: `'{:>999999999}'.format(x)` (Jinja wraps str.format when it is looked up)."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_widths(value.__self__)
        return wrapped


_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
# A width or precision in a %-format (`%999d`, `%.999f`) or a str.format spec (`{:>999}`, `{0:.999}`).
_WIDTHS = re.compile(r"%(?:\(\w+\))?[-#0 +]*(\d+)?(?:\.(\d+))?|\{[^{}:]*:[^{}\d]*(\d+)?[,_]?(?:\.(\d+))?[^{}]*\}")


def _check_widths(template: str) -> None:
    for match in _WIDTHS.finditer(template):
        _check_size("a format width", [int(group) for group in match.groups() if group])


def _check_size(what: str, sizes: Iterable[Any]) -> None:
    for size in sizes:
        if isinstance(size, int) and size > MAX_REPEAT:
            raise SecurityError(f"{what} of {size} characters; the sandbox allows at most {MAX_REPEAT}")


def _bounded_filter(name: str, filter_function: Any, width_argument: int) -> Any:
    """A Jinja filter whose width argument (`center(80)`, `indent(4)`) is bounded like repetition."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        if len(args) > width_argument:
            _check_size(f"|{name}", [args[width_argument]])
        _check_size(f"|{name}", [kwargs.get("width")])
        return filter_function(*args, **kwargs)

    return bounded


def _check_repetition(sequence: Any, times: Any) -> None:
    if isinstance(sequence, str | list | tuple) and isinstance(times, int) and len(sequence) * times > MAX_REPEAT:
        raise SecurityError(
            f"repeating a value of length {len(sequence)} {times} times would make {len(sequence) * times} "
            f"characters or items; the sandbox allows at most {MAX_REPEAT}"
        )


def _check_power(base: Any, exponent: Any) -> None:
    integers = isinstance(base, int) and isinstance(exponent, int)
    if integers and abs(base) > 1 and exponent > 0 and abs(base).bit_length() * exponent > MAX_POWER_BITS:
        raise SecurityError(f"{base} ** {exponent} is too large a number; the sandbox allows {MAX_POWER_BITS} bits")


def _bounded_join(chunks: Iterable[str], source: str) -> str:
    """Join a template's output, refusing it once it grows past MAX_RENDERED_CHARS (loops can multiply it)."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDERED_CHARS:
            raise RenderError(f"{source[:80]!r}: renders to more than {MAX_RENDERED_CHARS} characters")
        out.append(chunk)
    return "".join(out)


class Renderer:
    """Compiles and caches templates; safe to share between threads."""

    def __init__(self) -> None:
        self.env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.env.globals = {name: self.env.globals[name] for name in _GLOBALS}
        self.env.filters.update(FILTERS)
        for name in ("center", "indent"):  # value, then width
            self.env.filters[name] = _bounded_filter(name, self.env.filters[name], 1)
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
            return _bounded_join(compiled.generate(context), source)
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
            if any(True for _ in tree.find_all(_OTHER_TEMPLATES)):
                raise RenderError(
                    f"{source!r}: a workflow template cannot include, import or extend other templates; "
                    "it sees only its own text and the run's context"
                )
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
