"""The Solr query language of DHuS OpenSearch (``q=``), evaluated over product records.

A small hand-written tokenizer and recursive-descent parser for the Lucene syntax DHuS
clients send: ``field:value``, quoted phrases (``\\"`` and ``\\\\`` escapes), unquoted terms
with backslash escapes and ``*``/``?`` wildcards, ranges ``[a TO b]`` / ``{a TO b}`` with
``*`` open ends and Solr date math (``NOW-1DAY/DAY``), ``AND``/``OR``/``NOT``/``+``/``-``,
parentheses and juxtaposition as AND (DHuS's default operator). ``footprint:"Intersects(WKT)"``
is evaluated with shapely. Errors carry the message DHuS reports (``undefined field x``, Solr's
``SyntaxError: Cannot parse ...``).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shapely import wkt
from shapely.errors import ShapelyError
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep
from shapely.validation import explain_validity

from adapters.dhus import emulator_records as records
from adapters.dhus.emulator_records import Product, parse_instant

Predicate = Callable[[Product], bool]

EXACT_FIELDS = frozenset({"identifier", "filename", "uuid", "gmlfootprint", "footprint"})
TOKENIZED_FIELDS = frozenset({"polarisationmode", "swathidentifier"})
_SPECIAL = set('()[]{}":^~ \t\r\n')
_EXPECTED = (  # what Solr's JavaCC parser lists after "Was expecting one of:"
    '<NOT> ...\n"+" ...\n"-" ...\n<BAREOPER> ...\n"(" ...\n"*" ...\n<QUOTED> ...\n<TERM> ...\n'
    '<PREFIXTERM> ...\n<WILDTERM> ...\n<REGEXPTERM> ...\n"[" ...\n"{" ...\n<LPARAMS> ...\n'
    '"filter(" ...\n<NUMBER> ...\n<TERM> ...\n"*" ...'
)
_BOOST = re.compile(r"\^\d+(\.\d+)?")
_UNITS = {"YEAR": "y", "MONTH": "mo", "DAY": "d", "DATE": "d", "HOUR": "h", "MINUTE": "mi"}
_UNITS |= {"SECOND": "s", "MILLI": "ms", "MILLISECOND": "ms"}


class SolrError(Exception):
    """A query DHuS rejects; ``str(error)`` is the message its error envelope carries."""


@dataclass(frozen=True)
class Token:
    kind: str  # ( ) AND OR NOT + - FIELD TERM QUOTED RANGE EOF
    text: str
    pos: int
    wild: str | None = None  # TERM: regex when it has unescaped wildcards
    range: tuple[str, str, bool, bool] | None = None  # low, high, low inclusive, high inclusive


# --- tokenizer ---------------------------------------------------------------------------------
class _Lexer:
    def __init__(self, query: str) -> None:
        self.q, self.i, self.tokens = query, 0, list[Token]()

    def fail(self, pos: int) -> SolrError:
        """The error for an unexpected character at ``pos`` (past the end: ``<EOF>``)."""
        if pos >= len(self.q):
            return syntax_error(self.q, max(len(self.q), 1))
        return syntax_error(self.q, pos + 1, self.q[pos])

    def run(self) -> list[Token]:
        while self.i < len(self.q):
            c, start = self.q[self.i], self.i
            if c.isspace():
                self.i += 1
            elif c in "()":
                self.tokens.append(Token(c, c, start))
                self.i += 1
            elif self.q.startswith(("&&", "||"), start):
                self.tokens.append(Token("AND" if c == "&" else "OR", c * 2, start))
                self.i += 2
            elif c in "+-!" and self._at_term_start():
                self.tokens.append(Token("NOT" if c == "!" else c, c, start))
                self.i += 1
            elif c == '"':
                self.tokens.append(Token("QUOTED", self._quoted(), start))
            elif c in "[{":
                self.tokens.append(self._range())
            elif c == "^" and (boost := _BOOST.match(self.q, start)):
                self.i = boost.end()  # boosts do not change which products match
            elif c in _SPECIAL:
                raise self.fail(start)
            else:
                self.tokens.append(self._bare())
        self.tokens.append(Token("EOF", "<EOF>", len(self.q)))
        return self.tokens

    def _at_term_start(self) -> bool:
        nxt = self.q[self.i + 1 : self.i + 2]
        return nxt != "" and not nxt.isspace()

    def _quoted(self) -> str:
        out, self.i = [], self.i + 1
        while self.i < len(self.q) and self.q[self.i] != '"':
            if self.q[self.i] == "\\" and self.i + 1 < len(self.q):
                self.i += 1
            out.append(self.q[self.i])
            self.i += 1
        if self.i >= len(self.q):
            raise self.fail(self.i)
        self.i += 1
        return "".join(out)

    def _word(self, stops: str = "") -> tuple[str, str | None]:
        """An unquoted word: its unescaped text and, with wildcards, its regex."""
        text, pattern, wild = [], [], False
        while (
            self.i < len(self.q) and self.q[self.i] not in _SPECIAL and self.q[self.i] not in stops
        ):
            c = self.q[self.i]
            if c == "\\" and self.i + 1 < len(self.q):
                self.i += 1
                c = self.q[self.i]
                pattern.append(re.escape(c))
            elif c in "*?":
                wild = True
                pattern.append(".*" if c == "*" else ".")
            else:
                pattern.append(re.escape(c))
            text.append(c)
            self.i += 1
        return "".join(text), ("".join(pattern) if wild else None)

    def _bare(self) -> Token:
        start = self.i
        text, wild = self._word(":")
        if self.q[self.i : self.i + 1] == ":":
            self.i += 1
            return Token("FIELD", text, start)
        raw = self.q[start : self.i]
        if raw in ("AND", "OR", "NOT"):
            return Token(raw, raw, start)
        return Token("TERM", text, start, wild=wild)

    def _endpoint(self, stops: str) -> str:
        while self.i < len(self.q) and self.q[self.i].isspace():
            self.i += 1
        if self.q[self.i : self.i + 1] == '"':
            return self._quoted()
        start = self.i
        while self.i < len(self.q) and not self.q[self.i].isspace() and self.q[self.i] not in stops:
            self.i += 1
        if self.i == start:
            raise self.fail(self.i)
        return self.q[start : self.i].replace("\\", "")

    def _range(self) -> Token:
        start, low_incl = self.i, self.q[self.i] == "["
        self.i += 1
        low = self._endpoint("]}")
        if self._endpoint("]}") != "TO":
            raise self.fail(self.i - 1)
        high = self._endpoint("]}")
        if self.i >= len(self.q) or self.q[self.i] not in "]}":
            raise self.fail(self.i)
        high_incl = self.q[self.i] == "]"
        self.i += 1
        return Token("RANGE", self.q[start : self.i], start, range=(low, high, low_incl, high_incl))


def syntax_error(query: str, column: int, image: str | None = None) -> SolrError:
    """Solr's parse error text (the JavaCC message DHuS passes through)."""
    found = '"<EOF>"' if image is None else f'" "{image}" "{image} ""'
    expected = "".join(f"    {e}\n" for e in _EXPECTED.split("\n"))
    return SolrError(
        f"org.apache.solr.search.SyntaxError: Cannot parse '{query}': Encountered {found} "
        f"at line 1, column {column}.\nWas expecting one of:\n{expected}    "
    )


