"""Every dbt relation the Python reads, named here and nowhere else.

The matcher, the panel, ``doctor`` and ``grants`` reach dbt's models only through these
(schema, name) pairs; the ``.sql`` files beside this module refer to them through
placeholders composed with ``psycopg.sql.Identifier``. A model renamed in dbt is a change
to this file.
"""

from __future__ import annotations

Relation = tuple[str, str]

DBT_SCHEMAS = ("kpi_red_staging", "kpi_red_interface", "kpi_red_intermediate", "ops")
"""The schemas dbt builds into (``+schema`` in ``dbt_project.yml``, used as written)."""

MARTS_SCHEMA = "ops"
INTERFACE_SCHEMA = "kpi_red_interface"
"""The matcher's contracted interface to dbt (``models/interface``, contracts enforced):
the only dbt schema besides the marts it reads."""

# the marts: what the panel, BI tools and the matcher's claim read
BACKLOG = (MARTS_SCHEMA, "v_cabinet_kpi_red_backlog")
METRICS = (MARTS_SCHEMA, "v_cabinet_kpi_red_recovery_metrics_daily")
SETTINGS = (MARTS_SCHEMA, "kpi_red_settings")
QUEUE = (MARTS_SCHEMA, "cabinet_kpi_red_recovery_queue")
CAUSES = (MARTS_SCHEMA, "v_cabinet_kpi_red_backlog_causes")
"""The backlog now by cause, with what fixes each (the panel's "what to do")."""
ORIGIN_MISSING = (MARTS_SCHEMA, "v_identity_origin_missing")

# the interface models: the leads a run takes, and the registry it probes for candidates
DUE = (INTERFACE_SCHEMA, "backlog_due")
"""The backlog view's eligible leads now, found without evaluating every lead."""
PERSON_KEYS = (INTERFACE_SCHEMA, "person_keys")
PERSON_KEYS_CHANGED = (INTERFACE_SCHEMA, "person_keys_changed")
JUNK = (INTERFACE_SCHEMA, "junk_keys")
KEY_SHAPES = (INTERFACE_SCHEMA, "person_key_shapes")
"""The shapes the registry's documents and phones come in (the one-edit lookup's)."""
BUILT_MARKER = PERSON_KEYS
"""A table of the project: it exists from the first ``dbt build`` on, and a build never
drops it (it is replaced in place)."""

RUN_NEEDS: tuple[Relation, ...] = (
    DUE,
    PERSON_KEYS,
    PERSON_KEYS_CHANGED,
    JUNK,
    KEY_SHAPES,
    SETTINGS,
)
"""What must exist before a run (``kpi-red cycle`` checks them after its build)."""
MATCHER_READS: tuple[Relation, ...] = (
    DUE,
    BACKLOG,
    SETTINGS,
    PERSON_KEYS,
    PERSON_KEYS_CHANGED,
    JUNK,
    KEY_SHAPES,
)
"""What the matcher role must be able to read (``doctor``)."""
REVIEWER_READS: tuple[Relation, ...] = (*MATCHER_READS, QUEUE)
"""What the reviewer role (``kpi-red review``, ``unlink``, ``explain``) must be able to read."""
READER_READS: tuple[Relation, ...] = (METRICS, BACKLOG, SETTINGS)
"""What the reader role (the panel, BI tools) must be able to read (``doctor``)."""
MATCHER_SCHEMAS = (MARTS_SCHEMA, INTERFACE_SCHEMA)
"""The dbt schemas the matcher reads from (``grants``, ``doctor``)."""


def name(relation: Relation) -> str:
    """``schema.name``, as shown to people."""
    return ".".join(relation)
