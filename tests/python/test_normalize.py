"""Normalization: one definition, two implementations (Python and the dbt macros).

- examples of every rule, and the macros' own singular dbt tests (``tests/macros``);
- ``phonenumbers`` as the oracle: valid Peruvian numbers in every format give its E.164,
  numbers it calls impossible for Peru give None, other countries' numbers are kept;
- hypothesis properties: any text (NUL, control characters, 10 kB, numbers as text) never
  raises and gives None or the documented shape; outputs are fixed points;
- agreement: the compiled macros run in PostgreSQL on the nasty-formats corpus plus
  hypothesis-generated text give exactly what Python gives.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import phonenumbers
import pytest
from conftest import PROJECT_DIR, Database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.normalize import (
    NormalizationRules,
    identifiers_hash,
    normalize_document,
    normalize_email,
    normalize_name,
    normalize_phone,
)
from matcher.settings import load_settings

FIXTURES = Path(__file__).parent / "fixtures"
PHONE_SHAPE = re.compile(r"[0-9]{8,15}")
DOCUMENT_SHAPE = re.compile(r"[A-Z0-9]+:[A-Z0-9]{1,20}")
EMAIL_SHAPE = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}")
NAME_SHAPE = re.compile(r"\S+( \S+)*")
HASH_SHAPE = re.compile(r"[0-9a-f]{32}")

PROPERTY_SETTINGS = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _unescape(line: str) -> str:
    if line == "<empty>":
        return ""
    escapes = {"t": "\t", "r": "\r", "n": "\n", "0": "\0", "\\": "\\"}
    return re.sub(
        r"\\(U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|[trn0\\])",
        lambda m: escapes.get(m[1]) or chr(int(m[1][1:], 16)),
        line,
    )


def nasty_corpus() -> list[str]:
    lines = (FIXTURES / "nasty_identifiers.txt").read_text(encoding="utf-8").split("\n")
    return [_unescape(line) for line in lines if line and not line.startswith("#")]


# --- strategies ----------------------------------------------------------------------

any_text = st.text(max_size=120)  # every code point but surrogates, NUL included
phoneish = st.text(alphabet="0123456789+-(). \t/x#*\u00a0\uff19\u0669", max_size=30)
numbers_as_text = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=0, max_value=10**15).map(lambda n: f"{n:,}"),
    st.integers(min_value=0, max_value=10**12).map(lambda n: f"{n:e}"),
)
long_text = st.builds(
    lambda chunk, times: (chunk * times)[:10_240],
    st.text(min_size=1, max_size=16),
    st.integers(min_value=700, max_value=10_240),
)
mobile_national = st.from_regex(r"9[0-9]{8}", fullmatch=True).filter(lambda n: len(set(n)) > 1)
separators = st.text(alphabet=" -./()\t", max_size=3)


@st.composite
def formatted_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """(a mobile written with random separators and prefix, its E.164 digits)."""
    national = draw(mobile_national)
    prefix = draw(st.sampled_from(["", "+51", "0051", "51", "0", "+51 (0)", "tel:+51"]))
    pieces = [prefix] if prefix else []
    for digit in national:
        pieces.append(draw(separators) + digit)
    text = "".join(pieces)
    return (draw(st.sampled_from(["", " ", "\t", "\r\n"])) + text, "51" + national)


nasty_text = st.one_of(
    any_text,
    phoneish,
    numbers_as_text,
    st.emails().map(lambda e: e.upper() if len(e) % 2 else e),
    st.sampled_from(nasty_corpus()),
    st.builds(str.__add__, st.sampled_from(nasty_corpus()), any_text),
    formatted_mobiles().map(lambda pair: pair[0]),
)


# --- examples -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+51 987 654 321", "51987654321"),
        ("987654321", "51987654321"),
        ("0051987654321", "51987654321"),
        ("51-987-654-321", "51987654321"),
        ("(01) 234-5678", "5112345678"),
        ("+51 (0)1 234 5678", "5112345678"),
        ("(044) 123-456", "5144123456"),
        ("+1 (212) 555-0123", "12125550123"),
        ("999999999", None),
        ("00000000", None),
        ("1234567", None),
        ("+0051987654321", None),
        ("n/a", None),
        ("", None),
        ("\uff19\uff18\uff17\uff16\uff15\uff14\uff13\uff12\uff11", None),
        ("9" * 65, None),
        (None, None),
    ],
)
def test_normalize_phone_examples(raw: str | None, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_normalize_phone_other_country() -> None:
    nanp = {"country_code": "1", "national_lengths": (10,)}
    assert normalize_phone("(212) 555-0123", **nanp) == "12125550123"
    assert normalize_phone("+51 987 654 321", **nanp) == "51987654321"
    assert normalize_phone("987654321", **nanp) is None


@pytest.mark.parametrize(
    ("doc_type", "number", "expected"),
    [
        ("DNI", "45678912", "DNI:45678912"),
        ("dni", "4567-8912", "DNI:45678912"),
        (None, "00045678912", "DNI:45678912"),
        ("C.E.", "x12345", "CE:X12345"),
        ("DNI", "ß12345", "DNI:12345"),
        ("DNI", "\u0131" + "12345", "DNI:12345"),  # dotless i
        ("DNI", "11111111", None),
        ("DNI", "X", None),
        ("DNI", "123456789012345678901", None),
        ("X" * 65, "45678912", None),
        ("DNI", None, None),
    ],
)
def test_normalize_document_examples(
    doc_type: str | None, number: str | None, expected: str | None
) -> None:
    assert normalize_document(doc_type, number) == expected


def test_normalize_document_default_type() -> None:
    assert normalize_document("", "123", default_type="c.e.") == "CE:123"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Foo.Bar@Example.COM", "foo.bar@example.com"),
        (" a.b@c.de\r\n", "a.b@c.de"),
        ("user+tag@sub.domain.pe", "user+tag@sub.domain.pe"),
        ("\u00a0a@b.com", None),
        ("josé@example.com", None),
        ("a@b", None),
        ("a@b.com.", None),
        ("x@" + "a" * 250 + ".com", None),
        (None, None),
    ],
)
def test_normalize_email_examples(raw: str | None, expected: str | None) -> None:
    assert normalize_email(raw) == expected


def test_identifiers_hash_matches_the_documented_formula() -> None:
    assert (
        identifiers_hash(
            full_name="Ana",
            phone="987654321",
            document_type=None,
            document_number="45678912",
            email=None,
        )
        == "95a8675a2e1cf391ef8d382d0827e290"
    )
    assert identifiers_hash(
        full_name=None, phone=None, document_type=None, document_number=None, email=None
    ) == identifiers_hash(full_name="", phone="", document_type="", document_number="", email="")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  José-María O'Neil ", "jose maria oneil"),
        ("ŞİMŞEK", "simsek"),
        ("Straße", "strasse"),
        ("\uff21\uff2e\uff21", "ana"),  # full-width
        ("123 --", None),
        (None, None),
    ],
)
def test_normalize_name_examples(raw: str | None, expected: str | None) -> None:
    assert normalize_name(raw) == expected


def test_rules_come_from_the_dbt_vars() -> None:
    rules = NormalizationRules.from_vars(load_settings(PROJECT_DIR).vars)
    assert rules.country_code == "51"
    assert rules.national_lengths == (8, 9)
    assert rules.default_document_type == "DNI"
    assert "51999999999" in rules.junk_phones
    assert "DNI:12345678" in rules.junk_documents
    assert "test@test.com" in rules.junk_emails
    assert rules.phone("987654321") == "51987654321"
    assert rules.document(None, "45678912") == "DNI:45678912"
    custom = NormalizationRules.from_vars({"phone_country_code": 1, "phone_national_lengths": "10"})
    assert (custom.country_code, custom.national_lengths) == ("1", (10,))
    with pytest.raises(ValueError, match="phone_country_code"):
        NormalizationRules.from_vars({"phone_country_code": "+51"})


# --- phonenumbers as the oracle --------------------------------------------------------


def _peruvian_numbers(rng: random.Random) -> Iterator[phonenumbers.PhoneNumber]:
    for kind in range(12):  # every PhoneNumberType
        example = phonenumbers.example_number_for_type("PE", kind)
        if example is not None:
            yield example
    area_codes = [41, 42, 43, 44, 51, 52, 53, 54, 56, 61, 62, 63, 64, 65, 66, 67, 72, 73, 74,
                  76, 82, 83, 84]  # fmt: skip
    for _ in range(150):
        yield phonenumbers.parse(f"+519{rng.randrange(10**8):08d}")  # mobile
        yield phonenumbers.parse(f"+511{rng.randrange(10**7):07d}")  # Lima landline
        yield phonenumbers.parse(f"+51{rng.choice(area_codes)}{rng.randrange(10**6):06d}")


def _renderings(number: phonenumbers.PhoneNumber) -> list[str]:
    fmt = phonenumbers.PhoneNumberFormat
    e164 = phonenumbers.format_number(number, fmt.E164)
    international = phonenumbers.format_number(number, fmt.INTERNATIONAL)
    national = phonenumbers.format_number(number, fmt.NATIONAL)
    nsn = phonenumbers.national_significant_number(number)
    return [
        e164,
        international,
        national,
        phonenumbers.format_number(number, fmt.RFC3966),
        "00" + e164[1:],
        "00 " + international[1:],
        e164[1:],
        nsn,
        "0" + nsn,
        international.replace(" ", "-"),
        international.replace(" ", "."),
        national.replace(" ", "-"),
        " ".join(nsn[i : i + 3] for i in range(0, len(nsn), 3)),
        f"+51 (0) {nsn}",
        f"\t {international}\r\n",
        phonenumbers.format_out_of_country_calling_number(number, "ES"),  # 00 51 ...
    ]


def test_valid_peruvian_numbers_in_every_format_match_phonenumbers() -> None:
    rng = random.Random(20240501)
    tried = 0
    for number in _peruvian_numbers(rng):
        if not phonenumbers.is_valid_number(number):
            continue
        expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
        if len(set(expected[2:])) == 1:
            continue  # a placeholder is junk for us even when phonenumbers calls it valid
        for text in _renderings(number):
            oracle = phonenumbers.parse(text, "PE")
            assert phonenumbers.format_number(oracle, 0)[1:] == expected, text
            assert normalize_phone(text) == expected, text
            tried += 1
    assert tried > 5000


def test_numbers_phonenumbers_calls_impossible_for_peru_are_none() -> None:
    rng = random.Random(7)
    impossible = {
        phonenumbers.ValidationResult.TOO_SHORT,
        phonenumbers.ValidationResult.TOO_LONG,
        phonenumbers.ValidationResult.INVALID_LENGTH,
    }
    checked = 0
    for _ in range(20_000):
        prefix = rng.choice(["", "", "+", "00", "0", "51", "+51", "0051", "+51 (0) "])
        length = rng.randint(1, 16)
        text = prefix + "".join(rng.choice("0123456789") for _ in range(length))
        try:
            number = phonenumbers.parse(text, "PE")
        except phonenumbers.NumberParseException:
            continue
        if number.country_code != 51:
            continue
        if phonenumbers.is_possible_number_with_reason(number) in impossible:
            assert normalize_phone(text) is None, text
            checked += 1
    assert checked > 3000


def test_other_countries_numbers_are_kept_as_e164() -> None:
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None or number.country_code == 51:
                continue
            digits = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
            if not 8 <= len(digits) <= 15:
                assert normalize_phone("+" + digits) is None
                continue
            international = phonenumbers.format_number(
                number, phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )
            for text in ("+" + digits, international, "00" + digits):
                assert normalize_phone(text) == digits, (region, text)
                checked += 1
    assert checked > 500


# --- properties -----------------------------------------------------------------------


def _check_shapes(raw: str) -> None:
    phone = normalize_phone(raw)
    assert phone is None or PHONE_SHAPE.fullmatch(phone)
    for doc_type in (None, raw, "DNI"):
        document = normalize_document(doc_type, raw)
        assert document is None or DOCUMENT_SHAPE.fullmatch(document)
    document = normalize_document(raw, "45678912")
    assert document is None or DOCUMENT_SHAPE.fullmatch(document)
    email = normalize_email(raw)
    assert email is None or (EMAIL_SHAPE.fullmatch(email) and len(email) <= 254)
    name = normalize_name(raw)
    assert name is None or (NAME_SHAPE.fullmatch(name) and name == name.casefold())
    digest = identifiers_hash(
        full_name=raw, phone=raw, document_type=None, document_number=raw, email=raw
    )
    assert HASH_SHAPE.fullmatch(digest)


@pytest.mark.reliability
@PROPERTY_SETTINGS
@given(raw=st.one_of(nasty_text, long_text))
def test_any_text_never_raises_and_has_the_documented_shape(raw: str) -> None:
    _check_shapes(raw)


@pytest.mark.reliability
@PROPERTY_SETTINGS
@given(raw=st.text(alphabet=st.characters(categories=["Cs"]), max_size=5))
def test_lone_surrogates_never_raise(raw: str) -> None:
    _check_shapes(raw + "987654321")


@pytest.mark.reliability
@PROPERTY_SETTINGS
@given(raw=st.one_of(nasty_text, long_text))
def test_outputs_are_fixed_points(raw: str) -> None:
    phone = normalize_phone(raw)
    if phone is not None:
        assert normalize_phone("+" + phone) == phone
        if phone.startswith("51"):
            assert normalize_phone(phone) == phone
    document = normalize_document("DNI", raw)
    if document is not None:
        kind, number = document.split(":", 1)
        assert normalize_document(kind, number) == document
    email = normalize_email(raw)
    assert normalize_email(email) == email
    name = normalize_name(raw)
    assert normalize_name(name) == name


@pytest.mark.reliability
@PROPERTY_SETTINGS
@given(pair=formatted_mobiles())
def test_a_mobile_in_any_format_gives_one_key(pair: tuple[str, str]) -> None:
    text, expected = pair
    assert normalize_phone(text) == expected
    assert normalize_phone(text.replace("\u0020", "\u00a0")) == expected
    oracle = phonenumbers.parse(text.replace("\t", " ").strip(), "PE")  # it stops at a tab
    assert phonenumbers.format_number(oracle, phonenumbers.PhoneNumberFormat.E164) == "+" + expected


@pytest.mark.reliability
@PROPERTY_SETTINGS
@given(raw=st.text(alphabet=st.characters(exclude_characters="0123456789"), max_size=200))
def test_no_ascii_digit_means_no_phone(raw: str) -> None:
    assert normalize_phone(raw) is None
    assert normalize_document("DNI", raw) is None or re.search(r"[A-Za-z]", raw)


@pytest.mark.reliability
@settings(PROPERTY_SETTINGS, max_examples=200)  # st.emails() is slow to draw
@given(email=st.emails())
def test_ascii_emails_keep_their_address(email: str) -> None:
    if re.fullmatch(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+", email) and len(email) <= 254:
        key = normalize_email(f"  {email.upper()}\t")
        assert key is None or key == email.lower()
        if key is None:  # only the domain shape can reject it: a label or TLD we disallow
            assert not re.fullmatch(r".+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", email)


# --- agreement with the dbt macros ----------------------------------------------------

AGREEMENT_SQL = """
select
    input_id,
    {{ normalize_phone('raw') }} as phone,
    {{ normalize_phone('raw', country_code='1', national_lengths=[10]) }} as phone_nanp,
    {{ normalize_document('other', 'raw') }} as document,
    {{ normalize_document('null', 'raw', default_type='c.e.\u00df') }} as document_ce,
    {{ normalize_email('raw') }} as email,
    {{ lead_identifiers_hash(full_name='raw', phone='other', document_type='null',
        document_number='raw', email='other') }} as identifiers_hash