# --- parser ------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, query: str, now: datetime) -> None:
        self.q, self.now = query, now
        self.tokens, self.k = _Lexer(query).run(), 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.k]

    def fail(self) -> SolrError:
        tok = self.tok
        if tok.kind == "EOF":
            return syntax_error(self.q, max(len(self.q), 1))
        return syntax_error(self.q, tok.pos + 1, tok.text)

    def parse(self) -> Predicate:
        if self.tok.kind == "EOF":
            return lambda p: True
        pred = self.disjunction(None)
        if self.tok.kind != "EOF":
            raise self.fail()
        return pred

    def disjunction(self, field: str | None) -> Predicate:
        parts = [self.conjunction(field)]
        while self.tok.kind == "OR":
            self.k += 1
            parts.append(self.conjunction(field))
        return parts[0] if len(parts) == 1 else (lambda p: any(f(p) for f in parts))

    def conjunction(self, field: str | None) -> Predicate:
        parts = [self.unary(field)]
        while self.tok.kind not in ("OR", ")", "EOF"):
            if self.tok.kind == "AND":
                self.k += 1
            parts.append(self.unary(field))
        return parts[0] if len(parts) == 1 else (lambda p: all(f(p) for f in parts))

    def unary(self, field: str | None) -> Predicate:
        kind = self.tok.kind
        if kind in ("NOT", "-"):
            self.k += 1
            inner = self.unary(field)
            return lambda p: not inner(p)
        if kind == "+":
            self.k += 1
        return self.primary(field)

    def primary(self, field: str | None) -> Predicate:
        tok = self.tok
        if tok.kind == "FIELD":
            self.k += 1
            if self.tok.kind not in ("(", "TERM", "QUOTED", "RANGE"):
                raise self.fail()
            return self.primary(tok.text.lower())
        if tok.kind == "(":
            self.k += 1
            inner = self.disjunction(field)
            if self.tok.kind != ")":
                raise self.fail()
            self.k += 1
            return inner
        if tok.kind in ("TERM", "QUOTED", "RANGE"):
            self.k += 1
            return clause(field, tok, self.now)
        raise self.fail()


