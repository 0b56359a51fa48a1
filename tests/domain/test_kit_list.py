"""Kit list files: generation (random, unique, blind by expiry) and validation of a whole file."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.kits import (
    KIT_COLUMNS,
    KIT_NUMBER_ALPHABET,
    KitListError,
    KitRecord,
    generate_kit_list,
    kit_list_csv,
    parse_kit_list,
)
from app.domain.study import load_study

CONTENTS = load_study().contents
DEPOT = "DEPOT-EU"
DEPOTS = (DEPOT, "DEPOT-US")
TODAY = date(2030, 6, 1)
EXPIRIES = [TODAY + timedelta(days=d) for d in (75, 180, 365, 540, 730)]
HEADER = ",".join(KIT_COLUMNS)


def generated(per_content: int = 10, seed: int = 1, expiries: list[date] = EXPIRIES) -> list:
    return generate_kit_list(
        CONTENTS,
        per_content=per_content,
        expiry_dates=expiries,
        depot=DEPOT,
        rng=random.Random(seed),
    )


def parse(text: str) -> list[KitRecord]:
    return parse_kit_list(text, contents=CONTENTS, depots=DEPOTS, today=TODAY)


def refusal(text: str) -> list[str]:
    with pytest.raises(KitListError) as info:
        parse(text)
    assert info.value.problems
    assert str(info.value) == "; ".join(info.value.problems)
    return info.value.problems


def small_list() -> list[str]:
    """Header plus eight valid rows: two expiry dates, each with both contents twice."""
    lines = [HEADER]
    n = 0
    for expiry in EXPIRIES[:2]:
        for content in CONTENTS:
            for _ in range(2):
                n += 1
                lines.append(f"KIT{n:03d}X,{content},LOT{n},{expiry.isoformat()},{DEPOT}")
    return lines


def as_text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


# --- parsing ------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    per_content=st.integers(1, 30),
    n_expiries=st.integers(1, 5),
    seed=st.integers(0, 2**32),
)
def test_generated_list_parses_back_to_the_same_records(
    per_content: int, n_expiries: int, seed: int
) -> None:
    expiries = EXPIRIES[:n_expiries]
    if per_content < n_expiries:
        expiries = EXPIRIES[:per_content]  # every expiry date must carry kits
    records = generated(per_content, seed, expiries)
    assert parse(kit_list_csv(records)) == records


def test_parse_accepts_a_byte_order_mark_and_crlf() -> None:
    records = generated(4)
    text = "\ufeff" + kit_list_csv(records).replace("\n", "\r\n")
    assert parse(text) == records


def test_small_list_is_valid() -> None:
    assert len(parse(as_text(small_list()))) == 8


def test_duplicate_kit_number_names_the_row() -> None:
    lines = small_list()
    lines[4] = lines[4].replace("KIT004X", "KIT001X")
    (problem,) = refusal(as_text(lines))
    assert problem.startswith("row 5:")
    assert "KIT001X repeats row 2" in problem


def test_unknown_content_names_the_row() -> None:
    lines = small_list()
    lines[3] = lines[3].replace("PLACEBO", "ASPIRIN").replace("IMC002", "ASPIRIN")
    (problem,) = refusal(as_text(lines))
    assert problem.startswith("row 4:") and "unknown content 'ASPIRIN'" in problem


def test_unknown_depot_names_the_row() -> None:
    lines = small_list()
    lines[6] = lines[6].replace(DEPOT, "DEPOT-XX")
    (problem,) = refusal(as_text(lines))
    assert problem.startswith("row 7:") and "unknown depot 'DEPOT-XX'" in problem


@pytest.mark.parametrize("days_before", [0, 1, 400])
def test_expiry_not_in_the_future_names_the_row(days_before: int) -> None:
    lines = small_list()
    past = (TODAY - timedelta(days=days_before)).isoformat()
    lines[2] = lines[2].replace(EXPIRIES[0].isoformat(), past)
    (problem,) = refusal(as_text(lines))
    assert problem.startswith("row 3:") and "not in the future" in problem


@pytest.mark.parametrize("bad_date", ["2031-02-30", "01/02/2031", "tomorrow", "", "2031-1-5"])
def test_malformed_date_names_the_row(bad_date: str) -> None:
    lines = small_list()
    lines[8] = lines[8].replace(EXPIRIES[1].isoformat(), bad_date)
    (problem,) = refusal(as_text(lines))
    assert problem.startswith("row 9:") and "is not a date" in problem


@pytest.mark.parametrize(
    "header",
    [
        "kit_number,content,lot,expiry_date",
        "kit_number,content,lot,expiry_date,depot,extra",
        "content,kit_number,lot,expiry_date,depot",
        "Kit_Number,content,lot,expiry_date,depot",
        "kit number;content;lot;expiry date;depot",
    ],
)
def test_bad_header_is_refused(header: str) -> None:
    lines = small_list()
    lines[0] = header
    (problem,) = refusal(as_text(lines))
    assert problem.startswith("header:")


@pytest.mark.parametrize("text", ["", "\n", "\ufeff", "   "])
def test_empty_file_is_refused(text: str) -> None:
    refusal(text)


def test_header_only_file_is_refused() -> None:
    assert refusal(HEADER + "\n") == ["the file holds no kits"]


def test_bad_kit_number_and_lot_are_refused() -> None:
    lines = small_list()
    lines[1] = lines[1].replace("KIT001X", "KIT-001")
    lines[2] = lines[2].replace("KIT002X", "A" * 17)
    lines[3] = lines[3].replace(",LOT3,", ",,")
    problems = refusal(as_text(lines))
    assert [p.split(":")[0] for p in problems] == ["row 2", "row 3", "row 4"]
    assert "letters or digits" in problems[0] and "letters or digits" in problems[1]
    assert "lot must be" in problems[2]


def test_every_bad_row_is_named_and_one_row_lists_all_its_faults() -> None:
    lines = small_list()
    lines[2] = lines[2].replace("KIT002X", "KIT001X")  # duplicate
    lines[3] = lines[3].replace("IMC002", "ASPIRIN").replace("PLACEBO", "ASPIRIN")
    lines[5] = lines[5].replace(DEPOT, "NOWHERE")
    lines[6] = lines[6].replace(EXPIRIES[1].isoformat(), "2020-01-01")
    lines[8] = lines[8].replace(EXPIRIES[1].isoformat(), "31.12.2031").replace(DEPOT, "NOWHERE")
    problems = refusal(as_text(lines))
    assert [p.split(":")[0] for p in problems] == ["row 3", "row 4", "row 6", "row 7", "row 9"]
    assert "repeats row 2" in problems[0]
    assert "unknown content" in problems[1]
    assert "unknown depot" in problems[2]
    assert "not in the future" in problems[3]
    assert "unknown depot" in problems[4] and "is not a date" in problems[4]


def test_an_expiry_date_with_one_content_only_is_refused() -> None:
    """Blinding: an expiry date only one content has would tell the contents apart."""
    lonely = TODAY + timedelta(days=999)
    lines = [*small_list(), f"LONELY01,{CONTENTS[0]},LOTZ,{lonely.isoformat()},{DEPOT}"]
    problems = refusal(as_text(lines))
    assert len(problems) == 1
    assert f"expiry date {lonely}" in problems[0]
    assert "every content" in problems[0]


def test_a_list_of_one_content_only_is_refused() -> None:
    records = [r for r in generated(6) if r.content == CONTENTS[1]]
    problems = refusal(kit_list_csv(records))
    assert len(problems) == len({r.expiry_date for r in records})


def test_several_depots_are_accepted() -> None:
    lines = small_list()
    lines[1] = lines[1].replace(DEPOT, "DEPOT-US")
    records = parse(as_text(lines))
    assert Counter(r.depot for r in records) == {DEPOT: 7, "DEPOT-US": 1}


# --- generation ---------------------------------------------------------------------------


def test_kit_numbers_unique_and_from_the_alphabet() -> None:
    records = generated(500, seed=3)
    numbers = [r.kit_number for r in records]
    assert len(numbers) == 1000
    assert len(set(numbers)) == len(numbers)
    for number in numbers:
        assert len(number) == 8
        assert set(number) <= set(KIT_NUMBER_ALPHABET)
    for pair in ("0O", "1I", "5S", "2Z", "8B", "6G"):  # never both of a look-alike pair
        assert not set(pair) <= set(KIT_NUMBER_ALPHABET), pair
    assert len(set(KIT_NUMBER_ALPHABET)) == len(KIT_NUMBER_ALPHABET)


def shared_prefixes(numbers: list[str], length: int = 6) -> int:
    return sum(a[:length] == b[:length] for a, b in itertools.pairwise(numbers))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kit_numbers_are_not_sequential(seed: int) -> None:
    records = generated(500, seed=seed)
    in_file = [r.kit_number for r in records]
    ordered = sorted(in_file)
    # Random 8-character numbers over 25 symbols: two given numbers share a 6-character prefix
    # with probability 25**-6 (about 4e-9); among 1000 numbers, any pair doing so is a ~0.2 %
    # event. A sequential or counter-like scheme would share prefixes on almost every row.
    assert shared_prefixes(in_file) <= 1
    assert shared_prefixes(ordered) <= 1
    # no consecutive runs in the order the file is written
    assert in_file != ordered
    # not integers counting up either
    digits_only = [n for n in in_file if n.isdigit()]
    assert len(digits_only) <= 1
    # every alphabet symbol appears in every position (no fixed prefix or check pattern)
    for position in range(8):
        assert {n[position] for n in in_file} == set(KIT_NUMBER_ALPHABET)


def test_every_expiry_date_carries_every_content_equally() -> None:
    for per_content in (5, 10, 12, 37):
        records = generated(per_content, seed=per_content)
        by_expiry: dict[date, Counter[str]] = defaultdict(Counter)
        for r in records:
            by_expiry[r.expiry_date][r.content] += 1
        assert Counter(r.content for r in records) == dict.fromkeys(CONTENTS, per_content)
        assert set(by_expiry) == set(EXPIRIES)
        for counts in by_expiry.values():
            assert set(counts) == set(CONTENTS)
            assert len(set(counts.values())) == 1


def test_lots_differ_per_content_and_expiry() -> None:
    records = generated(20, seed=9)
    lot_of: dict[tuple[str, date], set[str]] = defaultdict(set)
    for r in records:
        lot_of[(r.content, r.expiry_date)].add(r.lot)
    assert len(lot_of) == len(CONTENTS) * len(EXPIRIES)
    for lots in lot_of.values():
        assert len(lots) == 1  # one lot per content and expiry date
    all_lots = [next(iter(lots)) for lots in lot_of.values()]
    assert len(set(all_lots)) == len(all_lots)


def test_rows_are_in_random_order() -> None:
    records = generated(50, seed=4)
    contents = [r.content for r in records]
    runs = sum(a != b for a, b in itertools.pairwise(contents))
    assert runs > 20  # 100 rows of two contents shuffled: about 50 changes, sorted: 1
    assert [r.expiry_date for r in records] != sorted(r.expiry_date for r in records)


def test_same_seed_same_list_other_seed_other_list() -> None:
    assert generated(10, seed=5) == generated(10, seed=5)
    first = {r.kit_number for r in generated(10, seed=5)}
    second = {r.kit_number for r in generated(10, seed=6)}
    assert not first & second


def test_csv_has_the_documented_columns() -> None:
    records = generated(3)
    lines = kit_list_csv(records).splitlines()
    assert lines[0] == HEADER
    assert len(lines) == 1 + len(records)
    r = records[0]
    assert lines[1] == f"{r.kit_number},{r.content},{r.lot},{r.expiry_date.isoformat()},{DEPOT}"
