"""The sandbox that templates render in: Jinja's immutable sandbox under :mod:`scheduler.budget`.

Every call, loop, output piece and ``~`` goes through a check (the template's
tree is rewritten with Jinja's own node classes to call them): a call or a loop
counts against the clock, a macro against the depth, output against what may be
written; operators and str methods whose arguments decide the size of their
result are refused before they build it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from scheduler.budget import (
    MAX_DEPTH,
    MAX_DIGITS_BITS,
    MAX_ITEMS,
    MAX_LOOPS,
    MAX_WRITTEN,
    OverBudget,
    check_braces,
    check_join,
    check_percent,
    check_replace,
    check_width,
    checked_result,
    current,
    size,
    too_big,
)

_STR_WIDTH = frozenset(["center", "ljust", "rjust", "zfill"])


def _check_method(obj: Any, args: tuple[Any, ...]) -> None:
    """Refuse a str method call whose arguments decide a huge result."""
    name = getattr(obj, "__name__", "")
    if name in _STR_WIDTH and args:
        check_width(name, args[0])
    elif name == "expandtabs":
        tab = args[0] if args else 8
        if isinstance(tab, int) and len(obj.__self__) * tab > MAX_ITEMS:
            raise too_big("expandtabs")
    elif name == "join" and args:
        check_join(args[0], obj.__self__)
    elif name == "replace" and len(args) >= 2:
        check_replace(obj.__self__, args[0], args[1])


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, under a budget of time, size, loops and depth."""

    intercepted_binops = frozenset(["*", "**", "%", "+"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        assert self.finalize is None and not self.autoescape  # output() stands in for str()
        self.globals.pop("lipsum", None)  # lipsum(10**9) would write forever; no post needs it

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse an operator that would build too much, before it builds it."""
        if operator == "**" and isinstance(right, int) and isinstance(left, int):
            if abs(right) > 64:
                raise SecurityError(f"the exponent {right} is too large")
            if left.bit_length() * right > MAX_DIGITS_BITS:
                raise OverBudget("** builds a number too large for any post")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and size(seq) * times > MAX_ITEMS
                ):
                    raise SecurityError(f"repeating a text or list {times} times is too long")
        elif operator == "+" and isinstance(left, str | list | tuple):
            if isinstance(right, str | list | tuple) and size(left) + size(right) > MAX_ITEMS:
                raise too_big("+")
        elif operator == "%" and isinstance(left, str):
            check_percent(left)
            if size(right) > MAX_ITEMS:
                raise too_big("formatting with %")
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call from a template, counting time and macro depth."""
        spent = current()
        if spent is not None:
            spent.tick()
        if isinstance(getattr(obj, "__self__", None), str):
            _check_method(obj, args)
        if not isinstance(obj, Macro) or spent is None:
            return checked_result("this call", super().call(context, obj, *args, **kwargs))
        spent.depth += 1
        try:
            if spent.depth > MAX_DEPTH:
                raise OverBudget(
                    f"macros call each other more than {MAX_DEPTH} deep "
                    "(does a macro call itself without end?)"
                )
            return super().call(context, obj, *args, **kwargs)
        finally:
            spent.depth -= 1

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Check a ``str.format`` pattern's widths when the method is reached."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        check_braces(value.__self__)

        def bounded(*args: Any, **kwargs: Any) -> str:
            if size(list(args)) + size(kwargs) > MAX_ITEMS:
                raise too_big("format")
            return wrapped(*args, **kwargs)

        return bounded

    def output(self, value: Any) -> str:
        """Turn a value into output text (in place of ``str``), counting what is written."""
        if value.__class__ is str:
            text = value
        elif size(value) > MAX_ITEMS:
            raise too_big("printing this value")
        else:
            text = str(value)
        spent = current()
        if spent is not None:
            spent.written += len(text)
            if spent.written > MAX_WRITTEN:
                raise too_big("rendering", MAX_WRITTEN)
        return text

    def joined(self, parts: tuple[Any, ...]) -> str:
        """Join the operands of ``~``, refusing a result too long for any post."""
        if sum(size(p) for p in parts) > MAX_ITEMS:
            raise too_big("~")
        return "".join(map(str, parts))

    def loop_items(self, items: Iterable[Any]) -> Iterator[Any]:
        """Yield a loop's items, counting iterations against the budget."""
        spent = current()
        if spent is None:
            yield from items
            return
        for item in items:
            spent.loops += 1
            if spent.loops > MAX_LOOPS:
                raise OverBudget(
                    f"loops more than {MAX_LOOPS:,} times in one render; loop over fewer items"
                )
            spent.tick()
            yield item

    def compile(
        self,
        source: str | nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        """Compile a template whose loops, output and ``~`` go through the budget.

        The template is parsed (``parse``), its tree rewritten with Jinja's node
        classes (:class:`_Metered`), and the tree compiled: only Jinja's public API.
        """
        if isinstance(source, str):
            source = self.parse(source, name, filename)
        tree = _Metered().visit(source)
        if raw:
            return super().compile(tree, name, filename, raw=True, defer_init=defer_init)
        return super().compile(tree, name, filename, raw=False, defer_init=defer_init)


def _call(method: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    """``environment.<method>(*args)`` as a node."""
    return nodes.Call(
        nodes.EnvironmentAttribute(method, lineno=lineno), args, [], None, None, lineno=lineno
    )


class _Metered(NodeTransformer):
    """Route every loop's items through ``loop_items``, output through ``output``, ``~`` through ``joined``."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call("loop_items", [node.iter], node.lineno)  # type: ignore[list-item]
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_call("output", [child], child.lineno) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        operands = nodes.Tuple(node.nodes, "load", lineno=node.lineno)
        return _call("joined", [operands], node.lineno)
