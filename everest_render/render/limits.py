"""Bounds on what a provider's template may spend: the same input fails the same way everywhere.

A template runs under a **step budget** (`STEP_BUDGET` steps per template per cluster): every
call, attribute or item access, filter, ``range`` item and output chunk is one step, so a loop
that runs too long fails at the same point on every machine. A wall-clock backstop
(`WALL_CLOCK_SECONDS`) catches what the steps do not count. Macro calls nest at most
`MAX_DEPTH` deep. No string, list or output grows beyond `MAX_OUTPUT_CHARS`, no integer beyond
`MAX_INTEGER_BITS` bits: the operators that could (``*``, ``**``, ``+``, ``%``) and every call
are checked before they allocate, and ``~`` (of parts each within the limits) once joined.
Helpers that are not deterministic (``random``, ``lipsum``) are not offered, and output that
prints an object's identity (``<function f at 0x7f...>``) is refused.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from functools import update_wrapper
from itertools import chain, repeat
from operator import length_hint
from types import BuiltinMethodType, GeneratorType, MethodType
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, DependencyFinderVisitor, Frame, optimizeconst
from jinja2.environment import TemplateModule
from jinja2.idtracking import VAR_LOAD_ALIAS, VAR_LOAD_PARAMETER, VAR_LOAD_RESOLVE, VAR_LOAD_UNDEFINED
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter, safe_range
from jinja2.utils import Namespace, _PassArg

STEP_BUDGET = 2_000_000
WALL_CLOCK_SECONDS = 20.0
MAX_DEPTH = 40
MAX_OUTPUT_CHARS = 4 * 1024 * 1024
MAX_INTEGER_BITS = 1024
NONDETERMINISTIC = ("random", "shuffle", "lipsum")
_IDENTITY = re.compile(r"<[^<>\n]{1,200} (at|object at) 0x[0-9a-fA-F]{4,}>")
_HUGE_WIDTH = re.compile(r"\d{8,}")  # a format width of 10**7 characters or more
_WIDTH_LIMIT = 10**7  # what _HUGE_WIDTH finds written, for a width given as a value
# A replacement field with a field inside its spec (``{:{w}}``): its width is an argument. Also
# matches escaped braces (``{{{x}}}``), which only costs the check below.
_NESTED_FIELD = re.compile(r"\{[^{}]*\{")
# A printf-style conversion: its mapping key, width and precision (``*``: taken from the values).
_PRINTF_SPEC = re.compile(r"%(\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
_DICT_ATTRIBUTES = frozenset(dir(dict))
# Exact types whose attributes the sandbox judges by type and name alone (no subclasses: a
# subclass may define anything).
_PLAIN_TYPES = frozenset({str, dict, list, tuple, int, float, bool, type(None)})
_FORMATTERS = frozenset({"format", "format_map"})


class TemplateLimit(Exception):
    """A template went beyond one of the bounds above."""


class Budget:
    """The steps a template has spent, counted by ``next(budget.ticks)``: an iterator that
    yields ``None`` once per step, in C (a block of `itertools.repeat` at a time), and runs
    Python only at the steps that must be looked at: every 1,024th (the wall clock) and the
    first beyond the budget, where it raises the limit instead of yielding, and goes on
    raising it. A tick costs a C call, in an expression too, so the code Jinja generates for
    a template counts its steps itself (`_BoundedCodeGenerator`); counting in Python, an
    integer stored on every step was a tenth of the template stage."""

    __slots__ = ("_block", "_end", "depth", "started", "ticks")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.depth = 0
        self.started = time.monotonic()
        self._block: Iterator[None] = iter(())
        self._end = 0  # the step the current block ends at
        self.ticks: Iterator[None] = chain.from_iterable(self._blocks())

    @property
    def steps(self) -> int:
        """How many steps were spent since `reset`."""
        return self._end - length_hint(self._block)

    def step(self) -> None:
        next(self.ticks)

    def _blocks(self) -> Iterator[Iterator[None]]:
        steps = 0
        while True:
            # Steps up to the next one to look at (a multiple of 1,024, or the first beyond
            # the budget) go by unchecked; that one is checked when it is taken.
            mark = min((steps | 0x3FF) + 1, STEP_BUDGET + 1)
            if mark - 1 > steps:
                self._block, self._end = repeat(None, mark - 1 - steps), mark - 1
                yield self._block
            steps = mark
            problem = _problem(steps, self.started)
            self._block, self._end = (iter(()), steps) if problem else (repeat(None, 1), steps)
            if problem:
                yield _Refusing(problem)
                return
            yield self._block


def _problem(steps: int, started: float) -> str | None:
    if steps > STEP_BUDGET:
        return f"template ran out of its step budget ({STEP_BUDGET:,} steps): a loop or recursion too long"
    if steps & 0x3FF == 0 and time.monotonic() - started > WALL_CLOCK_SECONDS:
        return f"template ran longer than {WALL_CLOCK_SECONDS:.0f} s (the wall-clock backstop)"
    return None


class _Refusing(Iterator[None]):
    """The ticks beyond a bound: each one raises it (the template is stopped; whatever asks
    for another step after, as a caller that caught the first, is refused again)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def __next__(self) -> None:
        raise TemplateLimit(self.problem)


