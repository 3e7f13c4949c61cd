"""The CRDs' CEL rules (``x-kubernetes-validations``), checked offline as the API server would.

Why a CEL evaluator of our own: the PyPI libraries cost 0.1-0.5 s to import (plus ~0.4 s
for cel-python's grammar), which alone exceeds the Argo CD plugin's cold-start budget, while
the rules the CRDs carry use a small part of CEL. This module parses and evaluates that part
(literals, ``self``, field selection, ``has()``, the logical, comparison, arithmetic and
``in`` operators with CEL's error semantics, ``size()``, the ``all``/``exists``/
``exists_one``/``filter``/``map`` macros, the string functions and Kubernetes' ``isURL``);
anything else is refused when the rule is prepared, so a rule is never silently skipped.
tests/test_cel_rules.py checks every vendored rule against ``common-expression-language``
(Rust cel, the reference) on violating and passing objects.

Build time: ``everest-render schemas`` calls :func:`rules_from_schema` on each CRD version and
stores the rules, with the schema location they are declared at and the defaults the API
server would apply below it, in the provider's strict schema under :data:`RULES_KEY`.
Run time: :class:`RuleSet` compiles the rules of one kind on first use (only the rules the
object reaches are evaluated; parsing costs microseconds) and :meth:`RuleSet.problems` walks
the object alongside them. Rules that read ``oldSelf`` (transition rules) cannot be judged
without the live object: they are kept, marked, listed by ``providers list``, not evaluated.

A location is a list of steps from the object's root: a property name, ``"[]"`` for every
item of an array, ``"{}"`` for every value of a map (as Kubernetes applies a rule declared
under ``items`` or ``additionalProperties`` to each element).
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, NoReturn

from everest_render.diagnostics import ObjectPath

RULES_KEY = "x-everest-render-cel-rules"
EACH_ITEM = "[]"
EACH_VALUE = "{}"

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


class CelError(Exception):
    """A rule failed to evaluate (CEL's error value): the API server rejects the object too."""


class CelSyntaxError(ValueError):
    """A rule this evaluator cannot parse or does not support."""


# --- preparing rules from a CRD schema (build time) -----------------------------------------


def rules_from_schema(root: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every ``x-kubernetes-validations`` rule under the openAPIV3Schema ``root``, in schema
    order, as the JSON records :class:`RuleSet` reads. Raises CelSyntaxError for a rule the
    evaluator does not support (so ``make schemas`` fails rather than ignoring it)."""
    found: list[dict[str, Any]] = []
    _collect(root, [], found)
    return found


def _collect(node: Mapping[str, Any], at: list[str], found: list[dict[str, Any]]) -> None:
    for rule in node.get("x-kubernetes-validations", ()):
        record: dict[str, Any] = {"at": list(at), "rule": rule["rule"]}
        for key in ("message", "messageExpression", "fieldPath", "reason"):
            if key in rule:
                record[key] = rule[key]
        program = compile_expression(rule["rule"], allowed=("self", "oldSelf"))
        fields = set(program.fields)
        if "oldSelf" in program.names or rule.get("optionalOldSelf"):
            record["transition"] = True
        elif "messageExpression" in rule:
            fields |= compile_expression(rule["messageExpression"]).fields
        defaults = _defaults(node, frozenset(fields))
        if defaults:
            record["defaults"] = defaults
        found.append(record)
    for name, sub in node.get("properties", {}).items():
        if name != "status" or at:
            _collect(sub, [*at, name], found)
    if isinstance(node.get("items"), dict):
        _collect(node["items"], [*at, EACH_ITEM], found)
    if isinstance(node.get("additionalProperties"), dict):
        _collect(node["additionalProperties"], [*at, EACH_VALUE], found)


def _defaults(node: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """The ``default`` values below ``node`` (not its own) that a rule selecting ``fields`` can
    see, as a tree pruned to them: the API server defaults an object before it validates it.
    A property's default matters only if the rule names it: in Kubernetes' CEL an object with
    declared properties is a message type, read field by field (no macros or size() over it);
    items and map values are reached without names, so those steps are always kept."""
    tree: dict[str, Any] = {}
    properties = {}
    for name, sub in node.get("properties", {}).items():
        if name not in fields:
            continue
        child = _defaults(sub, fields)
        if "default" in sub:
            child["default"] = sub["default"]
        if child:
            properties[name] = child
    if properties:
        tree["properties"] = properties
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            child = _defaults(node[key], fields)
            if "default" in node[key]:
                child["default"] = node[key]["default"]
            if child:
                tree[key] = child
    return tree


def apply_defaults(value: Any, tree: Mapping[str, Any]) -> Any:
    """``value`` with the defaults of ``tree`` filled in where absent (a new value; the
    rendered object is never changed)."""
    if isinstance(value, dict):
        out = dict(value)
        for name, sub in tree.get("properties", {}).items():
            if name in out:
                out[name] = apply_defaults(out[name], sub)
            elif "default" in sub:
                out[name] = apply_defaults(sub["default"], sub)
        if "additionalProperties" in tree:
            sub = tree["additionalProperties"]
            declared = tree.get("properties", {})
            for name in out:
                if name not in declared:
                    out[name] = apply_defaults(out[name], sub)
        return out
    if isinstance(value, list) and "items" in tree:
        return [apply_defaults(item, tree["items"]) for item in value]
    return value


# --- checking objects (run time) -------------------------------------------------------------


class RuleViolation(NamedTuple):
    """A rule the object breaks: where (object path), and the API server's wording."""

    path: ObjectPath
    message: str
    rule: str


class _Rule(NamedTuple):
    at: tuple[str, ...]
    text: str
    message: str | None
    message_expression: str | None
    field_path: str | None
    reason: str | None
    defaults: Mapping[str, Any] | None


# The values a rule held for, remembered by a rule set (`RuleSet._check`): a fleet's objects
# give most rules the same few values. Bounded in number and size.
_HELD_REMEMBERED = 1_024
_HELD_BYTES = 4_096


class RuleSet:
    """The CEL rules of one kind, compiled on first use and kept for the run."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.rules = tuple(
            _Rule(
                tuple(r["at"]),
                r["rule"],
                r.get("message"),
                r.get("messageExpression"),
                r.get("fieldPath"),
                r.get("reason"),
                r.get("defaults"),
            )
            for r in records
            if not r.get("transition")
        )
        self.transition = tuple(r for r in records if r.get("transition"))
        self._programs: dict[str, Program] = {}
        self._held: set[tuple[int, bytes]] = set()  # (rule's id, marshalled value) that held (`_check`)
        # One walk per schema location, however many rules are declared there (PG: 18 on one map).
        self._by_location: dict[tuple[str, ...], list[_Rule]] = {}
        for rule in self.rules:
            self._by_location.setdefault(rule.at, []).append(rule)

    def _program(self, text: str) -> Program:
        program = self._programs.get(text)
        if program is None:
            program = self._programs[text] = compile_expression(text)
        return program

    def problems(self, obj: Any) -> Iterator[RuleViolation]:
        """Every rule ``obj`` breaks, each located at the value it is declared on."""
        for at, rules in self._by_location.items():
            for path, value in _reach(obj, at, ()):
                if value is None:
                    continue  # Kubernetes does not evaluate rules on null values
                for rule in rules:
                    yield from self._check(rule, path, value)

    def _check(self, rule: _Rule, path: ObjectPath, value: Any) -> Iterator[RuleViolation]:
        try:
            # A rule's verdict is a function of the value alone: one that held for these very
            # bytes holds again (marshal names each type: 1, True and 1.0 differ).
            known: tuple[int, bytes] | None = (id(rule), marshal.dumps(value, 2))  # the rule is one of self.rules
        except ValueError:  # no plain JSON value, or nested too deeply for marshal
            known = None
        if known is not None and known in self._held:
            return
        if rule.defaults:
            value = apply_defaults(value, rule.defaults)
        try:
            ok = self._program(rule.text).evaluate({"self": value})
        except CelError as error:
            yield RuleViolation(path, f"rule {rule.text!r} cannot be evaluated: {error}", rule.text)
            return
        if ok is True and known is not None and len(known[1]) <= _HELD_BYTES:
            if len(self._held) >= _HELD_REMEMBERED:
                self._held.clear()
            self._held.add(known)
        if ok is False:
            yield RuleViolation(_field_path(path, rule.field_path), self._message(rule, value), rule.text)
        elif ok is not True:
            yield RuleViolation(path, f"rule {rule.text!r} gives {_show(ok)}, not a bool", rule.text)

    def _message(self, rule: _Rule, value: Any) -> str:
        message = rule.message
        if rule.message_expression is not None:
            try:
                produced = self._program(rule.message_expression).evaluate({"self": value})
            except CelError:
                produced = None
            if isinstance(produced, str) and produced.strip() and "\n" not in produced:
                message = produced
        text = message if message else f"failed rule: {rule.text}"
        return f"{text} ({rule.reason})" if rule.reason else text


def _reach(value: Any, at: tuple[str, ...], path: ObjectPath) -> list[tuple[ObjectPath, Any]]:
    """Every value ``at`` leads to from ``value`` (a key, each item, each value: depth first),
    with its path: a list, no generator a step (most steps are keys, and most lead nowhere)."""
    found: list[tuple[ObjectPath, Any]] = []
    _reach_into(value, at, 0, path, found)
    return found


def _reach_into(value: Any, at: tuple[str, ...], start: int, path: ObjectPath, found: list[tuple[ObjectPath, Any]]) -> None:
    step_at = start
    while step_at < len(at):
        step = at[step_at]
        step_at += 1
        if step == EACH_ITEM:
            if isinstance(value, list):
                for index, item in enumerate(value):
                    _reach_into(item, at, step_at, (*path, index), found)
            return
        if step == EACH_VALUE:
            if isinstance(value, dict):
                for key, item in value.items():
                    _reach_into(item, at, step_at, (*path, key), found)
            return
        if not (isinstance(value, dict) and step in value):
            return
        value = value[step]
        path = (*path, step)
    found.append((path, value))


_FIELD_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]")


def _field_path(path: ObjectPath, field_path: str | None) -> ObjectPath:
    """``path`` extended by a rule's ``fieldPath`` (a JSON path relative to ``self``, such as
    ``.spec.replicas`` or ``.items[0]`` or ``['key']``); unchanged when it does not parse."""
    if not field_path:
        return path
    steps: list[str | int] = []
    position = 0
    while position < len(field_path):
        match = _FIELD_PATH_STEP.match(field_path, position)
        if match is None:
            return path
        name, index, key = match.groups()
        steps.append(int(index) if index is not None else (name if name is not None else key))
        position = match.end()
    return (*path, *steps)


# --- the CEL subset: values -------------------------------------------------------------------
#
# CEL values are the JSON values of a rendered object: None, bool, int, float, str, list, dict.
# Python's bool is an int; CEL's is not, hence the `type(x) is bool` tests throughout.


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "bool"
    if type(value) is int:
        return "int"
    if type(value) is float:
        return "double"
    if type(value) is str:
        return "string"
    if type(value) is list:
        return "list"
    if type(value) is dict:
        return "map"
    raise CelError(f"unsupported value of type {type(value).__name__}")


def _show(value: Any) -> str:
    return f"{_kind(value)} {value!r}"


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def _equal(a: Any, b: Any) -> bool:
    """CEL equality with Kubernetes' heterogeneous numeric comparison: 1 == 1.0, 'a' != 1."""
    if _number(a) and _number(b):
        return bool(a == b)
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return False
    if ka == "list":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "map":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _order(op: str, a: Any, b: Any) -> bool:
    comparable = (_number(a) and _number(b)) or (_kind(a) == _kind(b) and _kind(a) in ("string", "bool"))
    if not comparable:
        raise CelError(f"no matching overload for '{op}' applied to ({_kind(a)}, {_kind(b)})")
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _int_result(value: int) -> int:
    if not _INT_MIN <= value <= _INT_MAX:
        raise CelError("integer overflow")
    return value


def _arith(op: str, a: Any, b: Any) -> Any:
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        raise CelError(f"no matching overload for '{op}' applied to ({ka}, {kb})")
    if op == "+" and ka in ("string", "list", "int", "double"):
        return _int_result(a + b) if ka == "int" else a + b
    if ka == "int":
        if op == "-":
            return _int_result(a - b)
        if op == "*":
            return _int_result(a * b)
        if b == 0:
            raise CelError("division by zero" if op == "/" else "modulus by zero")
        quotient = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # truncates toward zero
        return _int_result(quotient) if op == "/" else a - quotient * b
    if ka == "double" and op in ("-", "*", "/"):
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        return a / b if b else (float("nan") if a == 0 else float("inf") * (1 if a > 0 else -1))
    raise CelError(f"no matching overload for '{op}' applied to ({ka}, {kb})")


def _select(value: Any, field: str) -> Any:
    if type(value) is not dict:
        raise CelError(f"cannot select field {field!r} of {_kind(value)}")
    if field not in value:
        raise CelError(f"no such key: {field}")
    return value[field]


def _index(value: Any, key: Any) -> Any:
    if type(value) is list:
        if type(key) is not int:
            raise CelError(f"no matching overload for index of list by {_kind(key)}")
        if not 0 <= key < len(value):
            raise CelError(f"index out of bounds: {key}")
        return value[key]
    if type(value) is dict:
        if key not in value:
            raise CelError(f"no such key: {key}")
        return value[key]
    raise CelError(f"no matching overload for index of {_kind(value)}")


def _bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise CelError(f"no matching overload for {what} applied to {_kind(value)}")
    return value


# --- the functions: CEL's standard ones and Kubernetes' extensions the rules use -----------


def _size(value: Any) -> int:
    if type(value) in (str, list, dict):
        return len(value)  # a string's size counts code points, as CEL says
    raise CelError(f"no matching overload for size applied to {_kind(value)}")


def _strings(name: str, *values: Any) -> None:
    if any(type(v) is not str for v in values):
        raise CelError(f"no matching overload for {name} applied to ({', '.join(_kind(v) for v in values)})")


def _starts_with(s: Any, prefix: Any) -> bool:
    _strings("startsWith", s, prefix)
    return bool(s.startswith(prefix))


def _ends_with(s: Any, suffix: Any) -> bool:
    _strings("endsWith", s, suffix)
    return bool(s.endswith(suffix))


def _contains(s: Any, part: Any) -> bool:
    _strings("contains", s, part)
    return part in s


def _matches(s: Any, pattern: Any) -> bool:
    """CEL's ``matches``: RE2 syntax, unanchored. Python's ``re`` agrees on the RE2 subset
    (RE2 has no backreferences or lookaround, so a pattern using them is an error in both)."""
    _strings("matches", s, pattern)
    try:
        return re.search(pattern, s) is not None
    except re.error as error:
        raise CelError(f"invalid regular expression {pattern!r}: {error}") from None


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _lower_ascii(s: Any) -> str:
    """cel-go's strings extension ``lowerAscii``: only A-Z change, unlike Python's lower()."""
    _strings("lowerAscii", s)
    return str(s.translate(_ASCII_LOWER))


def _upper_ascii(s: Any) -> str:
    _strings("upperAscii", s)
    return str(s.translate(_ASCII_UPPER))


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_PORT = re.compile(r"(:[0-9]*)?")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# ASCII characters Go's url package accepts unescaped in a host (RFC 3986 unreserved and
# sub-delims, ':' and brackets, and the quotes and angle brackets Go tolerates there) and in
# userinfo; any non-ASCII character passes in both. (Sets, not regular expressions: a class
# up to U+10FFFF costs 35 ms to compile, on every start.)
_HOST_CHARS = frozenset(_ALNUM + "-._~!$&'()*+,;=:[]<>\"")
_USERINFO_CHARS = frozenset(_ALNUM + "-._:~!$&'()*+,;=%@")


def _only(allowed: frozenset[str], text: str) -> bool:
    return all(c in allowed or c >= "\x80" for c in text)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_url(s: Any) -> bool:
    """Kubernetes' ``isURL(string)``: true when Go's ``url.ParseRequestURI`` accepts ``s``,
    that is an absolute URL (``https://host:port/path``, ``mailto:x``) or an absolute path."""
    _strings("isURL", s)
    text = str(s)
    if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return False
    scheme = _SCHEME.match(text)
    if text.startswith(":"):
        return False  # "missing protocol scheme"
    rest = text
    has_scheme = False
    if scheme and text[scheme.end() : scheme.end() + 1] == ":":
        has_scheme = True
        rest = text[scheme.end() + 1 :]
    rest = rest.split("?", 1)[0]
    if not rest.startswith("/"):
        return has_scheme  # opaque form (mailto:x) is a URL; a relative reference is not
    if has_scheme and rest.startswith("//"):
        authority, slash, _ = rest[2:].partition("/")
        rest = slash + _
        userinfo, at, host = authority.rpartition("@")
        if at and not _only(_USERINFO_CHARS, userinfo):
            return False
        if not at:
            host = authority
        if host.startswith("["):
            end = host.find("]")
            if end < 0 or _PORT.fullmatch(host[end + 1 :]) is None:
                return False
        elif ":" in host and _PORT.fullmatch(host[host.rfind(":") :]) is None:
            return False
        if not _only(_HOST_CHARS, host) or _BAD_ESCAPE.search(host):
            return False
    return _BAD_ESCAPE.search(rest) is None


_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "size": (1, _size),
    "isURL": (1, is_url),
}
_METHODS: dict[str, tuple[int, Callable[..., Any]]] = {
    "size": (0, _size),
    "startsWith": (1, _starts_with),
    "endsWith": (1, _ends_with),
    "contains": (1, _contains),
    "matches": (1, _matches),
    "lowerAscii": (0, _lower_ascii),
    "upperAscii": (0, _upper_ascii),
}
SUPPORTED_FUNCTIONS = tuple(sorted({*_FUNCTIONS, *_METHODS, "has", "all", "exists", "exists_one", "filter", "map"}))


