"""`postroom suppress` against real files."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from postroom.cli import main


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "postroom.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var")}))
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_suppress_add_list_export_import_remove_round_trip(
    config_file: Path, tmp_path: Path
) -> None:
    cfg = ("--config", str(config_file))

    added = run(
        "suppress", "add", *cfg, "--campaign", "spring", "A@x.example", "b@x.example"
    )
    run("suppress", "add", *cfg, "--global", "--reason", "legal", "c@x.example")
    listed = run("suppress", "list", *cfg, "--campaign", "spring")
    exported = run("suppress", "export", *cfg)
    export_file = tmp_path / "list.csv"
    export_file.write_text(exported)
    removed = run("suppress", "remove", *cfg, "--campaign", "spring", "a@x.example")
    after_remove = run("suppress", "list", *cfg)
    imported = run("suppress", "import", *cfg, str(export_file))
    after_import = run("suppress", "export", *cfg)

    assert added.strip() == "2 address(es) added to spring"
    assert "a@x.example" in listed
    assert "c@x.example" not in listed
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["address", "scope", "reason", "created_at"]
    assert [r[:3] for r in rows[1:]] == [
        ["c@x.example", "*", "legal"],
        ["a@x.example", "spring", "manual"],
        ["b@x.example", "spring", "manual"],
    ]
    assert removed.strip() == "1 address(es) removed from spring"
    assert "a@x.example" not in after_remove
    assert imported.strip().endswith("1 of 3 address(es) added")
    assert after_import == exported


def test_import_of_a_plain_list_needs_a_scope_and_takes_the_reason_given(
    config_file: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("# old list\na@x.example\n\nb@x.example\n")
    cfg = ("--config", str(config_file))

    refused = CliRunner().invoke(main, ["suppress", "import", *cfg, str(plain)])
    run("suppress", "import", *cfg, "--campaign", "spring", str(plain))
    listed = run("suppress", "list", *cfg, "--campaign", "spring")

    assert refused.exit_code != 0
    assert "no scope" in refused.output
    assert listed.count(" import ") == 2


def test_an_import_that_fails_part_way_says_how_many_were_added(
    config_file: Path, tmp_path: Path
) -> None:
    cfg = ("--config", str(config_file))
    run("suppress", "add", *cfg, "--campaign", "spring", "kept@x.example")
    # The database refuses one address of the second batch.
    with sqlite3.connect(tmp_path / "var" / "postroom.sqlite3") as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON suppressions"
            " WHEN NEW.address = 'r2100@x.example'"
            " BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
        )
    listed = tmp_path / "list.txt"
    listed.write_text("".join(f"r{n}@x.example\n" for n in range(2500)))

    result = CliRunner().invoke(
        main, ["suppress", "import", *cfg, "--campaign", "spring", str(listed)]
    )

    assert result.exit_code == 1
    assert "refused by a test trigger" in result.output
    assert "2000 address(es) had been added before the failure" in result.output
    assert "the first 2000 of 2500 entries are in" in result.output
    assert run("suppress", "export", *cfg).count("@x.example") == 2001


def test_list_says_on_stderr_when_it_stops_at_its_limit(config_file: Path) -> None:
    cfg = ("--config", str(config_file))
    run("suppress", "add", *cfg, "--campaign", "spring", "a@x.example", "b@x.example")

    cut = CliRunner().invoke(main, ["suppress", "list", *cfg, "--limit", "1"])
    whole = CliRunner().invoke(main, ["suppress", "list", *cfg, "--limit", "2"])

    assert cut.exit_code == 0
    assert [line.split()[1] for line in cut.stdout.splitlines()] == ["a@x.example"]
    assert cut.stderr == (
        "postroom: the first 1 entries shown; there are more "
        "(--limit N shows more, export writes all)\n"
    )
    assert whole.exit_code == 0
    assert len(whole.stdout.splitlines()) == 2
    assert whole.stderr == ""


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_list_refuses_a_limit_below_one(config_file: Path, limit: str) -> None:
    result = CliRunner().invoke(
        main, ["suppress", "list", "--config", str(config_file), "--limit", limit]
    )

    assert result.exit_code == 2
    assert "--limit" in result.stderr
    assert result.stdout == ""


def test_add_needs_a_list(config_file: Path) -> None:
    result = CliRunner().invoke(
        main, ["suppress", "add", "--config", str(config_file), "a@x.example"]
    )

    assert result.exit_code == 2
    assert "--campaign NAME or --global" in result.output


def test_add_refuses_what_is_not_an_address(config_file: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["suppress", "add", "--campaign", "c", "--config", str(config_file),
         "ok@example.net", "not an address"],
    )  # fmt: skip

    assert result.exit_code == 2
    assert "'not an address' is not an address" in result.output


def test_import_of_a_file_that_is_not_utf8_names_it_and_adds_nothing(
    config_file: Path, tmp_path: Path
) -> None:
    cfg = ("--config", str(config_file))
    run("suppress", "add", *cfg, "--campaign", "spring", "kept@x.example")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a@x.example\nb@x.example\n\xff\xfe\x00a\x00@\x00")

    result = CliRunner().invoke(
        main, ["suppress", "import", *cfg, "--campaign", "spring", str(bad)]
    )

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output == (
        f"Error: {bad}: line 3, byte 25: not UTF-8 text; save the file as UTF-8\n"
    )
    assert run("suppress", "export", *cfg).count("@x.example") == 1


@pytest.mark.parametrize(
    "command",
    [
        ("add", "a@x.example"),
        ("remove", "a@x.example"),
        ("list",),
        ("export",),
        ("import", "LIST"),
    ],
)
def test_the_global_marker_is_no_campaign_name(
    config_file: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("a@x.example\n")
    name, *rest = command
    args = [str(plain) if arg == "LIST" else arg for arg in rest]

    result = CliRunner().invoke(
        main,
        ["suppress", name, "--config", str(config_file), "--campaign", "*", *args],
    )

    assert result.exit_code == 2
    assert "'*' marks the global list, not a campaign; use --global" in result.output


def test_a_comma_in_a_file_without_a_header_is_an_error_naming_the_line(
    config_file: Path, tmp_path: Path
) -> None:
    cfg = ("--config", str(config_file))
    run("suppress", "add", *cfg, "--global", "kept@x.example")
    plain = tmp_path / "plain.csv"
    plain.write_text("# addresses\nimp4@example.net\nimp5@example.net,extra\n")

    result = CliRunner().invoke(
        main, ["suppress", "import", *cfg, "--campaign", "spring", str(plain)]
    )

    assert result.exit_code == 1
    assert "line 3: a comma, but the file has no header line" in result.output
    assert "address,scope,reason,created_at" in result.output
    assert run("suppress", "export", *cfg).count("@") == 1


def test_import_finds_columns_by_the_names_in_the_header(
    config_file: Path, tmp_path: Path
) -> None:
    cfg = ("--config", str(config_file))
    listed = tmp_path / "list.csv"
    listed.write_text(
        "address,reason\n"
        "a@x.example,legal\n"
        "b@x.example,\n"  # an empty reason takes --reason
    )

    run("suppress", "import", *cfg, "--campaign", "spring", str(listed))
    exported = run("suppress", "export", *cfg)

    rows = list(csv.reader(io.StringIO(exported)))
    assert [r[:3] for r in rows[1:]] == [
        ["a@x.example", "spring", "legal"],
        ["b@x.example", "spring", "import"],
    ]


def test_import_refuses_a_scope_that_is_no_campaign_name(
    config_file: Path, tmp_path: Path
) -> None:
    listed = tmp_path / "list.csv"
    listed.write_text("address,scope\na@x.example,spring\nb@x.example,no such\n")

    result = CliRunner().invoke(
        main, ["suppress", "import", "--config", str(config_file), str(listed)]
    )

    assert result.exit_code == 1
    assert "line 3: 'no such' is no campaign name" in result.output
