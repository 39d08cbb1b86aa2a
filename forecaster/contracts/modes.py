"""``Mode``: what a policy may do, the one spelling of it (DESIGN.md "What the product does", 3).

    Off         nothing: the HPA's own floor is restored and kept; no VPA recommendation is written
    Recommend   dry run: compute, record and explain every decision, change nothing in the cluster
    Auto        act: write the HPA floor (or serve it to KEDA) and the VPA recommendation

A ``StrEnum``: a member equals its text (``Mode.AUTO == "Auto"``), so the CRD, the store and the API keep plain
strings and code compares against ``Mode`` members instead of bare literals. ``MODES`` lists them in that order (the
CRD's enum). Pure: standard library.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    OFF = "Off"
    RECOMMEND = "Recommend"
    AUTO = "Auto"


MODES: tuple[str, ...] = tuple(m.value for m in Mode)
