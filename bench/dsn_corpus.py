"""Measure the bounce parser against the shared bounce corpus.

Run with ``.venv/bin/python bench/dsn_corpus.py [--misses]``. Prints
failed-recipient recall and precision, status, hard and category
agreement, the number of exceptions, and messages per second on one core
(start-up and file reading excluded). Scoring follows the corpus README.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from postroom.dsn.classify import Category
from postroom.dsn.parse import _parse, parse
from postroom.dsn.report import Action

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "bounce-corpus"
NOT_FAILURES = {"delivered", "feedback", "vacation"}

# The corpus's reason names in postroom's categories, fixed before measuring.
REASON_TO_CATEGORY: dict[str, Category] = {
    "userunknown": Category.UNKNOWN_USER,
    "hostunknown": Category.UNKNOWN_DOMAIN,
    "notaccept": Category.UNKNOWN_DOMAIN,
    "hasmoved": Category.MAILBOX_GONE,
    "suspend": Category.MAILBOX_DISABLED,
    "mailboxfull": Category.MAILBOX_FULL,
    "exceedlimit": Category.MESSAGE_TOO_LARGE,
    "mesgtoobig": Category.MESSAGE_TOO_LARGE,
    "systemfull": Category.SYSTEM,
    "systemerror": Category.SYSTEM,
    "mailererror": Category.SYSTEM,
    "blocked": Category.BLOCKED,
    "requireptr": Category.BLOCKED,
    "badreputation": Category.BLOCKED,
    "authfailure": Category.POLICY,
    "policyviolation": Category.POLICY,
    "securityerror": Category.POLICY,
    "failedstarttls": Category.POLICY,
    "filtered": Category.POLICY,
    "spamdetected": Category.SPAM,
    "virusdetected": Category.SPAM,
    "contenterror": Category.CONTENT,
    "notcompliantrfc": Category.CONTENT,
    "rejected": Category.SENDER_REJECTED,
    "norelaying": Category.RELAY_DENIED,
    "speeding": Category.RATE_LIMITED,
    "toomanyconn": Category.RATE_LIMITED,
    "networkerror": Category.NETWORK,
    "expired": Category.EXPIRED,
    "syntaxerror": Category.OTHER,
    "suppressed": Category.OTHER,
    "onhold": Category.OTHER,
    "undefined": Category.OTHER,
}


def main() -> None:
    show_misses = "--misses" in sys.argv
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    blobs = [(entry, (CORPUS / entry["file"]).read_bytes()) for entry in manifest]

    tally = dict.fromkeys(
        (
            "expected",
            "found",
            "reported",
            "true",
            "status_n",
            "status_ok",
            "hard_ok",
            "cat_ok",
            "errors",
        ),
        0,
    )
    for entry, raw in blobs:
        try:
            report = _parse(raw)
        except Exception as exc:
            tally["errors"] += 1
            print(f"ERROR {entry['file']}: {exc!r}")
            report = parse(raw)
        _score(entry, report, tally, show_misses)

    rounds, started = 3, time.process_time()
    for _ in range(rounds):
        for _entry, raw in blobs:
            parse(raw)
    rate = rounds * len(blobs) / (time.process_time() - started)

    matched = tally["found"]
    print(f"messages           {len(blobs)}")
    print(f"recall             {_pct(tally['found'], tally['expected'])}")
    print(f"precision          {_pct(tally['true'], tally['reported'])}")
    print(f"status agreement   {_pct(tally['status_ok'], tally['status_n'])}")
    print(f"hard agreement     {_pct(tally['hard_ok'], matched)}")
    print(f"category agreement {_pct(tally['cat_ok'], matched)}")
    print(f"exceptions         {tally['errors']}")
    print(f"messages/second    {rate:,.0f}")


def _score(entry: dict, report: object, tally: dict[str, int], show: bool) -> None:
    records = {
        r.recipient.lower(): r
        for r in report.records  # type: ignore[attr-defined]
        if r.action in (Action.FAILED, Action.DELAYED)
    }
    known: set[str] = set()
    for row in entry["expected"]:
        known.add(row["recipient"].lower())
        if row.get("recipient_alternative"):
            known.add(row["recipient_alternative"].lower())
        skip = row.get("recipient_uncertain") or row.get(
            "recipient_is_sisimai_placeholder"
        )
        if skip or row["reason"] in NOT_FAILURES:
            continue
        tally["expected"] += 1
        record = records.get(row["recipient"].lower())
        if record is None:
            if show:
                print(f"MISS {entry['file']} {row['recipient']} ({row['reason']})")
            continue
        tally["found"] += 1
        if row["status"] and not row["status_is_sisimai_pseudo"]:
            tally["status_n"] += 1
            tally["status_ok"] += record.status == row["status"]
            if show and record.status != row["status"]:
                print(f"STATUS {entry['file']} {record.status} != {row['status']}")
        tally["hard_ok"] += record.hard == row["hard"]
        want = REASON_TO_CATEGORY.get(row["reason"], Category.OTHER)
        tally["cat_ok"] += record.category == want
        if show and record.hard != row["hard"]:
            print(f"HARD {entry['file']} {record.category} vs {row['reason']}")
        elif show and record.category != want:
            print(f"CAT {entry['file']} {record.category} vs {row['reason']}")
    for address in records:
        tally["reported"] += 1
        tally["true"] += address in known
        if show and address not in known:
            print(f"EXTRA {entry['file']} {address}")


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:6.2f}%  ({part}/{whole})" if whole else "  n/a"


if __name__ == "__main__":
    main()