from normalize_inputs
order by input_id
"""


def compile_inline(database: Database, sql: str) -> str:
    """The SQL dbt compiles for an inline query in this project."""
    from dbt.cli.main import dbtRunner

    argv = [
        "--quiet", "--no-use-colors", "compile", "--inline", sql,
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(database.profiles_dir),
        "--target", "test", "--target-path", str(database.target_path),
        "--log-path", str(database.target_path / "logs"),
    ]  # fmt: skip
    with contextlib.chdir(PROJECT_DIR):
        outcome = dbtRunner().invoke(argv)
    assert outcome.success, f"dbt compile failed: {outcome.exception}"
    return str(outcome.result.results[0].node.compiled_code)


def python_row(
    rules: NormalizationRules, raw: str | None, other: str | None
) -> tuple[str | None, ...]:
    return (
        rules.phone(raw),
        normalize_phone(raw, country_code="1", national_lengths=(10,)),
        rules.document(other, raw),
        normalize_document(None, raw, default_type="c.e.\u00df"),
        rules.email(raw),
        identifiers_hash(
            full_name=raw, phone=other, document_type=None, document_number=raw, email=other
        ),
    )


def generated_inputs(count: int) -> list[str]:
    """``count`` hypothesis examples of nasty text (NUL removed: text columns refuse it)."""
    drawn: list[str] = []

    @settings(max_examples=count, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(raw=st.one_of(nasty_text, long_text))
    def collect(raw: str) -> None:
        drawn.append(raw.replace("\0", ""))

    collect()
    return drawn


@pytest.fixture(scope="module")
def macro_db(make_database: Callable[..., Database]) -> Database:
    """One database for the dbt runs here, so the second reuses the first's parse."""
    return make_database(init=False)


