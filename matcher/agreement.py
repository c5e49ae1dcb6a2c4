"""Does ``kpi-red`` use the configuration the last ``dbt build`` used?

dbt writes the vars it resolved into ``ops.kpi_red_settings``. Before it writes anything
the matcher compares what it would use with them: the tables it reads and writes, the
``source_table`` and ``linked_by`` of its links, the normalization of its near matches. A
difference (a matcher run from another project, with other ``--vars``, or before the
build that changed them) is an error naming each setting, never a silent success: its
attempts would land in a log dbt does not read, its links would count as someone else's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matcher.normalize import NormalizationRules
from matcher.settings import ConfigError, Settings, Tables, tables_from_vars

TABLES = {
    "leads": "the leads",
    "links": "the links",
    "origin": "the origin rows",
    "attempts": "the attempts log",
    "reviews": "the review decisions",
    "removals": "the link removals",
}


def differences(settings: Settings, built: Mapping[str, Any]) -> list[str]:
    """What ``settings`` uses that differs from ``built`` (the vars dbt used), one line
    each; empty when they agree."""
    ours, theirs = settings.tables, _built_tables(built)
    found = [
        f"{label}: dbt reads {_name(getattr(theirs, field))}, kpi-red would use"
        f" {_name(getattr(ours, field))}"
        for field, label in TABLES.items()
        if getattr(ours, field) != getattr(theirs, field)
    ]
    for field, var in (
        ("lead_source_table", "lead_source_table"),
        ("linked_by", "matcher_linked_by"),
        ("review_linked_by", "review_linked_by"),
    ):
        if getattr(ours, field) != getattr(theirs, field):
            found.append(
                f"{var}: dbt uses {getattr(theirs, field)!r}, kpi-red {getattr(ours, field)!r}"
            )
    our_rules = NormalizationRules.from_vars(settings.vars)
    their_rules = NormalizationRules.from_vars(
        {key: value for key, value in built.items() if value is not None}
    )
    for field, var in (
        ("country_code", "phone_country_code"),
        ("national_lengths", "phone_national_lengths"),
        ("default_document_type", "default_document_type"),
    ):
        if getattr(our_rules, field) != getattr(their_rules, field):
            found.append(
                f"{var}: dbt uses {getattr(their_rules, field)!r},"
                f" kpi-red {getattr(our_rules, field)!r}"
            )
    return found


def check(settings: Settings, built: Mapping[str, Any] | None) -> None:
    """Raise ``ConfigError`` when ``settings`` differs from what dbt built with (nothing
    to compare before the first build: the matcher then finds no backlog view anyway)."""
    if built is None:
        return
    found = differences(settings, built)
    if found:
        where = (
            f"the dbt project at {settings.project_dir}"
            if settings.project_found
            else "no dbt project (none found from the working directory)"
        )
        raise ConfigError(
            "kpi-red's configuration is not the one the last dbt build used"
            f" (ops.kpi_red_settings): {'; '.join(found)}. kpi-red read {where}: run it"
            " from the project dbt runs (or --project-dir), with the same --vars"
        )


def _built_tables(built: Mapping[str, Any]) -> Tables:
    try:
        return tables_from_vars({key: value for key, value in built.items() if value is not None})
    except ConfigError:
        return Tables()


def _name(pair: tuple[str, str]) -> str:
    return ".".join(
        f'"{part}"' if not part.isidentifier() or part != part.lower() else part for part in pair
    )