def compile_query(query: str, now: datetime | None = None) -> Predicate:
    """``query`` -> a predicate over products; :class:`SolrError` as DHuS would answer."""
    return _Parser(query, now or datetime.now(UTC)).parse()


# --- clauses -----------------------------------------------------------------------------------
def clause(field: str | None, tok: Token, now: datetime) -> Predicate:
    if field == "*" and tok.text == "*":
        return lambda p: True
    name = field or "identifier"
    if name not in records.KNOWN_FIELDS:
        raise SolrError(f"undefined field {name}")
    if tok.kind == "TERM" and tok.text == "*" and tok.wild:
        return lambda p: name in p.fields
    if name == "footprint":
        return _spatial(tok.text)
    if name in records.DATE_FIELDS or name in records.INT_FIELDS or name in records.DOUBLE_FIELDS:
        convert = _date_parser(now) if name in records.DATE_FIELDS else _number
        return _typed(name, tok, convert)
    return _text(name, tok)


def _typed(name: str, tok: Token, convert: Callable[[str], Any]) -> Predicate:
    return _compare(tok, convert, lambda p: p.fields.get(name))


def _compare(tok: Token, convert: Callable[[str], Any], get: Callable[[Product], Any]) -> Predicate:
    """Equality with, or a range ``[a TO b]``/``{a TO b}`` (``*``: open) around, ``tok``."""
    if tok.range is None:
        wanted = convert(tok.text)
        return lambda p: get(p) == wanted
    low_text, high_text, low_incl, high_incl = tok.range
    low = None if low_text == "*" else convert(low_text)
    high = None if high_text == "*" else convert(high_text)

    def test(p: Product) -> bool:
        value = get(p)
        if value is None or (low is not None and (value < low or (value == low and not low_incl))):
            return False
        return high is None or not (value > high or (value == high and not high_incl))

    return test


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SolrError(f"Invalid Number: {text}") from None


def _text(name: str, tok: Token) -> Predicate:
    fold: Callable[[str], str] = (lambda s: s) if name in EXACT_FIELDS else str.lower
    if tok.range is not None:
        return _compare(
            tok, fold, lambda p: fold(str(p.fields[name])) if name in p.fields else None
        )
    if tok.wild is not None:
        flags = 0 if name in EXACT_FIELDS else re.IGNORECASE
        regex = re.compile(tok.wild, flags | re.DOTALL)
        return lambda p: any(regex.fullmatch(v) for v in _values(p, name))
    wanted = fold(tok.text)
    return lambda p: any(fold(v) == wanted for v in _values(p, name))


