"""A registry change retries the failed leads it can cure, and only those.

A failed lead whose reason a registry change may undo (``no_match``, ``conflict``,
``name_mismatch``, ...) is due again when a person changed after its attempt holds, or
held until the change, one of its keys or a document or phone one edit from one
(``int_lead_registry_touches``). The expected set is recomputed here in plain Python from
the registry's keys before and after the changes, with an edit distance written for the
test; the SQL spells the one-edit values out instead. Every value the matcher's one-edit
pass looks up (``matcher.edits``) must be among the SQL's neighbours of the person's key.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable

from conftest import Database, PartialIndex
from test_normalize import compile_inline

from matcher.edits import insertion_values, one_edit_values
from matcher.run import MatchOptions, run_match

CURABLE = ("no_match", "conflict", "low_confidence", "ambiguous", "name_mismatch", "person_changed")
NEAR_TYPES = ("document", "phone")


def one_edit_apart(key_type: str, lead: str, person: str) -> bool:
    """Whether the matcher's lookups can find ``person``'s key for ``lead``'s: equal, or
    (documents, Peruvian phones) the same TYPE or country code and numbers at optimal
    string alignment distance 1, a substituted character of the same kind (digit, letter)."""
    if lead == person:
        return True
    if key_type == "document":
        (lead_kind, _, a), (person_kind, _, b) = lead.partition(":"), person.partition(":")
        if lead_kind != person_kind:
            return False
    elif key_type == "phone":
        if not (lead.startswith("51") and person.startswith("51")):
            return False
        a, b = lead[2:], person[2:]
    else:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            x, y = a[diffs[0]], b[diffs[0]]
            return x.isdigit() == y.isdigit()
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and (a[diffs[1]] == b[diffs[0]])
        )
    shorter, longer = sorted((a, b), key=len)
    return len(longer) - len(shorter) == 1 and any(
        longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer))
    )


def registry_keys(database: Database) -> dict[str, tuple[str | None, frozenset[tuple[str, str]]]]:
    """Each person's name and ``(key type, value)`` keys as ``person_keys`` holds them."""
    persons: dict[str, tuple[str | None, set[tuple[str, str]]]] = {}
    for person, key_type, value, name in database.query(
        "select person_key, key_type, key_value, full_name from kpi_red_interface.person_keys"
    ):
        persons.setdefault(person, (name, set()))[1].update(
            [(key_type, value)] if value is not None else []
        )
    return {person: (name, frozenset(keys)) for person, (name, keys) in persons.items()}


def failed_curable(database: Database) -> dict[str, list[tuple[str, str]]]:
    """The failed leads a registry change may cure, with their keys (junk included)."""
    return lead_keys(
        database,
        "select queue.lead_source_pk, keys.phone_key, keys.document_key, keys.email_key"
        " from ops.cabinet_kpi_red_recovery_queue as queue"
        " join kpi_red_intermediate.int_lead_identifiers__stored as keys"
        "   on keys.lead_id = queue.lead_source_pk"
        " where queue.status = 'failed' and queue.fail_reason = any(%s)",
        (list(CURABLE),),
    )


def lead_keys(
    database: Database,
    statement: str = "select lead_id, phone_key, document_key, email_key"
    " from kpi_red_intermediate.int_lead_identifiers__stored",
    params: object = None,
) -> dict[str, list[tuple[str, str]]]:
    """Each lead's ``(key type, value)`` keys, from ``statement``'s rows."""
    rows = database.query(statement, params)
    return {
        lead: [
            (key_type, value)
            for key_type, value in zip(("phone", "document", "email"), values, strict=True)
            if value is not None
        ]
        for lead, *values in rows
    }


def touched(
    leads: dict[str, list[tuple[str, str]]],
    person_keys: Iterable[tuple[str, str]],
    blocklist: Collection[tuple[str, str]],
) -> set[str]:
    """The leads with a key equal or one edit from one of ``person_keys`` (a blocklisted
    value is nobody's key)."""
    by_type: dict[str, set[str]] = {}
    for key_type, value in person_keys:
        if (key_type, value) not in blocklist:
            by_type.setdefault(key_type, set()).add(value)
    return {
        lead
        for lead, keys in leads.items()
        if any(
            one_edit_apart(key_type, value, held)
            for key_type, value in keys
            for held in by_type.get(key_type, ())
        )
    }


def eligible(database: Database, leads: Iterable[str]) -> set[str]:
    due = {
        row[0]
        for row in database.query(
            "select lead_source_pk from ops.v_cabinet_kpi_red_backlog where is_eligible"
        )
    }
    from_due = {
        row[0] for row in database.query("select lead_source_pk from kpi_red_interface.backlog_due")
    }
    assert from_due == due, "backlog_due is not the view's eligible set"
    return due & set(leads)