# --- the CEL subset: parsing into closures -----------------------------------------------------

Env = dict[str, Any]
Node = Callable[[Env], Any]

_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*)
      | (?P<number>0[xX][0-9a-fA-F]+u?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?u?)
      | (?P<string>[rR]?(?:'''(?:.|\n)*?'''|\"\"\"(?:.|\n)*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>\|\||&&|==|!=|<=|>=|[<>!+\-*/%?:.,()\[\]{}])
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-3][0-7]{2}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_RESERVED = frozenset({"as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
                       "package", "namespace", "return", "var", "void", "while"})  # fmt: skip


def _unescape(match: re.Match[str]) -> str:
    body = match.group()[1:]
    if body[0] in "xuU":
        return chr(int(body[1:], 16))
    if body[0].isdigit():
        return chr(int(body, 8))
    return _SIMPLE_ESCAPES.get(body, body)


def _string_literal(text: str) -> str:
    raw = text[0] in "rR"
    body = text[1:] if raw else text
    quote = 3 if body[:3] in ("'''", '"""') else 1
    inner = body[quote:-quote]
    return inner if raw else _ESCAPE.sub(_unescape, inner)


class Program:
    """A compiled expression: ``evaluate`` it with the variables it reads."""

    # A plain class, as are the NamedTuples above: dataclasses cost milliseconds at import,
    # and this module is on every render's start.
    __slots__ = ("_root", "fields", "names", "source")

    def __init__(self, source: str, names: frozenset[str], fields: frozenset[str], root: Node) -> None:
        self.source = source
        self.names = names  # the variables it reads
        self.fields = fields  # the field names it selects or tests with has()
        self._root = root

    def evaluate(self, variables: Env) -> Any:
        try:
            return self._root(variables)
        except RecursionError:
            raise CelError("expression nests too deeply") from None


def compile_expression(source: str, allowed: tuple[str, ...] = ("self",)) -> Program:
    """Parse ``source``; CelSyntaxError when it is not in the supported subset or reads a
    variable other than ``allowed`` (and its macros' own)."""
    parser = _Parser(source, allowed)
    root = parser.expression()
    if parser.peek() is not None:
        parser.fail(f"unexpected {parser.peek()!r}")
    return Program(source, frozenset(parser.names), frozenset(parser.fields), root)


class _Parser:
    def __init__(self, source: str, allowed: tuple[str, ...]) -> None:
        self.source = source
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(source):
            match = _TOKEN.match(source, position)
            if match is None:
                raise CelSyntaxError(f"cannot parse {source!r} at column {position + 1}")
            if match.lastgroup != "space":
                self.tokens.append((match.lastgroup or "", match.group()))
            position = match.end()
        self.position = 0
        self.scopes: list[set[str]] = [set(allowed)]
        self.names: set[str] = set()
        self.fields: set[str] = set()
        self.depth = 0

    def fail(self, why: str) -> NoReturn:
        raise CelSyntaxError(f"{self.source!r}: {why}")

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            self.fail("unexpected end")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            self.fail(f"expected {expected!r}, found {token[1]!r}")
        self.position += 1
        return token

    def expression(self) -> Node:
        self.depth += 1
        if self.depth > 64:
            self.fail("nests too deeply")
        condition = self.logical_or()
        if self.peek() == "?":
            self.take()
            then = self.logical_or()
            self.take(":")
            otherwise = self.expression()
            self.depth -= 1

            def choose(env: Env) -> Any:
                return then(env) if _bool(condition(env), "_?_:_") else otherwise(env)

            return choose
        self.depth -= 1
        return condition

    def logical_or(self) -> Node:
        left = self.logical_and()
        while self.peek() == "||":
            self.take()
            left = _logical(left, self.logical_and(), absorbing=True)
        return left

    def logical_and(self) -> Node:
        left = self.relation()
        while self.peek() == "&&":
            self.take()
            left = _logical(left, self.relation(), absorbing=False)
        return left

    def relation(self) -> Node:
        left = self.addition()
        while self.peek() in ("==", "!=", "<", "<=", ">", ">=", "in"):
            op = self.take()[1]
            left = _relation(op, left, self.addition())
        return left

    def addition(self) -> Node:
        left = self.multiplication()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            left = _binary(op, left, self.multiplication())
        return left

    def multiplication(self) -> Node:
        left = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.take()[1]
            left = _binary(op, left, self.unary())
        return left

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            operand = self.unary()
            return lambda env: not _bool(operand(env), "!_")
        if self.peek() == "-":
            self.take()
            operand = self.unary()

            def negate(env: Env) -> Any:
                value = operand(env)
                if type(value) is int:
                    return _int_result(-value)
                if type(value) is float:
                    return -value
                raise CelError(f"no matching overload for -_ applied to {_kind(value)}")

            return negate
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while self.peek() in (".", "["):
            if self.take()[1] == "[":
                key = self.expression()
                self.take("]")
                node = _indexer(node, key)
                continue
            kind, name = self.take()
            if kind != "name":
                self.fail(f"expected a field name after '.', found {name!r}")
            if self.peek() == "(":
                node = self.method(node, name)
            else:
                self.fields.add(name)
                node = _selector(node, name)
        return node

    def arguments(self) -> list[Node]:
        self.take("(")
        args: list[Node] = []
        while self.peek() != ")":
            args.append(self.expression())
            if self.peek() != ")":
                self.take(",")
        self.take(")")
        return args

    def method(self, target: Node, name: str) -> Node:
        if name in ("all", "exists", "exists_one", "filter", "map"):
            return self.macro(target, name)
        if name not in _METHODS:
            self.fail(f"function {name!r} is not supported by everest-render's CEL evaluator")
        arity, function = _METHODS[name]
        args = self.arguments()
        if len(args) != arity:
            self.fail(f"{name} takes {arity} argument(s)")
        return lambda env: function(target(env), *(a(env) for a in args))

    def macro(self, target: Node, name: str) -> Node:
        self.take("(")
        kind, var = self.take()
        if kind != "name":
            self.fail(f"{name} needs a variable name first")
        self.take(",")
        self.scopes.append({var})
        bodies = [self.expression()]
        while self.peek() == ",":
            self.take()
            bodies.append(self.expression())
        self.scopes.pop()
        self.take(")")
        if len(bodies) != 1 and not (name == "map" and len(bodies) == 2):
            self.fail(f"{name} takes a variable and {'one or two expressions' if name == 'map' else 'one expression'}")
        return _macro(name, target, var, bodies)

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            if text.endswith("u"):
                self.fail("unsigned integers are not supported by everest-render's CEL evaluator")
            value: Any = int(text, 16) if text[:2] in ("0x", "0X") else (float(text) if any(c in text for c in ".eE") else int(text))
            if type(value) is int and value > _INT_MAX:
                self.fail(f"integer literal {text} out of range")
            return lambda env: value
        if kind == "string":
            string = _string_literal(text)
            return lambda env: string
        if text == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if text == "[":
            items: list[Node] = []
            while self.peek() != "]":
                items.append(self.expression())
                if self.peek() != "]":
                    self.take(",")
            self.take("]")
            return lambda env: [item(env) for item in items]
        if text == "{":
            pairs: list[tuple[Node, Node]] = []
            while self.peek() != "}":
                key = self.expression()
                self.take(":")
                pairs.append((key, self.expression()))
                if self.peek() != "}":
                    self.take(",")
            self.take("}")
            return lambda env: {k(env): v(env) for k, v in pairs}
        if kind != "name":
            self.fail(f"unexpected {text!r}")
        if text in ("true", "false", "null"):
            constant = {"true": True, "false": False, "null": None}[text]
            return lambda env: constant
        if text in _RESERVED or text == "in":
            self.fail(f"{text!r} is a reserved word")
        if self.peek() == "(":
            return self.call(text)
        if not any(text in scope for scope in self.scopes):
            self.fail(f"undeclared reference to {text!r}")
        self.names.add(text)
        return lambda env: env[text]

    def call(self, name: str) -> Node:
        if name == "has":
            self.take("(")
            operand = self.member()
            if not isinstance(operand, _Selection):
                self.fail("has() takes a field selection such as has(self.field)")
            self.take(")")
            return _has(operand)
        if name not in _FUNCTIONS:
            self.fail(f"function {name!r} is not supported by everest-render's CEL evaluator")
        arity, function = _FUNCTIONS[name]
        args = self.arguments()
        if len(args) != arity:
            self.fail(f"{name} takes {arity} argument(s)")
        return lambda env: function(*(a(env) for a in args))


# Closures for each construct; kept outside the parser so each captures only what it needs.


def _logical(left: Node, right: Node, *, absorbing: bool) -> Node:
    """CEL's commutative ``||`` (absorbing=True) and ``&&``: the deciding value wins over an
    error on the other side, whichever side the error is on."""
    name = "_||_" if absorbing else "_&&_"

    def evaluate(env: Env) -> bool:
        error: CelError | None = None
        try:
            if _bool(left(env), name) is absorbing:
                return absorbing
        except CelError as caught:
            error = caught
        if _bool(right(env), name) is absorbing:
            return absorbing
        if error is not None:
            raise error
        return not absorbing

    return evaluate


def _relation(op: str, left: Node, right: Node) -> Node:
    if op == "==":
        return lambda env: _equal(left(env), right(env))
    if op == "!=":
        return lambda env: not _equal(left(env), right(env))
    if op == "in":

        def contains(env: Env) -> bool:
            item, collection = left(env), right(env)
            if type(collection) is list:
                return any(_equal(item, x) for x in collection)
            if type(collection) is dict:
                return item in collection if type(item) is str else any(_equal(item, k) for k in collection)
            raise CelError(f"no matching overload for 'in' applied to {_kind(collection)}")

        return contains
    return lambda env: _order(op, left(env), right(env))


def _binary(op: str, left: Node, right: Node) -> Node:
    return lambda env: _arith(op, left(env), right(env))


class _Selection:
    """``operand.field``: a class rather than a closure so that ``has()`` can take it apart."""

    __slots__ = ("field", "operand")

    def __init__(self, operand: Node, field: str) -> None:
        self.operand = operand
        self.field = field

    def __call__(self, env: Env) -> Any:
        return _select(self.operand(env), self.field)


def _selector(operand: Node, field: str) -> Node:
    return _Selection(operand, field)


def _indexer(operand: Node, key: Node) -> Node:
    return lambda env: _index(operand(env), key(env))


def _has(selection: _Selection) -> Node:
    operand, field = selection.operand, selection.field

    def evaluate(env: Env) -> bool:
        value = operand(env)
        if type(value) is not dict:
            raise CelError(f"invalid type for has(): {_kind(value)}")
        return field in value

    return evaluate


def _elements(value: Any, macro: str) -> list[Any]:
    if type(value) is list:
        return value
    if type(value) is dict:
        return list(value)  # a map's macros range over its keys
    raise CelError(f"no matching overload for {macro} applied to {_kind(value)}")


def _macro(name: str, target: Node, var: str, bodies: list[Node]) -> Node:
    body = bodies[0]

    def bind(env: Env, element: Any) -> Env:
        return {**env, var: element}

    if name in ("all", "exists"):
        deciding = name == "exists"

        def quantifier(env: Env) -> bool:
            error: CelError | None = None
            for element in _elements(target(env), name):
                try:
                    if _bool(body(bind(env, element)), name) is deciding:
                        return deciding
                except CelError as caught:
                    error = error or caught
            if error is not None:
                raise error
            return not deciding

        return quantifier
    if name == "exists_one":
        return lambda env: sum(_bool(body(bind(env, e)), name) for e in _elements(target(env), name)) == 1
    if name == "filter":
        return lambda env: [e for e in _elements(target(env), name) if _bool(body(bind(env, e)), name)]
    if len(bodies) == 2:
        keep, produce = bodies
        return lambda env: [produce(bind(env, e)) for e in _elements(target(env), name) if _bool(keep(bind(env, e)), name)]
    return lambda env: [body(bind(env, e)) for e in _elements(target(env), name)]


# --- the inventory `providers list` reports --------------------------------------------------


def inventory(schema: Mapping[str, Any]) -> dict[str, Any]:
    """What the CEL rules of one strict schema amount to: how many are checked, and each one
    that is not, with why."""
    records = schema.get(RULES_KEY, [])
    skipped = [
        {"at": _location(r["at"]), "rule": r["rule"], "why": "transition rule, compares with the live object: oldSelf"}
        for r in records
        if r.get("transition")
    ]
    return {"checked": len(records) - len(skipped), "notChecked": skipped}


def _location(at: list[str]) -> str:
    return ".".join(at) or "(root)"