def _values(p: Product, name: str) -> Iterable[str]:
    """The field's text and, for tokenized fields (``VV VH``), each of its words."""
    text = str(p.fields.get(name, ""))
    return (text, *text.split()) if name in TOKENIZED_FIELDS else (text,)


# --- dates -------------------------------------------------------------------------------------
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
_MATH = re.compile(r"([+-])(\d+)([A-Z]+?)S?(?=[+\-/]|$)|/([A-Z]+?)S?(?=[+\-/]|$)")


def _date_parser(now: datetime) -> Callable[[str], datetime]:
    def parse(text: str) -> datetime:
        if text.startswith("NOW"):
            moment, rest = now, text[3:]
        elif match := _INSTANT.match(text):
            moment, rest = parse_instant(match.group(0)[:23].rstrip("Z") + "Z"), text[match.end() :]
        else:
            raise SolrError(f"Invalid Date String:'{text}'")
        return _date_math(moment, rest, text)

    return parse


def _date_math(moment: datetime, rest: str, text: str) -> datetime:
    pos = 0
    while pos < len(rest):
        match = _MATH.match(rest, pos)
        unit = match and _UNITS.get(match.group(3) or match.group(4))
        if not match or not unit:
            raise SolrError(f"Invalid Date in Date Math String:'{text}'")
        if match.group(4):
            moment = _round(moment, unit)
        else:
            amount = int(match.group(2)) * (1 if match.group(1) == "+" else -1)
            moment = _add(moment, unit, amount)
        pos = match.end()
    return moment


def _add(moment: datetime, unit: str, amount: int) -> datetime:
    if unit in ("y", "mo"):
        months = moment.month - 1 + amount * (12 if unit == "y" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)
    seconds = {"d": 86400, "h": 3600, "mi": 60, "s": 1, "ms": 0.001}[unit]
    return moment + timedelta(seconds=seconds * amount)


def _round(moment: datetime, unit: str) -> datetime:
    if unit == "ms":
        return moment
    keep = ("y", "mo", "d", "h", "mi", "s").index(unit) + 1
    parts = [moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second]
    year, month, day, hour, minute, second = parts[:keep] + [1, 1, 1, 0, 0, 0][keep:]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- footprint ---------------------------------------------------------------------------------
def _spatial(text: str) -> Predicate:
    """``Intersects(<WKT>)``, ``IsWithin``, ``Contains``, ``IsDisjointTo``; ``ENVELOPE(...)``."""
    match = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*", text, re.DOTALL)
    operation = match.group(1).lower() if match else text.split("(")[0].strip()
    if match is None or operation not in ("intersects", "iswithin", "contains", "isdisjointto"):
        raise SolrError(f"Unknown Operation: {operation}")
    shape = _shape(match.group(2).strip())
    prepared = prep(shape)
    if operation == "intersects":
        return lambda p: bool(prepared.intersects(p.geometry))
    if operation == "iswithin":
        return lambda p: bool(prepared.contains(p.geometry))
    if operation == "contains":
        return lambda p: bool(p.geometry.contains(shape))
    return lambda p: bool(prepared.disjoint(p.geometry))


def _shape(text: str) -> BaseGeometry:
    envelope = re.fullmatch(r"ENVELOPE\s*\(([^)]*)\)", text, re.IGNORECASE)
    numbers = re.fullmatch(r"(-?[\d.]+)\s*[, ]\s*(-?[\d.]+)", text)
    try:
        if envelope:
            west, east, north, south = (float(v) for v in envelope.group(1).split(","))
            shape = box(west, south, east, north)
        elif numbers:
            shape = Point(float(numbers.group(2)), float(numbers.group(1)))  # lat,lon
        else:
            shape = wkt.loads(text)
    except (ShapelyError, ValueError) as exc:
        reason = f"java.text.ParseException: {exc}"
    else:
        if shape.is_valid and not shape.is_empty:
            return shape
        reason = f"com.vividsolutions.jts.geom.TopologyException: {explain_validity(shape)}"
    raise SolrError(
        f'Unable to parse shape given formats "lat,lon", "x y" or as WKT because {reason}'
    )
