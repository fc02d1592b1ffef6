"""The one exception hierarchy convcalc raises for bad input.

Every error carries what a good message needs: the sentence saying what is
wrong, a hint saying how to fix it, and where it happened (the layer index,
the field, and the source text with the span to underline).
"""

from __future__ import annotations

from dataclasses import dataclass

from .escape import escape, escape_positions


@dataclass(frozen=True)
class Origin:
    """Where a layer came from: its source text and the span of each field in it.

    ``spans`` maps a field name (PyTorch's argument name) to ``(start, end)``
    offsets into ``text``; ``"*"`` is the span of the whole layer name.

    >>> Origin("conv:64,k=3", (("*", (0, 4)), ("kernel_size", (8, 11)))).span_of("kernel_size")
    (8, 11)
    """

    text: str
    spans: tuple[tuple[str, tuple[int, int]], ...] = ()
    where: str = ""  # e.g. "layers[2]" for a document, empty for a token

    def span_of(self, name: str | None) -> tuple[int, int] | None:
        for key, span in self.spans:
            if key == name:
                return span
        return None


class ConvcalcError(Exception):
    """Root of every error convcalc raises about its input.

    >>> err = ConvcalcError("stride must be positive", hint="use s=1", field="stride")
    >>> err.field, str(err)
    ('stride', 'stride must be positive')
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        field: str | None = None,
        layer: int | None = None,
        origin: Origin | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        message, hint = _bounded(message), None if hint is None else _bounded(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field
        self.layer = layer
        self.origin = origin
        self.span = span

    def located(self, *, layer: int | None = None, origin: Origin | None = None) -> ConvcalcError:
        """Fill in the layer index and origin if not already known; returns self."""
        if self.layer is None:
            self.layer = layer
        if self.origin is None:
            self.origin = origin
        return self

    def underline(self) -> tuple[str, tuple[int, int]] | None:
        """The text to show and the span in it to mark with carets, if any."""
        if self.origin is None:
            return None
        span = self.span or self.origin.span_of(self.field) or self.origin.span_of("*")
        if span is None:
            return None
        return self.origin.text, span

    def _shown(self) -> tuple[str, tuple[int, int] | None]:
        """The origin text as shown (control characters escaped, long text cut around the cause) and the span in it."""
        text = self.origin.text if self.origin is not None else ""
        under = self.underline()
        shown, positions = escape_positions(text)
        if under is None:
            return _clip(shown, None)
        start, end = under[1]
        start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
        return _clip(shown, (positions[start], positions[end]))

    def describe(self) -> str:
        """The one-line summary: where (layer, document path, quoted text), then what is wrong."""
        where = []
        if self.layer is not None:
            where.append(f"layer {self.layer}")
        if self.origin is not None:
            if self.origin.where:
                label = _bounded(self.origin.where, 120)  # a document path or line label may quote the input
                where.append(f"({label})" if where else label)
            if self.origin.text:
                where.append(f"'{self._shown()[0]}'")
        elif self.field is not None:
            where.append(_bounded(self.field, 120))
        prefix = " ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def format(self) -> str:
        """The message for a person: the summary, a caret line under the cause, and the hint.

        >>> err = ShapeError("padding='same' needs stride 1 (got stride 2)", hint="give an explicit padding, e.g. p=1",
        ...                  layer=2, origin=Origin("conv:64,k=3,s=2,p=same", (("padding", (16, 22)),)), field="padding")
        >>> print(err.format())
        error: layer 2 'conv:64,k=3,s=2,p=same': padding='same' needs stride 1 (got stride 2)
                                        ^^^^^^
        hint: give an explicit padding, e.g. p=1
        """
        line = f"error: {escape(self.describe())}"
        lines = [line]
        shown, span = self._shown()
        if span is not None and shown:
            column = line.find(f"'{shown}'") + 1
            if column > 0:
                start, end = span
                lines.append(" " * (column + start) + "^" * max(end - start, 1))
        if self.hint:
            lines.append(f"hint: {escape(self.hint)}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The error as the JSON object convcalc prints under ``"error"``."""
        out: dict = {"type": type(self).__name__, "message": escape(self.describe())}
        if self.hint:
            out["hint"] = self.hint
        out["layer"] = self.layer
        out["field"] = self.field
        under = self.underline()
        if under is not None:
            text, (start, end) = under
            out["token"] = text
            out["span"] = [start, end]
        return out


def _clip(text: str, span, width: int = 120) -> tuple[str, tuple[int, int] | None]:
    """A long text cut to a window around the span (or its start), marked with ..."""
    if len(text) <= width:
        return text, span
    start, end = span if span is not None else (0, 0)
    first = max(0, min(start - 20, len(text) - width))
    last = min(len(text), first + width)
    cut = ("..." if first else "") + text[first:last] + ("..." if last < len(text) else "")
    shift = 3 if first else 0
    if span is None:
        return cut, None
    return cut, (start - first + shift, min(end, last) - first + shift)


class SpecError(ConvcalcError):
    """A layer spec, shape or document that cannot be read.

    >>> from convcalc import parse_layer
    >>> try:
    ...     parse_layer("conv:64,k=three")
    ... except SpecError as err:
    ...     print(err.field)
    kernel_size
    """


class ShapeError(ConvcalcError):
    """A well-formed layer that PyTorch would refuse for the shape it receives.

    >>> from convcalc import analyse_tokens
    >>> try:
    ...     analyse_tokens("3x4x4", "conv:8,k=7")
    ... except ShapeError as err:
    ...     print(err.layer, err.field)
    1 kernel_size
    """


class BatchAxisError(ShapeError):
    """An operation on the batch axis (moving, merging or reducing it), which convcalc keeps apart."""


class ResourceError(ConvcalcError):
    """A computation refused because it would need more than allowed (memory, work).

    >>> issubclass(ResourceError, ConvcalcError)
    True
    """


class ConsistencyError(ConvcalcError):
    """The backend and the analysis disagree: a bug in convcalc, not in the input."""


__all__ = ["BatchAxisError", "ConsistencyError", "ConvcalcError", "Origin", "ResourceError", "ShapeError", "SpecError"]


MAX_MESSAGE = 400  # characters of a message or hint before long words of the input are cut
_WORD = 60  # what is kept of each such word


def _bounded(text: str, limit: int = 0) -> str:
    """A message quoting the input, kept to one readable line: a long word (a name, a token, a value
    from the input) is cut to its start and its length, so a megabyte of input makes no megabyte line.

    >>> _bounded("no layer is called " + "a" * 10**6)[-27:]
    'a... (1,000,000 characters)'
    """
    if len(text) <= (limit or MAX_MESSAGE):
        return text
    parts = text.split(" ")
    return " ".join(p if len(p) <= _WORD + 20 else f"{p[:_WORD]}... ({len(p):,} characters)" for p in parts)

