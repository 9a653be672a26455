"""Command-line flags made from a settings dataclass, so that each default is written once: in the dataclass.

A script adds one ``--field-name`` flag per field (``add_flags``), typed from the field's annotation, and
builds its settings as dataclass defaults < the overrides at the top of the script < the flags given
(``from_flags``, ``flag_values``). A flag that is not given keeps the value below it.
"""
import argparse
import inspect
import re
import typing
from dataclasses import fields, replace
from typing import Any, Iterable, Mapping, Optional, Sequence, TypeVar

Settings = TypeVar("Settings")  # a settings dataclass (instance)


def add_flags(parser: argparse.ArgumentParser, defaults: Any, title: str, prefix: str = "",
              aliases: Optional[Mapping[str, Sequence[str]]] = None, skip: Iterable[str] = (), note: str = "") -> None:
    """Add a ``--<prefix><field-name>`` flag for every field of the dataclass instance ``defaults`` but those in
    ``skip`` (their help shows its values), in a group called ``title``; ``aliases`` maps a field name to extra
    flag names (e.g. "--size")."""
    group = parser.add_argument_group(title, note or None)
    comments = field_comments(type(defaults))
    hints = typing.get_type_hints(type(defaults))
    for item in fields(defaults):
        if item.name in skip:
            continue
        names = [f"--{prefix}{item.name.replace('_', '-')}", *(aliases or {}).get(item.name, ())]
        text = f"{comments.get(item.name, '')} (default: {_shown(getattr(defaults, item.name))})"
        group.add_argument(*names, dest=_dest(prefix, item.name), default=argparse.SUPPRESS,
                           help=text.lstrip().replace("%", "%%"), **_argument_kind(hints[item.name]))


def from_flags(args: argparse.Namespace, base: Settings, prefix: str = "") -> Settings:
    """``base`` (a dataclass instance) with the value of every flag given in ``args``."""
    return replace(base, **flag_values(args, type(base), prefix))


def flag_values(args: argparse.Namespace, settings_class: type, prefix: str = "") -> dict[str, Any]:
    """{field name: value} of the flags given in ``args`` for the fields of ``settings_class`` (the others are
    absent), to build a dataclass whose ``__post_init__`` must see the final values."""
    hints = typing.get_type_hints(settings_class)
    given = {item.name: getattr(args, _dest(prefix, item.name), None) for item in fields(settings_class)}
    return {name: _as_annotated(value, hints[name]) for name, value in given.items() if value is not None}


def changed(base: Any, other: Any) -> str:
    """The fields where ``other`` differs from ``base``, as "name=value" text (for help and logs)."""
    return ", ".join(f"{item.name}={getattr(other, item.name)}" for item in fields(base)
                     if getattr(other, item.name) != getattr(base, item.name))


def field_comments(settings_class: type) -> dict[str, str]:
    """{field name: its trailing ``# comment``} read from the dataclass's source (the flags' help)."""
    try:
        source = inspect.getsource(settings_class)
    except (OSError, TypeError):
        return {}
    return dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.+)$", source, flags=re.MULTILINE))


def _dest(prefix, name):
    """The attribute of the parsed flags that holds field ``name``."""
    return prefix.replace("-", "_") + name


def _argument_kind(hint):
    """argparse keywords for a field annotated ``hint``: type, choices, nargs, or a --x/--no-x switch."""
    hint = _without_none(hint)
    origin, parts = typing.get_origin(hint) or hint, typing.get_args(hint)
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is typing.Literal:
        return {"choices": parts, "type": type(parts[0])}
    if origin in (list, tuple):  # Tuple[float, float, float]: exactly three; List[float], Tuple[float, ...]: any
        fixed = origin is tuple and parts and Ellipsis not in parts
        return {"nargs": len(parts) if fixed else "+", "type": parts[0] if parts else float}
    return {"type": hint}


def _without_none(hint):
    """Optional[X] -> X; any other annotation unchanged."""
    parts = [part for part in typing.get_args(hint) if part is not type(None)]
    return parts[0] if typing.get_origin(hint) is typing.Union and len(parts) == 1 else hint


def _as_annotated(value, hint):
    """A parsed flag value as its field holds it: argparse's list becomes a tuple for tuple fields."""
    hint = _without_none(hint)
    return tuple(value) if (typing.get_origin(hint) or hint) is tuple else value


def _shown(value):
    """A default as the help shows it: short floats, None as 'none'."""
    if isinstance(value, (list, tuple)):
        return " ".join(_shown(v) for v in value)
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