@pytest.mark.reliability
def test_macros_agree_with_python(macro_db: Database) -> None:
    database = macro_db
    corpus = [text.replace("\0", "") for text in nasty_corpus()]
    inputs: list[str | None] = [None, *dict.fromkeys(corpus + generated_inputs(400))]
    rows = [(index, raw, inputs[(index + 1) % len(inputs)]) for index, raw in enumerate(inputs)]
    with database.connect() as conn:
        conn.execute(
            "create table normalize_inputs (input_id int primary key, raw text, other text)"
        )
        with conn.cursor().copy("copy normalize_inputs from stdin") as copy:
            for row in rows:
                copy.write_row(row)
    sql_rows = database.query(compile_inline(database, AGREEMENT_SQL))
    assert len(sql_rows) == len(rows) > 400
    rules = NormalizationRules.from_vars(load_settings(PROJECT_DIR).vars)
    mismatches = [
        (raw, other, sql_row[1:], python_row(rules, raw, other))
        for (_, raw, other), sql_row in zip(rows, sql_rows, strict=True)
        if tuple(sql_row[1:]) != python_row(rules, raw, other)
    ]
    assert not mismatches, mismatches[:5]
    print(f"agreement: {len(rows)} inputs, {len(rows) * 6} values compared")


def test_macro_singular_tests_pass(macro_db: Database) -> None:
    result = macro_db.dbt("test", "--select", "path:tests/macros")
    assert result.succeeded and not result.failures