# Tuples, not ``str | list``: that builds a union object on every call.
_SEQUENCES = (str, list, tuple, dict, bytes)
_REPEATABLE = (str, list, tuple)


def check_size(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is dict or kind is list or kind is tuple:  # the common cases, first
        if len(value) > MAX_OUTPUT_CHARS:
            raise TemplateLimit(f"a value of {len(value):,} items or characters, more than the limit of {MAX_OUTPUT_CHARS:,}")
        return value
    if kind is bool or value is None:
        return value
    if kind is int:
        if value.bit_length() > MAX_INTEGER_BITS:
            raise TemplateLimit(f"an integer of more than {MAX_INTEGER_BITS} bits")
        return value
    if isinstance(value, _SEQUENCES) and len(value) > MAX_OUTPUT_CHARS:
        raise TemplateLimit(f"a value of {len(value):,} items or characters, more than the limit of {MAX_OUTPUT_CHARS:,}")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INTEGER_BITS:
        raise TemplateLimit(f"an integer of more than {MAX_INTEGER_BITS} bits")
    return value


# What allocates as much as an integer argument says: str methods and filters taking a width.
WIDTH_TAKERS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap", "truncate", "do_center", "do_indent"})


# What check_size passes at a glance: these when short enough (a call's arguments are mostly
# these), and those always: exact types that are no str, list, tuple, dict, bytes or int, so
# check_size has nothing to check of them. Besides plain values, what Jinja hands the helpers
# first (the context, eval context or environment, `_PassArg`), what ``map``, ``select`` and
# the like return (a generator), and a mapping's views (``storages.values()``); the sandbox
# and the namespace, once their classes are defined below.
_SIZED = frozenset({str, dict, list, tuple})
_UNSIZED = frozenset(
    {bool, type(None), float, GeneratorType, EvalContext, Context, type({}.keys()), type({}.values()), type({}.items())}
)


def _check_arguments(args: Sequence[Any], kwargs: dict[str, Any], name: str) -> None:
    for value in args:
        kind = type(value)
        if kind in _SIZED:
            if len(value) > MAX_OUTPUT_CHARS:
                check_size(value)
        elif kind not in _UNSIZED:
            check_size(value)
    for value in kwargs.values():
        check_size(value)
    if name in WIDTH_TAKERS:
        _check_widths(args, kwargs, name)


def _check_widths(args: Sequence[Any], kwargs: dict[str, Any], name: str) -> None:
    """The integers given to what allocates as much as they say (`WIDTH_TAKERS`), refused beyond the limit."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT_CHARS:
            raise TemplateLimit(f"{name.removeprefix('do_')}({value:,}): widths are limited to {MAX_OUTPUT_CHARS:,}")


class _CountedRange(Sequence[int]):
    """``range`` whose iteration costs a step per item."""

    def __init__(self, items: range, budget: Budget) -> None:
        self.items, self.budget = items, budget

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]

    def __iter__(self) -> Iterator[int]:
        budget = self.budget
        for item in self.items:
            next(budget.ticks)
            yield item


class BoundedNamespace(Namespace):
    """``namespace()``, whose attributes cannot grow beyond the limits."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, check_size(value))


# Exact types whose attributes' safety depends on the type and the name alone: the plain ones
# and the objects Jinja gives a template (an imported template, ``loop``, ``namespace()``).
_JINJA_TYPES = frozenset({TemplateModule, LoopContext, Macro, BoundedNamespace})
_JUDGED_BY_TYPE = _PLAIN_TYPES | _JINJA_TYPES
_METHODS = (MethodType, BuiltinMethodType)


def _takes_more(macro: Macro) -> bool:
    """Whether `Macro.__call__` passes the macro more than the arguments it is given."""
    return bool(macro.caller or macro.catch_kwargs or macro.catch_varargs or macro._default_autoescape)


def _takes_nothing_from_jinja(function: Any) -> bool:
    """Whether Jinja's `Context.call` calls ``function`` as it is: it passes no context,
    environment or eval context first to it (or to its ``__call__``)."""
    if _PassArg.from_obj(function) is not None:
        return False
    return not hasattr(function, "__call__") or _PassArg.from_obj(function.__call__) is None  # noqa: B004


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with the sandbox's checks written into the template's code:

    - ``a ~ b`` is checked: Jinja joins it with no hook a sandbox can intercept, so ``{% set
      s = s ~ s %}`` written 30 times made a string of a thousand million characters. The
      joined text goes through `BoundedSandbox.sized`; a constant one is still joined when
      the template compiles.
    - ``x.name`` of a plain dict holding the key (the template context is plain JSON-like
      data: most reads of a template) is read and its step counted in place; anything else
      goes to `BoundedSandbox.getattr` as before. The same value and the same step, without
      a call.
    - A filter or test given only its value calls the wrapper's one-argument form
      (``_bounded``'s ``one``): the same checks, without packing arguments.
    """

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")

    @optimizeconst
    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        if self.environment.is_async or node.attr in _DICT_ATTRIBUTES:
            super().visit_Getattr(node, frame)
            return
        # Every Getattr is evaluated whole before the next one assigns ``_o`` (an enclosing
        # one assigns it only once this one's value is there): one name serves them all.
        key = repr(node.attr)
        self.write(f"((next(environment.budget.ticks) or _o[{key}]) if type(_o := ")
        self.visit(node.node, frame)
        self.write(f") is dict and {key} in _o else environment.getattr(_o, {key}))")

    @optimizeconst
    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if self.environment.is_async or isinstance(node.arg, nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        # ``x[key]`` of a plain dict holding a str key, read in place (the sandbox's getitem
        # reads it so too); the item and the key evaluated first, in that order, as for the
        # call. Names of their own: the key may read other items meanwhile.
        self._items = getattr(self, "_items", 0) + 1
        item, key = f"_i{self._items}", f"_k{self._items}"
        self.write(f"((next(environment.budget.ticks) or {item}[{key}]) if ({item} := ")
        self.visit(node.node, frame)
        self.write(f") is {item} and type({key} := ")
        self.visit(node.arg, frame)
        self.write(f") is str and type({item}) is dict and {key} in {item} else environment.getitem({item}, {key}))")

    def enter_frame(self, frame: Frame) -> None:
        # A free name is looked up where Jinja's `Context.resolve_or_missing` looks (the
        # context's own variables, then what it was given), in place rather than by a call
        # for each; with a context of another class, or a derived one, by Jinja's call.
        if self.environment.context_class is not Context or self.get_context_ref() != "context":
            super().enter_frame(frame)
            return
        undefined = []
        for target, (action, param) in frame.symbols.loads.items():
            if action == VAR_LOAD_RESOLVE:
                key = repr(param)
                self.writeline(f"{target} = context.vars[{key}] if {key} in context.vars else context.parent.get({key}, missing)")
            elif action == VAR_LOAD_ALIAS:
                self.writeline(f"{target} = {param}")
            elif action == VAR_LOAD_UNDEFINED:
                undefined.append(target)
            elif action != VAR_LOAD_PARAMETER:
                raise NotImplementedError("unknown load instruction")
        if undefined:
            self.writeline(f"{' = '.join(undefined)} = missing")

    def pull_dependencies(self, nodes: Iterable[nodes.Node]) -> None:
        # Next to each filter and test Jinja looks up for this function (the template's, or a
        # block's), its one-argument form (`_filter_test_common`), or itself if it has none.
        nodes = list(nodes)
        super().pull_dependencies(nodes)
        used = DependencyFinderVisitor()
        for node in nodes:
            used.visit(node)
        for ident in (*(self.filters[n] for n in sorted(used.filters)), *(self.tests[n] for n in sorted(used.tests))):
            self.writeline(f"{ident}_1 = getattr({ident}, 'one', {ident})")

    @contextmanager
    def _filter_test_common(self, node: nodes.Filter | nodes.Test, frame: Frame, is_filter: bool) -> Iterator[None]:
        table = self.environment.filters if is_filter else self.environment.tests
        func: Any = table.get(node.name)
        alone = not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs)
        if not alone or self.environment.is_async or func is None or _PassArg.from_obj(func) is not None:
            with super()._filter_test_common(node, frame, is_filter):
                yield
            return
        self.write(f"{(self.filters if is_filter else self.tests)[node.name]}_1(")
        yield
        self.write(")")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator
    sized = staticmethod(check_size)  # what ``a ~ b`` joins to, checked (_BoundedCodeGenerator)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = Budget()
        self._safe_attributes: dict[tuple[type, str], bool] = {}
        self._plain_methods: set[tuple[type, str]] = set()
        # The globals called as they are (`call`), by identity: filled by bound_helpers.
        self._direct: dict[int, Any] = {}
        budget = self.budget
        for name in NONDETERMINISTIC:
            self.filters.pop(name, None)
            self.globals.pop(name, None)
        self.globals["range"] = lambda *a: _CountedRange(safe_range(*a), budget)
        self.globals["namespace"] = BoundedNamespace

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        # A template's globals as a plain dict, not Jinja's ChainMap over the environment's:
        # every render and every import copies them into a new context, and a ChainMap is
        # copied key by key in Python. The same mapping, since the environment's globals are
        # complete before any template is loaded (templates.sandbox; Jinja asks as much).
        return {**self.globals, **(d or {})}

    def bound_helpers(self) -> None:
        """Wrap every filter and test (after the provider's are added) so each costs a step
        and none takes or returns a value beyond the limits."""
        for table in (self.filters, self.tests):
            for name, function in list(table.items()):
                if not getattr(function, "_bounded", False):
                    table[name] = _bounded(function if self.is_async else _synchronous(function), self.budget)
        # The globals `call` may call as they are: what the sandbox deems safely callable and
        # Jinja passes nothing to (``dict``, ``namespace``, ``range``, ``required``, ``fail``).
        for function in self.globals.values():
            if callable(function) and self.is_safe_callable(function) and _takes_nothing_from_jinja(function):
                self._direct[id(function)] = function

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        self.budget.step()
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            if right * max(left.bit_length(), 1) > MAX_INTEGER_BITS:
                raise TemplateLimit(f"{left} ** {right} is larger than {MAX_INTEGER_BITS} bits")
        if operator == "*" and isinstance(right, int) and isinstance(left, _REPEATABLE) and len(left) * right > MAX_OUTPUT_CHARS:
            raise TemplateLimit(f"repeating {len(left):,} items {right:,} times is beyond the limit of {MAX_OUTPUT_CHARS:,}")
        if operator == "*" and isinstance(left, int) and isinstance(right, _REPEATABLE) and len(right) * left > MAX_OUTPUT_CHARS:
            raise TemplateLimit(f"repeating {len(right):,} items {left:,} times is beyond the limit of {MAX_OUTPUT_CHARS:,}")
        if operator == "%" and isinstance(left, str) and (_HUGE_WIDTH.search(left) or _huge_star_width(left, right)):
            raise TemplateLimit("a format width beyond the limit")
        return check_size(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """The sandbox's ``str.format``, and where a field's width or precision is itself a
        field (``'{:{w}}'.format(1, w=10**9)``), the widths it comes to checked first: only
        the arguments tell them, and formatting would allocate before any check after."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None or not _NESTED_FIELD.search(value.__self__):
            return wrapped
        text, is_format_map = value.__self__, value.__name__ == "format_map"
        probe = _WidthProbe(self)

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_format_map and len(args) == 1 and not kwargs:
                probe.vformat(text, (), args[0])
            elif not is_format_map:
                probe.vformat(text, args, kwargs)
            return wrapped(*args, **kwargs)  # which says what is wrong with a bad call

        return update_wrapper(bounded, value)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = __self.budget
        next(budget.ticks)
        for value in args:  # `_check_arguments`, inline (the widths below, for the few that take one)
            kind = type(value)
            if kind in _SIZED:
                if len(value) > MAX_OUTPUT_CHARS:
                    check_size(value)
            elif kind not in _UNSIZED:
                check_size(value)
        if kwargs:
            for value in kwargs.values():
                kind = type(value)
                if kind in _SIZED:
                    if len(value) > MAX_OUTPUT_CHARS:
                        check_size(value)
                elif kind not in _UNSIZED:
                    check_size(value)
        kind = type(__obj)
        # The sandbox's `call` and Jinja's `Context.call` come to the call itself for a callable
        # known to be safe that takes no context (a macro, a method of a builtin value, a global
        # of ours, ``dict``): it is called so, without their per-call inspection of it.
        if kind is Macro:  # (a macro has no __name__: no width or format to check)
            budget.depth += 1
            try:
                if budget.depth > MAX_DEPTH:
                    raise TemplateLimit(f"macros nested more than {MAX_DEPTH} deep (a recursion without end?)")
                if kwargs:  # Jinja's loop and block variables, which `Context.call` drops too
                    kwargs.pop("_block_vars", None)
                    kwargs.pop("_loop_vars", None)
                if not kwargs and len(args) == __obj._argument_count and not _takes_more(__obj):
                    # What `Macro.__call__` comes to for a macro given each of its arguments by
                    # position that takes no caller, varargs or kwargs (and escapes nothing):
                    # its function, on them.
                    result = __obj._func(*args)
                else:
                    result = __obj(*args, **kwargs)
            except StopIteration:
                result = __self.undefined("value was undefined because a callable raised a StopIteration exception")
            finally:
                budget.depth -= 1
        else:
            name = getattr(__obj, "__name__", "")
            if name in WIDTH_TAKERS:
                _check_widths(args, kwargs, name)
            elif name in _FORMATTERS:
                # A template gets str.format wrapped by the sandbox (its SandboxedFormatter), which
                # keeps the method as __wrapped__: the widths are in the string it is bound to.
                text = getattr(__obj, "__self__", None)
                if text is None:
                    text = getattr(getattr(__obj, "__wrapped__", None), "__self__", None)
                if isinstance(text, str) and _HUGE_WIDTH.search(text):
                    raise TemplateLimit("a format width beyond the limit")
            if (kind is BuiltinMethodType and type(__obj.__self__) in _PLAIN_TYPES) or __self._direct.get(id(__obj)) is __obj:
                if kwargs:
                    kwargs.pop("_block_vars", None)
                    kwargs.pop("_loop_vars", None)
                try:
                    result = __obj(*args, **kwargs)
                except StopIteration:
                    result = __self.undefined("value was undefined because a callable raised a StopIteration exception")
            elif isinstance(__obj, Macro):  # of a subclass: as Jinja calls it
                budget.depth += 1
                try:
                    if budget.depth > MAX_DEPTH:
                        raise TemplateLimit(f"macros nested more than {MAX_DEPTH} deep (a recursion without end?)")
                    return check_size(super().call(__context, __obj, *args, **kwargs))
                finally:
                    budget.depth -= 1
            else:
                result = super().call(__context, __obj, *args, **kwargs)
        kind = type(result)
        if kind in _SIZED:
            if len(result) > MAX_OUTPUT_CHARS:
                check_size(result)
            return result
        return result if kind in _UNSIZED else check_size(result)

    def getattr(self, obj: Any, attribute: str) -> Any:
        next(self.budget.ticks)
        kind = type(obj)
        if kind is dict and attribute not in _DICT_ATTRIBUTES:
            # What the sandbox does for a field of a mapping (``cluster.name``), without trying
            # the attribute first and catching its AttributeError: most reads of a template.
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        if (kind, attribute) in self._plain_methods:
            return getattr(obj, attribute)
        if kind in _JINJA_TYPES and self._safe_attributes.get((kind, attribute)):
            # A field of an object Jinja hands the template (``m.storage`` of an imported
            # template, ``loop.index``, ``ns.found``), which the sandbox let through before: the
            # same answer (`is_safe_attribute`), unless it is a ``format`` method, which the
            # sandbox wraps; a missing one goes the sandbox's way below.
            try:
                value = getattr(obj, attribute)
            except AttributeError:
                pass
            else:
                if not (isinstance(value, _METHODS) and value.__name__ in _FORMATTERS):
                    return value
        value = super().getattr(obj, attribute)
        if kind in _PLAIN_TYPES and attribute not in _FORMATTERS and self._safe_attributes.get((kind, attribute)):
            # A method of a builtin value the sandbox let through as it is (``name.startswith``;
            # never ``format``, which it wraps): the same answer for every value of the type.
            self._plain_methods.add((kind, attribute))
        return value

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # For the builtin values templates read (``name.startswith``, ``items.values``) and the
        # objects Jinja itself hands them (an imported template, ``loop``, a namespace) the
        # sandbox's answer depends only on the type and the name (not on the object or the
        # value): asked once per pair, instead of its isinstance tests every time.
        kind = type(obj)
        if kind in _JUDGED_BY_TYPE:
            safe = self._safe_attributes.get((kind, attr))
            if safe is None:
                safe = self._safe_attributes[(kind, attr)] = super().is_safe_attribute(obj, attr, value)
            return safe
        return super().is_safe_attribute(obj, attr, value)

    def getitem(self, obj: Any, argument: Any) -> Any:
        next(self.budget.ticks)
        return super().getitem(obj, argument)


_UNSIZED |= {BoundedSandbox, BoundedNamespace}  # (see `_UNSIZED` above)


class _WidthProbe(SandboxedFormatter):
    """Goes through a ``str.format`` call as the sandbox's formatter does (the same fields, read
    the same sandboxed way), refusing each spec whose width or precision, once its nested
    fields are filled in, is beyond the limit before that field is formatted."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        if _HUGE_WIDTH.search(format_spec):
            raise TemplateLimit("a format width beyond the limit")
        return super().format_field(value, format_spec)


def _huge_star_width(text: str, values: Any) -> bool:
    """Whether a ``*`` width or precision of printf-style ``text`` takes a value (from
    ``values``, as ``%`` takes them) beyond the limit. A bad call is left to ``%`` to refuse."""
    if "*" not in text:
        return False
    taken = values if isinstance(values, tuple) else (values,)
    index = 0
    for spec in _PRINTF_SPEC.finditer(text):
        key, width, precision, conversion = spec.groups()
        if conversion == "%" or key is not None:
            continue  # ``%%`` takes nothing; a mapping's conversions take no ``*``
        for star in (width, precision):
            if star == "*":
                if index >= len(taken):
                    return False
                size = taken[index]
                index += 1
                if isinstance(size, int) and abs(size) >= _WIDTH_LIMIT:
                    return True
        index += 1
    return False


def _synchronous(function: Callable[..., Any]) -> Callable[..., Any]:
    """Of a Jinja filter with an async variant (``map``, ``list``, ``unique``, ...), the function
    its wrapper calls in an environment that is not async, as its wrapper calls it: the wrapper
    asks on every call which one to call (and takes an eval context only to drop it)."""
    if getattr(function, "jinja_async_variant", False) and callable(getattr(function, "__wrapped__", None)):
        return function.__wrapped__  # type: ignore[attr-defined, no-any-return]
    return function


def _bounded(function: Callable[..., Any], budget: Budget) -> Callable[..., Any]:
    name = getattr(function, "__name__", "")
    formats = name in ("do_format", "format")

    if formats or name in WIDTH_TAKERS:

        def bounded(*args: Any, **kwargs: Any) -> Any:
            budget.step()
            # The context or environment Jinja passes first to some filters passes the checks.
            _check_arguments(args, kwargs, name)
            if formats and args and isinstance(args[0], str) and (_HUGE_WIDTH.search(args[0]) or _huge_star_width(args[0], args[1:])):
                raise TemplateLimit("a format width beyond the limit")
            return check_size(function(*args, **kwargs))

    else:

        def bounded(*args: Any, **kwargs: Any) -> Any:
            # The same checks for every other helper (most are ``| tojson``), inline: a call per
            # check was a fifth of the template stage.
            next(budget.ticks)
            for value in (*args, *kwargs.values()) if kwargs else args:
                kind = type(value)
                if kind in _SIZED:
                    if len(value) > MAX_OUTPUT_CHARS:
                        check_size(value)
                elif kind not in _UNSIZED:
                    check_size(value)
            result = function(*args, **kwargs)
            kind = type(result)
            if kind in _SIZED:
                if len(result) > MAX_OUTPUT_CHARS:
                    check_size(result)
                return result
            return result if kind in _UNSIZED else check_size(result)

        def plain_one(value: Any) -> Any:
            # `bounded` for a filter or test given only its value (``x | tojson``, ``x is none``):
            # `_BoundedCodeGenerator` calls this one there, without packing the arguments.
            next(budget.ticks)
            kind = type(value)
            if kind in _SIZED:
                if len(value) > MAX_OUTPUT_CHARS:
                    check_size(value)
            elif kind is int:
                if value.bit_length() > MAX_INTEGER_BITS:
                    check_size(value)
            elif kind not in _UNSIZED:
                check_size(value)
            result = function(value)
            kind = type(result)
            if kind in _SIZED:
                if len(result) > MAX_OUTPUT_CHARS:
                    check_size(result)
                return result
            return result if kind in _UNSIZED else check_size(result)

        # What the function makes of a str, as a C callable (tojson's, json's string encoder):
        # `one` of a str calls it itself, the same checks around it. Most of what a template
        # writes is a string through tojson.
        for_strings: Callable[[str], str] | None = getattr(function, "for_strings", None)
        encode: Callable[[str], str] = for_strings or str

        def string_one(value: Any) -> Any:
            if type(value) is not str or len(value) > MAX_OUTPUT_CHARS:
                return plain_one(value)
            next(budget.ticks)
            result = encode(value)
            return result if len(result) <= MAX_OUTPUT_CHARS else check_size(result)

        bounded.one = plain_one if for_strings is None else string_one  # type: ignore[attr-defined]

    # Jinja passes the context, environment or eval context to filters marked for it.
    for marker in ("jinja_pass_arg",):
        if hasattr(function, marker):
            setattr(bounded, marker, getattr(function, marker))
    bounded._bounded = True  # type: ignore[attr-defined]
    bounded.__name__ = getattr(function, "__name__", "filter")
    return bounded


def render_bounded(template: jinja2.Template, context: Mapping[str, Any], budget: Budget) -> str:
    """The template's output, produced chunk by chunk within the budget and the size limit."""
    budget.reset()
    chunks: list[str] = []
    append = chunks.append
    size = 0
    over: TemplateLimit | None = None
    # What Template.generate does, without its generator wrapped around the template's (a
    # resumption per chunk): a failure inside the template is raised as Jinja's handler
    # rewrites it (its traceback at template lines); a bound the chunks go beyond is raised
    # outside, as from here. Each chunk is a step, taken once it is produced (`zip` asks the
    # template first): the ticks refuse it by raising in `_Refusing.__next__`, directly below
    # this frame, where a step the template takes raises below the template's frames.
    try:
        variables = context if type(context) is dict else dict(context)  # new_context copies it
        for chunk, _ in zip(template.root_render_func(template.new_context(variables)), budget.ticks, strict=False):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                over = TemplateLimit(f"template output beyond the limit of {MAX_OUTPUT_CHARS:,} characters")
                break
            append(chunk)
    except TemplateLimit as limit:
        below = limit.__traceback__.tb_next if limit.__traceback__ is not None else None
        if below is None or below.tb_frame.f_code is not _Refusing.__next__.__code__:
            template.environment.handle_exception()
        over = TemplateLimit(str(limit))
    except Exception:
        template.environment.handle_exception()
    if over is not None:
        raise over
    text = "".join(chunks)
    identity = _IDENTITY.search(text) if " at 0x" in text else None  # every match has it; the search is 10x dearer
    if identity is not None:
        printed = re.sub(r"0x[0-9a-fA-F]+", "0x...", identity.group())[:80]  # the address itself differs on every run
        raise TemplateLimit(f"template printed an object's identity ({printed}), which differs on every run")
    return text
