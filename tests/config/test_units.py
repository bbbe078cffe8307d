from datetime import timedelta

import pytest

from postroom.config.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("4.5d", timedelta(days=4, hours=12)),
        ("2w", timedelta(days=14)),
        ("250ms", timedelta(milliseconds=250)),
        ("30", timedelta(seconds=30)),
        (45, timedelta(seconds=45)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations_read_as_people_write_them(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5 minutes", "1y", "-5m", "m5", True, None, [1]])
def test_bad_durations_are_refused_with_a_hint(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25MB", 25_000_000),
        ("512KiB", 512 * 1024),
        ("1GB", 1_000_000_000),
        ("10k", 10_000),
        ("1000", 1000),
        (2048, 2048),
    ],
)
def test_sizes_read_in_decimal_and_binary_units(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["25 parsecs", "MB", False, 1.5])
def test_bad_sizes_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_durations_print_back_in_their_largest_unit() -> None:
    assert format_duration(timedelta(days=4.5)) == "4.5d"
    assert format_duration(timedelta(hours=2)) == "2h"
    assert format_duration(timedelta(seconds=90)) == "90s"
