"""Splitting an R / lme4 model formula into its parts.

``cbind(s, f) ~ x + f + offset(log(n)) + (1 + x | g)`` becomes a response
``cbind(s, f)``, a fixed-effects right-hand side ``x + f``, offsets ``[log(n)]``
and one :class:`RandomBar` per parenthesised bar term. The fixed part is handed
to formulaic; the bars to :mod:`pyglmm.formula.random`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyglmm.errors import FormulaError


@dataclass(frozen=True)
class RandomBar:
    """One random-effects term ``(lhs | group)`` as written.

    Attributes
    ----------
    lhs : str
        The model formula of the random effects (``"1 + x"``, ``"0 + x"``).
    group : str
        The grouping expression as written (``"g"``, ``"g1/g2"``, ``"g1:g2"``).
    correlated : bool
        ``False`` for the double bar ``(x || g)`` (independent random effects).
    """

    lhs: str
    group: str
    correlated: bool = True

    def __str__(self) -> str:
        bar = "|" if self.correlated else "||"
        return f"({self.lhs} {bar} {self.group})"


@dataclass(frozen=True)
class ParsedFormula:
    """The parts of a model formula; see :func:`parse_formula`."""

    text: str
    response: str | None
    fixed: str
    offsets: list[str] = field(default_factory=list)
    random: list[RandomBar] = field(default_factory=list)

    @property
    def has_intercept(self) -> bool:
        """Whether the fixed part keeps the intercept (R's default)."""
        terms = [t.replace(" ", "") for t in split_top_level(self.fixed, "+")]
        removed = {"0", "-1"}
        return not any(t in removed or t.endswith("-1") for t in terms)


#: Characters that open or close a nesting level or a quote.
_NESTING = "'\"`([{)]}"


def _top_level_positions(text: str, char: str) -> list[int]:
    """Positions of ``char`` in ``text`` outside parentheses, brackets and quotes."""
    depth = 0
    quote: str | None = None
    out = []
    # visit only the characters that matter (one regex scan instead of a Python loop
    # over every character)
    for m in re.finditer(f"[{re.escape(_NESTING + char)}]", text):
        c = m.group()
        if quote:
            if c == quote:
                quote = None
            continue
        if c in "'\"`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                raise FormulaError(f"unbalanced parentheses in formula {text!r}")
        elif c == char and depth == 0:
            out.append(m.start())
    if depth != 0 or quote:
        raise FormulaError(f"unbalanced parentheses or quotes in formula {text!r}")
    return out


def split_top_level(text: str, char: str, *, drop_empty: bool = True) -> list[str]:
    """Split ``text`` at each ``char`` outside parentheses, brackets and quotes.

    ``split_top_level("cbind(a, b), c", ",")`` gives ``["cbind(a, b)", "c"]``; the
    parts are stripped, and empty parts are dropped unless ``drop_empty`` is False.
    """
    pos = _top_level_positions(text, char)
    parts, start = [], 0
    for p in pos:
        parts.append(text[start:p])
        start = p + 1
    parts.append(text[start:])
    parts = [p.strip() for p in parts]
    return [p for p in parts if p] if drop_empty else parts


def _split_signed_terms(rhs: str) -> list[tuple[str, str]]:
    """Split a right-hand side into ``(sign, term)`` pairs at top-level + and -."""
    depth = 0
    quote: str | None = None
    terms: list[tuple[str, str]] = []
    sign, start = "+", 0
    for m in re.finditer(f"[{re.escape(_NESTING)}+\\-]", rhs):
        c, i = m.group(), m.start()
        if quote:
            if c == quote:
                quote = None
            continue
        if c in "'\"`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:  # + or -
            j = i - 1
            while j >= 0 and rhs[j].isspace():
                j -= 1
            # a sign right after an operator (or at the start) is unary, e.g. "~ -1"
            if j >= 0 and rhs[j] not in "+-*/:^~(":
                terms.append((sign, rhs[start:i].strip()))
                sign, start = c, i + 1
            elif j < 0:
                sign, start = c, i + 1
    terms.append((sign, rhs[start:].strip()))
    return [(s, t) for s, t in terms if t]


def _strip_outer_parens(term: str) -> str | None:
    """The inside of ``( ... )`` if the parentheses wrap the whole term, else None."""
    if not (term.startswith("(") and term.endswith(")")):
        return None
    depth = 0
    for i, c in enumerate(term):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and i != len(term) - 1:
                return None
    return term[1:-1].strip()


def _parse_bar(inner: str, text: str) -> RandomBar | None:
    pos = _top_level_positions(inner, "|")
    if not pos:
        return None
    if len(pos) == 2 and pos[1] == pos[0] + 1:
        lhs, group, correlated = inner[: pos[0]], inner[pos[1] + 1 :], False
    elif len(pos) == 1:
        lhs, group, correlated = inner[: pos[0]], inner[pos[0] + 1 :], True
    else:
        raise FormulaError(f"cannot read random-effects term ({inner}) in {text!r}")
    lhs, group = lhs.strip(), group.strip()
    if not group:
        raise FormulaError(
            f"random-effects term ({inner}) has no grouping factor after the bar; "
            "write it as (1 | g)"
        )
    if not lhs:
        raise FormulaError(
            f"random-effects term ({inner}) has nothing before the bar; write (1 | {group})"
        )
    return RandomBar(lhs=lhs, group=group, correlated=correlated)


def parse_formula(text: str) -> ParsedFormula:
    """Split a model formula into response, fixed part, offsets and random-effect bars.

    Parameters
    ----------
    text : str
        An R / lme4 formula such as ``"y ~ x + offset(log(n)) + (1 | g)"``.

    Returns
    -------
    ParsedFormula
        ``fixed`` is the right-hand side without offsets and bars, ``"1"`` when
        nothing else is left (an intercept-only model) and ``"0"`` when only
        ``- 1`` / ``0`` is left.
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula must be a non-empty string such as 'y ~ x'")
    tilde = _top_level_positions(text, "~")
    if len(tilde) > 1:
        raise FormulaError(f"formula {text!r} has more than one '~'")
    if tilde:
        response = text[: tilde[0]].strip() or None
        rhs = text[tilde[0] + 1 :].strip()
    else:
        response, rhs = None, text.strip()
    if not rhs:
        raise FormulaError(f"formula {text!r} has nothing on the right of '~'")

    if rhs.rstrip()[-1] in "+-*/:^" or rhs.lstrip()[0] in "*/:^":
        raise FormulaError(f"formula {text!r} has an operator with nothing on one side")
    fixed_terms: list[tuple[str, str]] = []
    offsets: list[str] = []
    bars: list[RandomBar] = []
    for sign, term in _split_signed_terms(rhs):
        inner = _strip_outer_parens(term)
        bar = _parse_bar(inner, text) if inner is not None else None
        if bar is not None:
            if sign == "-":
                raise FormulaError(f"cannot subtract a random-effects term in {text!r}")
            bars.append(bar)
        elif term.startswith("offset(") and _strip_outer_parens(term[6:]) is not None:
            if sign == "-":
                raise FormulaError(f"cannot subtract an offset in {text!r}")
            offsets.append(term[7:-1].strip())
        else:
            fixed_terms.append((sign, term))

    if not fixed_terms:
        fixed = "1"
    else:
        fixed = fixed_terms[0][1] if fixed_terms[0][0] == "+" else f"-{fixed_terms[0][1]}"
        for sign, term in fixed_terms[1:]:
            fixed += f" {sign} {term}"
        if fixed.replace(" ", "") in {"-1", "0", "+0"}:
            fixed = "0"
    return ParsedFormula(text=text, response=response, fixed=fixed, offsets=offsets, random=bars)
