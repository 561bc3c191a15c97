"""What an agent's tokens cost, from one table, so a budget can be watched while the agent runs. An estimate
at list prices (standard tier, no batch, no long-context surcharge): what the provider bills may differ.

Prices are USD per million tokens, as published on 2026-12-03 (the "as of" date of this table):
  Anthropic: https://platform.claude.com/docs/en/about-claude/pricing and the model pages under
             https://platform.claude.com/docs/en/models/ (Sonnet 5.5's cache read as cut on 2026-10-07)
  OpenAI:    https://developers.openai.com/api/docs/pricing and the model pages under
             https://developers.openai.com/api/docs/models/
The claude-success capture checks one row: Claude Code priced claude-opus-4-8 at $5 in / $25 out, as here.
Update the table, and the date, when the providers change their prices.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Price(NamedTuple):
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float  # Anthropic's 5-minute write; OpenAI's (30-minute) write, or the input price without one
    cache_write_long: float  # Anthropic's 1-hour write; the same as cache_write where there is one kind


def _anthropic(inp: float, out: float, read: float) -> Price:
    # cache writes are 1.25x (5 minutes) and 2x (1 hour) the input price on every Claude model
    return Price(inp, out, read, inp * 1.25, inp * 2)


def _openai(inp: float, out: float, cached: float | None = None, write: float | None = None) -> Price:
    # models without prompt caching bill cached input as input; without a write price, a write is input
    return Price(inp, out, inp if cached is None else cached, inp if write is None else write,
                 inp if write is None else write)


# Matched by the longest key that the model's name starts with, ending at a separator ("-", "@", ":"), so
# "claude-sonnet-4-5-20250929" is Sonnet 4 pricing, and "gpt-5.5" is not "gpt-5".
PRICES: dict[str, Price] = {
    # Anthropic
    "claude-fable-5-2": _anthropic(8, 40, 0.20),
    "claude-mythos-5-2": _anthropic(8, 40, 0.20),
    "claude-fable-5-1": _anthropic(10, 50, 0.25),
    "claude-mythos-5-1": _anthropic(10, 50, 0.25),
    "claude-fable-5": _anthropic(10, 50, 1.00),
    "claude-mythos-5": _anthropic(10, 50, 1.00),
    "claude-opus-5-5": _anthropic(4, 20, 0.20),
    "claude-opus-5": _anthropic(5, 25, 0.50),
    "claude-opus-4-8": _anthropic(5, 25, 0.50),
    "claude-opus-4-7": _anthropic(5, 25, 0.50),
    "claude-opus-4-6": _anthropic(5, 25, 0.50),
    "claude-opus-4-5": _anthropic(5, 25, 0.50),
    "claude-opus-4": _anthropic(15, 75, 1.50),  # Opus 4 and 4.1
    "claude-3-opus": _anthropic(15, 75, 1.50),
    "claude-sonnet-5-5": _anthropic(2, 10, 0.10),
    "claude-sonnet-5": _anthropic(2, 10, 0.20),
    "claude-sonnet-4": _anthropic(3, 15, 0.30),  # Sonnet 4, 4.5, 4.6
    "claude-3-7-sonnet": _anthropic(3, 15, 0.30),
    "claude-3-5-sonnet": _anthropic(3, 15, 0.30),
    "claude-haiku-5-5": _anthropic(0.10, 0.50, 0.01),  # prompts up to 100K tokens; 5x above
    "claude-haiku-4-5": _anthropic(1, 5, 0.10),
    "claude-3-5-haiku": _anthropic(0.80, 4, 0.08),
    "claude-3-haiku": _anthropic(0.25, 1.25, 0.03),
    # OpenAI
    "gpt-6-astra": _openai(10, 50, 1.00, 12.50),
    "gpt-6.2-sol": _openai(2, 10, 0.10, 2.50),
    "gpt-6.1-sol": _openai(2, 10, 0.10, 2.50),
    "gpt-6-sol": _openai(2, 10, 0.20, 2.50),
    "gpt-6.1-terra": _openai(1, 5, 0.05, 1.25),
    "gpt-6-luna": _openai(0.10, 0.50, 0.01, 0.125),
    "gpt-5.5-pro": _openai(30, 180),
    "gpt-5.5": _openai(5, 30, 0.50),
    "gpt-5.4-pro": _openai(30, 180),
    "gpt-5.4-mini": _openai(0.75, 4.50, 0.075),
    "gpt-5.4-nano": _openai(0.20, 1.25, 0.02),
    "gpt-5.4": _openai(2.50, 15, 0.25),
    "gpt-5.3-codex": _openai(1.75, 14, 0.175),
    "gpt-5.2": _openai(1.75, 14, 0.175),  # and gpt-5.2-codex
    "gpt-5.1-codex-mini": _openai(0.25, 2, 0.025),
    "gpt-5.1": _openai(1.25, 10, 0.125),  # and gpt-5.1-codex, -codex-max
    "gpt-5-pro": _openai(15, 120),
    "gpt-5-mini": _openai(0.25, 2, 0.025),
    "gpt-5-nano": _openai(0.05, 0.40, 0.005),
    "gpt-5": _openai(1.25, 10, 0.125),  # and gpt-5-codex
    "codex-mini-latest": _openai(1.50, 6, 0.375),
    "gpt-4.1": _openai(2, 8, 0.50),
    "o4-mini": _openai(1.10, 4.40, 0.275),
    "o3": _openai(2, 8, 0.50),
}

# A model the table does not know (a new one, a custom endpoint's) is priced high rather than free, so a
# budget stops it too early, never too late: the dearest non-"pro" row of each column (Opus 4.1's prices).
FALLBACK = Price(15, 75, 1.50, 18.75, 30)

_SUFFIX = re.compile(r"\[[^\]]*\]$")  # Claude Code's context-window tag: "claude-opus-4-8[1m]"


def normalize(model: str) -> str:
    """The model's own name: lower case, without a context tag, a provider path ("openai/gpt-5.5") or a
    Bedrock region and vendor ("us.anthropic.claude-...")."""
    name = _SUFFIX.sub("", model.strip().lower())
    name = name.rsplit("/", 1)[-1]
    return name.split("anthropic.", 1)[-1]


def price_of(model: str | None) -> Price:
    if not model:
        return FALLBACK
    name = normalize(model)
    best = ""
    for key in PRICES:
        if len(key) > len(best) and name.startswith(key) and name[len(key):len(key) + 1] in ("", "-", "@", ":"):
            best = key
    return PRICES[best] if best else FALLBACK


def cost(model: str | None, *, input_tokens: int, output_tokens: int, cache_read_tokens: int = 0,
         cache_write_tokens: int = 0, cache_write_long_tokens: int = 0) -> float:
    """USD for these tokens. cache_write_long_tokens is the part of cache_write_tokens written for the long
    lifetime (Anthropic's 1 hour)."""
    p = price_of(model)
    long = min(max(cache_write_long_tokens, 0), max(cache_write_tokens, 0))
    total = (input_tokens * p.input + output_tokens * p.output + cache_read_tokens * p.cache_read
             + (cache_write_tokens - long) * p.cache_write + long * p.cache_write_long)
    return total / 1_000_000
