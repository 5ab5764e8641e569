"""Cutting a very long text to a window of characters before it is tokenised.

A 1 MB text costs seconds of tokenisation, and the preprocess step tokenises one request at a time, so every
request behind it would wait. Truncation keeps at most `max_length` tokens anyway: tokenising a window that
already holds more than that (plus a margin) gives the same kept tokens. The window is cut at whitespace where
there is some near the edge, so no word is split (every tokenizer we serve pre-splits on whitespace); where
there is none, the margin keeps the tokens of the split word away from the ones truncation keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

CHARS_PER_TOKEN = 8  # the first window: this many characters per token of the budget (then doubled)
MARGIN_TOKENS = 16  # a window must hold this many tokens beyond the budget to stand for the whole text


@dataclass(frozen=True)
class Window:
    text: str
    cut: bool  # False: the whole text


def head(text: str, chars: int) -> Window:
    """At most `chars` leading characters of `text`, ending before a whitespace when one is near the end."""
    if len(text) <= chars:
        return Window(text, False)
    window = text[:chars]
    edge = chars - chars // 4
    for position in range(len(window) - 1, edge - 1, -1):
        if window[position].isspace():
            return Window(window[:position], True)
    return Window(window, True)


def tail(text: str, chars: int) -> Window:
    """At most `chars` trailing characters of `text`, starting at a whitespace when one is near the start."""
    if len(text) <= chars:
        return Window(text, False)
    window = text[len(text) - chars :]
    for position in range(chars // 4):
        if window[position].isspace():
            return Window(window[position:], True)
    return Window(window, True)