def test_a_registry_change_retries_only_the_failed_leads_it_touches(copy: Database) -> None:
    leads = failed_curable(copy)
    assert eligible(copy, leads) == set(), "failed leads are on their back-off after a cycle"
    before = registry_keys(copy)
    rng = random.Random(17)
    by_reason = dict(
        copy.query(
            "select fail_reason, array_agg(lead_source_pk order by lead_source_pk)"
            " from ops.cabinet_kpi_red_recovery_queue where status = 'failed' group by 1"
        )
    )
    no_match = by_reason["no_match"]
    with_document = [lead for lead in no_match if any(k == "document" for k, _ in leads[lead])]
    with_email = [lead for lead in no_match if any(k == "email" for k, _ in leads[lead])]
    new_email_lead, near_lead = rng.choice(with_email), rng.choice(with_document)
    email = dict(leads[new_email_lead])["email"]
    document = dict(leads[near_lead])["document"]
    kind, _, number = document.partition(":")
    near_number = number[:-1] + str((int(number[-1]) + 1) % 10)
    # one holder of a conflicting key changes that key: the conflict may be over
    conflict_lead = by_reason["conflict"][0]
    holder, dropped = copy.query(
        "select person_key, key_type from kpi_red_interface.person_keys"
        " where (key_type, key_value) in (select * from (values ('phone', %s), ('document', %s),"
        " ('email', %s)) as keys (key_type, key_value)) order by person_key limit 1",
        tuple(dict(leads[conflict_lead]).get(key) for key in ("phone", "document", "email")),
    )[0]
    # the registry deletes a holder of another conflict lead's key (a duplicate merged)
    deleted_lead = next(
        lead
        for lead in by_reason["conflict"][1:]
        if not set(leads[lead]) & set(leads[conflict_lead])
    )
    deleted = copy.query(
        "select person_key from kpi_red_interface.person_keys"
        " where (key_type, key_value) in (select * from (values ('phone', %s), ('document', %s),"
        " ('email', %s)) as keys (key_type, key_value)) and person_key <> %s"
        " order by person_key limit 1",
        (*(dict(leads[deleted_lead]).get(key) for key in ("phone", "document", "email")), holder),
    )[0][0]
    # the holder of a name_mismatch lead's key corrects the name
    mismatch_lead = by_reason["name_mismatch"][0]
    renamed = copy.query(
        "select person_key from kpi_red_interface.person_keys"
        " where (key_type, key_value) in (select * from (values ('phone', %s), ('document', %s),"
        " ('email', %s)) as keys (key_type, key_value)) order by person_key limit 1",
        tuple(dict(leads[mismatch_lead]).get(key) for key in ("phone", "document", "email")),
    )[0][0]
    untouched_person = copy.scalar(
        "select person_key from canon.identity_registry order by person_key desc limit 1"
    )
    # one of the persons holding a blocklisted email corrects the name: no lead's key
    blocklist = {
        (key_type, value)
        for key_type in ("phone", "document", "email")
        for value in copy.settings.vars[f"junk_{key_type}s"]
    }
    junk_holder, junk_email = copy.query(
        "select person_key, key_value from kpi_red_interface.person_keys"
        " where key_type = 'email' and key_value = any(%s) order by person_key limit 1",
        ([value for key_type, value in blocklist if key_type == "email"],),
    )[0]
    all_leads = lead_keys(copy)
    assert any(("email", junk_email) in keys for keys in all_leads.values())
    params = {
        "email": email,
        "kind": kind,
        "near": near_number,
        "holder": holder,
        "dropped": dropped,
        "renamed": renamed,
        "untouched": untouched_person,
        "junk_holder": junk_holder,
        "deleted": deleted,
    }
    for statement in (
        "insert into canon.identity_registry"
        " (person_key, full_name, phone, document_type, document_number, email,"
        "  created_at, updated_at)"
        " values"
        " ('P-NEW-EMAIL', 'Someone Else', null, null, null, %(email)s, now(), now()),"
        " ('P-NEW-NEAR', 'Another Person', null, %(kind)s, %(near)s, null, now(), now()),"
        " ('P-NEW-NOBODY', 'Nobody Known', '+51 987 000 111', 'CE', 'ZZ0000001',"
        "  'nobody.known@example.org', now(), now())",
        "update canon.identity_registry set"
        " phone = case when %(dropped)s = 'phone' then null else phone end,"
        " document_number = case when %(dropped)s = 'document' then null"
        "  else document_number end,"
        " email = case when %(dropped)s = 'email' then null else email end,"
        " updated_at = now() where person_key = %(holder)s",
        "update canon.identity_registry set full_name = full_name || ' Corrected',"
        " updated_at = now() where person_key in (%(renamed)s, %(junk_holder)s)",
        "update canon.identity_registry set updated_at = now() where person_key = %(untouched)s",
        "delete from canon.identity_registry where person_key = %(deleted)s",
    ):
        copy.execute(statement, params)
    loaded_before = copy.scalar("select max(loaded_at) from kpi_red_interface.person_keys")
    assert copy.dbt("build").succeeded
    after = registry_keys(copy)
    nobody: tuple[str | None, frozenset[tuple[str, str]]] = (None, frozenset())
    changed_keys = [
        key
        for person in set(before) | set(after)
        if before.get(person) != after.get(person)
        for key in before.get(person, nobody)[1] | after.get(person, nobody)[1]
    ]
    # every lead (linked ones too) the model says this build touched, and only those
    expected_all = touched(all_leads, changed_keys, blocklist)
    assert (
        set(
            row[0]
            for row in copy.query(
                "select lead_source_pk from kpi_red_intermediate.int_lead_registry_touches"
                " where lead_source_pk <> '*' and touched_at > %s",
                (loaded_before,),
            )
        )
        == expected_all
    )
    # the junk holder's email would have touched the leads typing it, were it a key
    spared = touched(all_leads, changed_keys, set()) - expected_all
    assert spared and all(("email", junk_email) in all_leads[lead] for lead in spared)
    expected = touched(leads, changed_keys, blocklist)
    assert {new_email_lead, near_lead, conflict_lead, deleted_lead, mismatch_lead} <= expected
    # the deleted person's rows stay until the next build, keys moved aside: no lookup
    # finds them
    assert copy.query(
        "select key_value, identifiers_hash, previous_key_value is not null"
        " from kpi_red_interface.person_keys where person_key = %s and key_type = 'phone'",
        (deleted,),
    ) == [(None, None, True)]
    assert len(expected) < len(leads) / 4, "the changes touch a few of the failed leads"
    assert eligible(copy, leads) == expected
    print(f"\n{len(expected)} of {len(leads)} failed leads touched by the changes, and due")
    # the match attempts exactly those, once; nothing is due after it
    summary = run_match(copy.conninfo, settings=copy.settings, options=MatchOptions(limit=None))
    assert summary.claimed == len(expected)
    assert copy.dbt("build").succeeded
    assert eligible(copy, leads) == set()
    # a rebuild from scratch does not know what was touched: every curable failure before
    # it is due again once (as if every person had changed), then back on its back-off
    assert copy.dbt("build", "--full-refresh", "--select", "int_lead_registry_touches+").succeeded
    failed_now = failed_curable(copy)
    assert eligible(copy, failed_now) == set(failed_now) - expected


