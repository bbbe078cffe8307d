"""Detectors for bounces that are not RFC 3464 DSNs, one per dialect.

Each module holds one `Dialect`: a cheap ``detect`` and a ``read``. They
are tried in the order of `REGISTRY`; the first that reads at least one
recipient wins. ``generic`` comes last and reads any bounce-looking prose.
"""

from __future__ import annotations

from postroom.dsn.dialects import (
    apachejames,
    au,
    dma,
    domino,
    exchange2003,
    exim,
    fml,
    generic,
    gmail,
    googlegroups,
    notes,
    qmail,
    sendmail,
    sesnotify,
    verizon,
    yahoo,
)
from postroom.dsn.dialects.base import Dialect, Finding

REGISTRY: tuple[Dialect, ...] = (
    googlegroups.DIALECT,
    sesnotify.DIALECT,
    au.DIALECT,
    fml.DIALECT,
    apachejames.DIALECT,
    verizon.DIALECT,
    exim.DIALECT,
    yahoo.DIALECT,
    qmail.DIALECT,
    gmail.DIALECT,
    exchange2003.DIALECT,
    domino.DIALECT,
    notes.DIALECT,
    sendmail.DIALECT,
    dma.DIALECT,
    generic.DIALECT,
)

__all__ = ["REGISTRY", "Dialect", "Finding"]
