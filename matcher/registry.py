"""The registry a run decides on: dbt's stored keys, with the persons changed since the
last build read as they are now.

``person_keys`` holds every person's keys as the last ``dbt build`` normalized them.
A person changed since then (``person_keys_changed``, a live dbt view: the same
macros) must not be matched on its old keys, nor missed on its new ones: its stored rows
are dropped and its live keys used instead, for the exact lookup and the one-edit one
alike. Pure: the rows come from ``matcher.store.stream``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class Holder(NamedTuple):
    """A registry person holding a key value, and the hash of its raw identifiers when
    that value was read (what the write checks the live registry row against)."""

    key_type: str
    key_value: str
    person_key: str
    full_name: str | None
    identifiers_hash: str


@dataclass(frozen=True)
class LiveRegistry:
    """The persons changed since the last build and their usable keys now."""

    changed: frozenset[str] = frozenset()
    """Every person changed since the build: their stored keys are stale."""
    holders: Mapping[tuple[str, str], tuple[Holder, ...]] = field(default_factory=dict)
    """``(key_type, key_value)`` -> the changed persons holding it now (no junk)."""

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[str, str, str | None, str | None, str]],
        *,
        junk: Collection[tuple[str, str]],
    ) -> LiveRegistry:
        """From ``(person_key, key_type, key_value, full_name, identifiers_hash)`` rows
        (``store.stream.load_changed_persons``). Junk values are not usable keys."""
        changed: set[str] = set()
        holders: dict[tuple[str, str], list[Holder]] = {}
        for person_key, key_type, key_value, full_name, identifiers_hash in rows:
            changed.add(person_key)
            if key_value is None or (key_type, key_value) in junk:
                continue
            held = holders.setdefault((key_type, key_value), [])
            held.append(Holder(key_type, key_value, person_key, full_name, identifiers_hash))
        return cls(frozenset(changed), {key: tuple(found) for key, found in holders.items()})

    def __bool__(self) -> bool:
        return bool(self.changed)

    def holding(self, stored: Iterable[Holder], values: Iterable[tuple[str, str]]) -> list[Holder]:
        """The holders of ``values`` now: the stored ones of unchanged persons, then the
        changed persons holding one of ``values``."""
        if not self.changed:
            return list(stored)
        current = [holder for holder in stored if holder.person_key not in self.changed]
        for value in dict.fromkeys(values):
            current.extend(self.holders.get(value, ()))
        return current

    def near_rows(
        self, probes: Mapping[str, Collection[str]]
    ) -> list[tuple[str, str, str, str | None, str]]:
        """The changed persons one edit from a batch's values, as
        ``store.stream.fetch_near_candidates`` finds the stored ones: ``(key_type,
        key_value, person_key, full_name, identifiers_hash)`` of the holders of
        ``probes`` (key type -> the values one edit from the batch's)."""
        return [
            (key_type, *self._row(holder))
            for (key_type, value), holders in self.holders.items()
            if value in probes.get(key_type, ())
            for holder in holders
        ]

    @staticmethod
    def _row(holder: Holder) -> tuple[str, str, str | None, str]:
        return holder.key_value, holder.person_key, holder.full_name, holder.identifiers_hash