def test_more_changed_persons_than_the_limit_retry_every_curable_failure(copy: Database) -> None:
    leads = failed_curable(copy)
    copy.execute(
        "update canon.identity_registry set full_name = full_name || ' X', updated_at = now()"
        " where person_key in (select person_key from canon.identity_registry"
        " order by person_key limit 3)"
    )
    assert copy.dbt("build", dbt_vars={"registry_touch_max_persons": 2}).succeeded
    assert eligible(copy, leads) == set(leads)


def tombstone_indexes(database: Database) -> list[PartialIndex]:
    """The partial indexes that find ``person_keys``' tombstones."""
    return database.partial_indexes("kpi_red_interface.person_keys", "(identifiers_hash IS NULL)")


def test_a_full_refresh_of_person_keys_keeps_the_index_that_finds_its_tombstones(
    copy: Database,
) -> None:
    # the table a --full-refresh replaces holds its index until after the commit: an index
    # of a fixed name was skipped then (`if not exists`), so the new table had none
    assert len(tombstone_indexes(copy)) == 1
    for _ in range(2):
        assert copy.dbt("run", "--full-refresh", "--select", "person_keys").succeeded
        ((_name, definition),) = tombstone_indexes(copy)
        assert "(loaded_at) WHERE (identifiers_hash IS NULL)" in definition
    assert copy.dbt("run", "--select", "person_keys").succeeded
    assert len(tombstone_indexes(copy)) == 1


def test_the_sql_neighbours_hold_every_value_the_one_edit_pass_looks_up(
    copy: Database,
) -> None:
    """For leads' keys of every shape, each value the pass spells out (``matcher.edits``,
    no shapes) is a person's key whose SQL neighbours hold the lead's key."""
    rng = random.Random(5)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    keys = [("document", f"DNI:{rng.randrange(10**7, 10**8)}") for _ in range(8)]
    keys += [("document", "CE:" + "".join(rng.choices(alphabet, k=9))) for _ in range(6)]
    keys += [("phone", f"519{rng.randrange(10**7, 10**8)}") for _ in range(8)]
    keys += [("phone", f"51{rng.randrange(10**7, 10**8)}") for _ in range(4)]
    pairs = {
        (key_type, lead, person)
        for key_type, lead in keys
        for function in (one_edit_values, insertion_values)
        for person in function(key_type, lead, country_code="51")
    }
    sql = compile_inline(
        copy,
        "select persons.key_type, persons.key_value, near.key_value"
        " from (select unnest(%(types)s::text[]) as key_type,"
        "   unnest(%(values)s::text[]) as key_value) as persons"
        " cross join lateral ({{ one_edit_neighbours('persons.key_type', 'persons.key_value') }})"
        " as near",
    )
    persons = sorted({(key_type, person) for key_type, _, person in pairs})
    found = set(
        copy.query(
            sql,
            {"types": [p[0] for p in persons], "values": [p[1] for p in persons]},
        )
    )
    missing = {(key_type, person, lead) for key_type, lead, person in pairs} - found
    assert not missing, sorted(missing)[:5]
    assert all(one_edit_apart(key_type, near, person) for key_type, person, near in found)
