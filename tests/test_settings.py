"""Flags made from a settings dataclass: one per field, typed from its annotation, layered over the defaults."""
import argparse
from dataclasses import dataclass, field
from typing import List, Literal, Optional, Tuple

import pytest

from utils.settings import add_flags, changed, flag_values, from_flags


@dataclass
class Example:
    size: int = 512  # pixels a side
    weight: float = 0.5
    mode: Literal["fast", "exact"] = "fast"
    gif: bool = True
    angles: List[float] = field(default_factory=lambda: [-10.0, 10.0])
    at: Optional[Tuple[float, float, float]] = None
    ratio: Optional[float] = None  # 30% by default


def parse(argv, defaults=Example(), **options):
    parser = argparse.ArgumentParser()
    add_flags(parser, defaults, "example", **options)
    return parser, parser.parse_args(argv)


def test_flags_not_given_keep_the_base_and_given_ones_replace_it():
    base = Example(size=256)  # as a script's overrides or a profile
    _, args = parse([], base)
    assert from_flags(args, base) == base
    _, args = parse(["--weight", "2", "--mode", "exact", "--no-gif", "--angles", "0", "--at", "1", "2", "3"], base)
    assert from_flags(args, base) == Example(size=256, weight=2.0, mode="exact", gif=False, angles=[0.0],
                                             at=(1.0, 2.0, 3.0))


def test_types_choices_and_fixed_lengths_come_from_the_annotations():
    with pytest.raises(SystemExit):
        parse(["--mode", "slow"])
    with pytest.raises(SystemExit):
        parse(["--at", "1", "2"])
    with pytest.raises(SystemExit):
        parse(["--size", "1.5"])


def test_help_lists_every_field_with_its_comment_and_default():
    parser, _ = parse([], Example(size=64), aliases={"size": ["--side"]})
    text = parser.format_help()
    for flag in ("--size", "--side", "--weight", "--mode", "--gif", "--no-gif", "--angles", "--at", "--ratio"):
        assert flag in text
    assert "pixels a side (default: 64)" in text and "30% by default" in text


def test_a_prefix_keeps_two_dataclasses_apart():
    parser = argparse.ArgumentParser()
    add_flags(parser, Example(), "first")
    add_flags(parser, Example(), "second", prefix="other-", skip=("gif",))
    args = parser.parse_args(["--size", "8", "--other-size", "16"])
    assert flag_values(args, Example) == {"size": 8}
    assert flag_values(args, Example, prefix="other-") == {"size": 16}
    with pytest.raises(SystemExit):
        parser.parse_args(["--other-gif"])


def test_changed_names_the_fields_that_differ():
    assert changed(Example(), Example(size=256, mode="exact")) == "size=256, mode=exact"
