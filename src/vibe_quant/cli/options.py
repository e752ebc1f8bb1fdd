"""Options and values several verbs share: parameters, sweep axes, dates, sizing and risk presets,
and naming the flag in a configuration error."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from typing import Annotated

import typer

from vibe_quant.errors import ConfigError, UserError

SizingOption = Annotated[
    str | None,
    typer.Option("--sizing", help="Position sizer: a preset (fixed_fractional, kelly, atr, or one saved with "
                 "`vq sizing save`) or a YAML file. Replaces the strategy's own sizing."),
]  # fmt: skip
RiskOption = Annotated[
    str | None,
    typer.Option("--risk", help="Circuit breakers: a preset (seed_default, live_safety, or one saved with "
                 "`vq risk save`) or a YAML file."),
]  # fmt: skip
EngineOption = Annotated[
    str,
    typer.Option("--engine", help="sim: the compiled perp kernel (identical results, much faster; strategies it "
                 "cannot run fall back to NautilusTrader); nautilus: NautilusTrader for every point."),
]  # fmt: skip


def parse_params(items: list[str], flag: str = "--param") -> dict:
    """``['fast=20', 'allow_short=false']`` -> ``{'fast': 20, 'allow_short': False}`` (JSON values, else text)."""
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"{flag} {item!r}: write NAME=VALUE, e.g. {flag} fast=20")
        try:
            params[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[name.strip()] = value
    return params


def parse_axes(items: list[str]) -> dict[str, list]:
    """``['rsi.period=7,14,21']`` -> ``{'rsi.period': [7, 14, 21]}`` (JSON values, else text)."""
    axes = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise UserError(f"--sweep {item!r}: write KEY=V1,V2,..., e.g. --sweep rsi.period=7,14,21")
        parsed = []
        for text in values.split(","):
            try:
                parsed.append(json.loads(text))
            except json.JSONDecodeError:
                parsed.append(text.strip())
        axes[key.strip()] = parsed
    return axes


def parse_date(option: str, text: str) -> dt.date:
    """A ``YYYY-MM-DD`` option value (UserError naming `option` otherwise)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: not a date; use YYYY-MM-DD") from None


_PATH = re.compile(r"\$\.(\w+)")


def with_flags(flags: dict[str, str], leading: bool = False):
    """Decorate a config builder so a ConfigError about a field names the flag that set it
    (``Expected `float` >= 1.0 - at `$.leverage``` -> ``--leverage: expected `float` >= 1.0``;
    with `leading`, also ``max_drawdown is ...`` -> ``--max-dd: max_drawdown is ...``)."""

    def wrap(build):
        @functools.wraps(build)
        def built(*args, **kwargs):
            try:
                return build(*args, **kwargs)
            except ConfigError as exc:
                raise ConfigError(flag_message(str(exc), flags, leading)) from None

        return built

    return wrap


def flag_message(message: str, flags: dict[str, str], leading: bool = False) -> str:
    """Rewrite msgspec's ``... - at `$.field``` as ``--flag: ...`` when `field` has a flag; with
    `leading`, prefix a message that starts with such a field's name (a config's own range check)
    with ``--flag: ``."""
    match = _PATH.search(message)
    if match is None:
        field = message.split(" ", 1)[0]
        return f"{flags[field]}: {message}" if leading and field in flags else message
    if match.group(1) not in flags:
        return message
    head, _, problem = message.partition(": ")
    problem = problem.split(" - at ")[0]
    return f"{flags[match.group(1)]}: {problem[:1].lower()}{problem[1:]} (in the {head})"
