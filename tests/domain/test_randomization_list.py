"""Stratified permuted-block lists: generation properties, canonical CSV, CSV import checks."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from itertools import groupby

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.domain.randomization_list import (
    CSV_COLUMNS,
    ListImportError,
    Slot,
    commitment,
    generate_all,
    generate_list,
    generate_stratum,
    parse_csv,
    to_csv,
)
from app.domain.study import Allocation, ListScope, load_study

STUDY = load_study()
SEED = "domain-tests-fixed-seed"

RATIOS = [
    {"IMC002": 1, "PLACEBO": 1},
    {"IMC002": 3, "PLACEBO": 1},
    {"IMC002": 2, "PLACEBO": 1},
    {"IMC002": 1, "PLACEBO": 2},
    {"A": 2, "B": 1, "C": 1},
]

seeds = st.text(min_size=1, max_size=30)


@st.composite
def list_scopes(draw: st.DrawFn, min_cap: int = 0) -> ListScope:
    """A valid allocation (block sizes are multiples of the ratio total) in 1 to 4 strata."""
    ratio = draw(st.sampled_from(RATIOS))
    unit = sum(ratio.values())
    sizes = draw(st.sets(st.sampled_from([unit * k for k in (1, 2, 3, 4)]), min_size=1))
    sizes_in_config_order = draw(st.permutations(sorted(sizes)))
    cap = draw(st.integers(min_cap, 300))
    n_strata = draw(st.integers(1, 4))
    code = draw(st.sampled_from(["C1", "C7", "P2"]))
    allocation = Allocation(ratio=ratio, block_sizes=tuple(sizes_in_config_order))
    strata = tuple(f"S{i}" for i in range(1, n_strata + 1))
    return ListScope(code, "phase_ii", strata, cap, allocation)


def by_stratum(slots: list[Slot]) -> dict[str, list[Slot]]:
    out: dict[str, list[Slot]] = {}
    for slot in slots:
        out.setdefault(slot.stratum, []).append(slot)
    return out


def blocks_of(slots: list[Slot]) -> list[list[Slot]]:
    """Runs of consecutive slots sharing a block number, in list order."""
    return [list(g) for _, g in groupby(slots, key=lambda s: s.block)]


# --- generation -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=seeds, scope=list_scopes())
def test_generated_list_structure(seed: str, scope: ListScope) -> None:
    slots = generate_list(seed, scope)
    ratio = scope.allocation.ratio
    unit = sum(ratio.values())
    sizes = set(scope.allocation.block_sizes)
    biggest = max(sizes)

    assert all(s.scope == scope.code for s in slots)
    assert all(s.arm in ratio for s in slots)
    strata = by_stratum(slots)
    # Strata appear whole and in definition order; a stratum only misses when the cap is 0.
    assert list(strata) == [st_ for st_ in scope.strata if st_ in strata]
    assert [s.stratum for s in slots] == [s.stratum for st_ in strata.values() for s in st_]

    for stratum in scope.strata:
        rows = strata.get(stratum, [])
        assert scope.cap <= len(rows) < scope.cap + biggest
        assert [s.sequence for s in rows] == list(range(1, len(rows) + 1))
        blocks = blocks_of(rows)
        # Block numbers run 1..m in order, each number used by one contiguous run only.
        assert [b[0].block for b in blocks] == list(range(1, len(blocks) + 1))
        for block in blocks:
            size = len(block)
            assert size in sizes
            assert {s.block_size for s in block} == {size}
            # Exactly balanced: each arm ratio[arm] * size / unit times.
            assert Counter(s.arm for s in block) == {
                arm: ratio[arm] * size // unit for arm in ratio
            }
        assert sum(len(b) for b in blocks) == len(rows)  # blocks are whole


@settings(max_examples=40, deadline=None)
@given(seed=seeds, scope=list_scopes())
def test_same_seed_same_list_and_commitment(seed: str, scope: ListScope) -> None:
    twin = ListScope(
        scope.code,
        scope.stage,
        tuple(scope.strata),
        scope.cap,
        Allocation(
            ratio=dict(scope.allocation.ratio), block_sizes=tuple(scope.allocation.block_sizes)
        ),
    )
    first, second = generate_list(seed, scope), generate_list(seed, twin)
    assert first == second
    assert commitment(first) == commitment(second)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, scope=list_scopes())
def test_each_stratum_is_its_own_stream(seed: str, scope: ListScope) -> None:
    # A stratum's slots depend on (seed, scope code, stratum) only: adding or dropping other
    # strata leaves it unchanged, so an auditor can regenerate one stratum alone.
    slots = by_stratum(generate_list(seed, scope))
    for stratum, rows in slots.items():
        assert generate_stratum(seed, scope, stratum) == rows
        alone = ListScope(scope.code, scope.stage, (stratum,), scope.cap, scope.allocation)
        assert generate_list(seed, alone) == rows


@settings(max_examples=40, deadline=None)
@given(seed_a=seeds, seed_b=seeds, scope=list_scopes())
def test_different_seeds_different_lists(seed_a: str, seed_b: str, scope: ListScope) -> None:
    assume(seed_a != seed_b)
    first = generate_list(seed_a, scope)
    # Every block carries at least 1 bit of choice per 2 slots (1:1 in blocks of 2 is the
    # poorest), so 80 slots give >= 40 bits: a collision has probability <= 2**-40.
    assume(len(first) >= 80)
    second = generate_list(seed_b, scope)
    assert first != second
    assert commitment(first) != commitment(second)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, scope=list_scopes())
def test_every_prefix_within_half_a_block_of_the_ratio(seed: str, scope: ListScope) -> None:
    ratio = scope.allocation.ratio
    total = sum(ratio.values())
    half_block = Fraction(max(scope.allocation.block_sizes), 2)
    for rows in by_stratum(generate_list(seed, scope)).values():
        counts: Counter[str] = Counter()
        for length, slot in enumerate(rows, start=1):
            counts[slot.arm] += 1
            for arm, share in ratio.items():
                assert abs(counts[arm] - Fraction(length * share, total)) <= half_block


def reference_stratum(seed: str, scope: ListScope, stratum: str) -> list[Slot]:
    """docs/randomization.md, "The random stream" and "Blocks", re-implemented with hashlib only
    (no app PRNG): pins the documented algorithm an independent statistician would rebuild."""
    label = f"{scope.code}|{stratum}"
    counter = 0

    def below(n: int) -> int:
        nonlocal counter
        while True:
            text = f"{seed}|{label}|{counter}"
            x = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
            counter += 1
            if x < 2**64 - (2**64 % n):
                return x % n

    ratio = scope.allocation.ratio
    sizes = sorted(scope.allocation.block_sizes)
    slots: list[Slot] = []
    block = 0
    while len(slots) < scope.slots_per_stratum:
        block += 1
        size = sizes[below(len(sizes))]
        arms = [
            arm for arm in sorted(ratio) for _ in range(ratio[arm] * size // sum(ratio.values()))
        ]
        for k in range(size - 1, 0, -1):
            j = below(k + 1)
            arms[k], arms[j] = arms[j], arms[k]
        for arm in arms:
            slots.append(Slot(scope.code, stratum, len(slots) + 1, block, size, arm))
    return slots


@settings(max_examples=40, deadline=None)
@given(seed=seeds, scope=list_scopes())
def test_generation_follows_the_documented_algorithm(seed: str, scope: ListScope) -> None:
    expected = [s for stratum in scope.strata for s in reference_stratum(seed, scope, stratum)]
    assert generate_list(seed, scope) == expected


def test_imc002_lists_follow_the_documented_algorithm() -> None:
    for scope in STUDY.scopes():
        expected = [s for st_ in scope.strata for s in reference_stratum(SEED, scope, st_)]
        assert generate_all(SEED, STUDY)[scope.code] == expected


@settings(max_examples=30, deadline=None)
@given(seed=seeds, scope=list_scopes(min_cap=80))
def test_strata_get_different_lists(seed: str, scope: ListScope) -> None:
    # Each stratum has its own stream, so two strata of one list are not copies of each other
    # (>= 40 bits of choice each, as in test_different_seeds_different_lists).
    assume(len(scope.strata) >= 2)
    arms = [[s.arm for s in rows] for rows in by_stratum(generate_list(seed, scope)).values()]
    assert all(a != b for i, a in enumerate(arms) for b in arms[i + 1 :])


def test_cap_zero_gives_an_empty_list() -> None:
    scope = ListScope("C1", "phase_ib", ("ALL",), 0, STUDY.phase_ib)
    assert generate_list(SEED, scope) == []


def test_generate_all_covers_every_scope_of_the_study() -> None:
    lists = generate_all(SEED, STUDY)
    assert list(lists) == ["C1", "C2", "C3", "P2"]
    for code in ("C1", "C2", "C3"):
        # Cap 8 with blocks of 4 only: exactly two blocks of 3 IMC002 + 1 PLACEBO.
        assert len(lists[code]) == 8
        assert Counter(s.arm for s in lists[code]) == {"IMC002": 6, "PLACEBO": 2}
    p2 = by_stratum(lists["P2"])
    assert list(p2) == list(STUDY.phase_ii.strata())
    for rows in p2.values():
        # Any stratum may take all 218 subjects of the study (places of closed cohorts may
        # move to phase II); blocks of 4 or 6 overshoot by < 6.
        assert 218 <= len(rows) < 224


# --- canonical CSV and round trip --------------------------------------------------------------


def all_slots(lists: dict[str, list[Slot]]) -> list[Slot]:
    return [slot for slots in lists.values() for slot in slots]


def test_to_csv_is_canonical() -> None:
    slots = all_slots(generate_all(SEED, STUDY))
    text = to_csv(slots)
    lines = text.split("\n")
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert text.endswith("\n") and "\r" not in text
    assert len(lines) == len(slots) + 2  # header, one line per slot, trailing newline
    # Input order does not matter: rows are sorted by (scope, stratum, sequence).
    assert to_csv(reversed(slots)) == text
    assert commitment(reversed(slots)) == commitment(slots)


def test_commitment_is_sha256_of_the_canonical_csv() -> None:
    slots = generate_all(SEED, STUDY)["C1"]
    assert commitment(slots) == hashlib.sha256(to_csv(slots).encode("utf-8")).hexdigest()


def test_commitment_changes_when_one_arm_changes() -> None:
    slots = generate_all(SEED, STUDY)["C1"]
    first = slots[0]
    other = "PLACEBO" if first.arm == "IMC002" else "IMC002"
    tampered = [
        Slot(first.scope, first.stratum, first.sequence, first.block, first.block_size, other),
        *slots[1:],
    ]
    assert commitment(tampered) != commitment(slots)


@settings(max_examples=8, deadline=None)
@given(seed=seeds)
def test_csv_round_trip_on_imc002(seed: str) -> None:
    lists = generate_all(seed, STUDY)
    text = to_csv(all_slots(lists))
    parsed = parse_csv(text, STUDY)
    assert set(parsed) == set(lists)
    for code, slots in lists.items():
        assert sorted(parsed[code]) == sorted(slots)
    assert commitment(all_slots(parsed)) == commitment(all_slots(lists))
    assert to_csv(all_slots(parsed)) == text


def test_csv_from_elsewhere_with_bom_crlf_and_shuffled_rows_is_accepted() -> None:
    lists = generate_all(SEED, STUDY)
    header, *rows = to_csv(all_slots(lists)).splitlines()
    rows.reverse()
    text = "\ufeff" + "\r\n".join([header, *rows]) + "\r\n"
    parsed = parse_csv(text, STUDY)
    assert commitment(all_slots(parsed)) == commitment(all_slots(lists))


def test_csv_may_hold_some_scopes_only() -> None:
    lists = generate_all(SEED, STUDY)
    parsed = parse_csv(to_csv(lists["C2"]), STUDY)
    assert parsed == {"C2": sorted(lists["C2"])}


# --- CSV import refusals -----------------------------------------------------------------------


class CsvEdit:
    """The canonical CSV of a generated IMC-002 list, editable by (1-based) file row number."""

    def __init__(self, seed: str = SEED) -> None:
        self.lists = generate_all(seed, STUDY)
        self.lines = to_csv(all_slots(self.lists)).splitlines()

    def row(self, scope: str, stratum: str, sequence: int) -> int:
        for index, line in enumerate(self.lines[1:], start=2):
            fields = line.split(",")
            if (fields[0], fields[1], fields[2]) == (scope, stratum, str(sequence)):
                return index
        raise LookupError((scope, stratum, sequence))

    def last_row(self, scope: str, stratum: str) -> int:
        return max(i for i in self.rows_of(scope, stratum))

    def rows_of(self, scope: str, stratum: str) -> Iterator[int]:
        for index, line in enumerate(self.lines[1:], start=2):
            fields = line.split(",")
            if (fields[0], fields[1]) == (scope, stratum):
                yield index

    def block_rows(self, scope: str, stratum: str, block: int) -> list[int]:
        return [r for r in self.rows_of(scope, stratum) if self.get(r, "block") == str(block)]

    def get(self, row_no: int, column: str) -> str:
        return self.lines[row_no - 1].split(",")[CSV_COLUMNS.index(column)]

    def set(self, row_no: int, column: str, value: str) -> None:
        fields = self.lines[row_no - 1].split(",")
        fields[CSV_COLUMNS.index(column)] = value
        self.lines[row_no - 1] = ",".join(fields)

    def delete(self, row_no: int) -> None:
        del self.lines[row_no - 1]

    def flip_arm(self, row_no: int) -> None:
        self.set(row_no, "arm", "PLACEBO" if self.get(row_no, "arm") == "IMC002" else "IMC002")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


P2_STRATA = STUDY.phase_ii.strata()


def refusal(text: str) -> list[str]:
    with pytest.raises(ListImportError) as info:
        parse_csv(text, STUDY)
    assert info.value.problems, "a refusal must name at least one problem"
    return info.value.problems


def named_rows(problems: list[str]) -> set[int]:
    return {int(m.group(1)) for p in problems if (m := re.match(r"row (\d+): ", p))}


def problem_for(problems: list[str], row_no: int) -> str:
    return " | ".join(p for p in problems if p.startswith(f"row {row_no}: "))


def test_unedited_canonical_csv_is_accepted() -> None:
    parse_csv(CsvEdit().text(), STUDY)  # the baseline the refusal tests edit


def test_unknown_arm_refused() -> None:
    csv = CsvEdit()
    bad = csv.row("C2", "ALL", 3)
    csv.set(bad, "arm", "IMC-002")
    problems = refusal(csv.text())
    assert bad in named_rows(problems)
    assert "unknown arm 'IMC-002'" in problem_for(problems, bad)


@pytest.mark.parametrize("stratum", ["SLEDAI<10/PRED<5", "ALL", ""])
def test_unknown_stratum_refused(stratum: str) -> None:
    csv = CsvEdit()
    bad = csv.row("P2", P2_STRATA[1], 17)
    csv.set(bad, "stratum", stratum)
    problems = refusal(csv.text())
    assert "unknown stratum" in problem_for(problems, bad)


def test_stratum_of_another_scope_refused() -> None:
    csv = CsvEdit()
    bad = csv.row("C1", "ALL", 2)
    csv.set(bad, "stratum", P2_STRATA[0])
    assert "unknown stratum" in problem_for(refusal(csv.text()), bad)


@pytest.mark.parametrize("scope", ["C4", "c1", "", "P3"])
def test_unknown_scope_refused(scope: str) -> None:
    csv = CsvEdit()
    bad = csv.row("C3", "ALL", 5)
    csv.set(bad, "scope", scope)
    assert "unknown scope" in problem_for(refusal(csv.text()), bad)


@pytest.mark.parametrize("value", ["x", "", " ", "3a", "3.0", "-3", "0", "1e1", "²", "٣"])
@pytest.mark.parametrize("column", ["sequence", "block", "block_size"])
def test_non_numeric_numbers_refused(column: str, value: str) -> None:
    # "²" and "٣" are str.isdigit() but not ASCII whole numbers: they must be refused by name,
    # not crash int() ("²") or be read as 3 ("٣").
    csv = CsvEdit()
    bad = csv.row("P2", P2_STRATA[2], 3)
    csv.set(bad, column, value)
    problems = refusal(csv.text())
    assert column in problem_for(problems, bad)


def test_sequence_gap_at_the_end_refused() -> None:
    csv = CsvEdit()
    bad = csv.last_row("P2", P2_STRATA[3])
    csv.set(bad, "sequence", str(int(csv.get(bad, "sequence")) + 1))
    problems = refusal(csv.text())
    assert "sequence" in problem_for(problems, bad)


def test_sequence_gap_in_the_middle_refused() -> None:
    csv = CsvEdit()
    deleted = csv.row("C1", "ALL", 4)
    csv.delete(deleted)
    # The row now at that position (sequence 5) is where the gap shows.
    assert csv.get(deleted, "sequence") == "5"
    problems = refusal(csv.text())
    assert "sequence 5 where 4 was expected" in problem_for(problems, deleted)


def test_repeated_sequence_refused() -> None:
    csv = CsvEdit()
    bad = csv.row("P2", P2_STRATA[0], 10)
    csv.set(bad, "sequence", "9")
    problems = refusal(csv.text())
    assert "sequence 9 is repeated" in problem_for(problems, bad)


def test_every_sequence_problem_in_one_stratum_is_named() -> None:
    # Two repeats and a gap in the same stratum: each bad row is named, not only the first.
    csv = CsvEdit()
    stratum = P2_STRATA[0]
    first_repeat = csv.row("P2", stratum, 10)
    csv.set(first_repeat, "sequence", "9")
    second_repeat = csv.row("P2", stratum, 100)
    csv.set(second_repeat, "sequence", "99")
    deleted = csv.row("P2", stratum, 150)
    csv.delete(deleted)  # the row of sequence 151 moves up into its place
    problems = refusal(csv.text())
    assert "sequence 9 is repeated" in problem_for(problems, first_repeat)
    assert "sequence 99 is repeated" in problem_for(problems, second_repeat)
    assert "sequence 151 where 150 was expected" in problem_for(problems, deleted)


def test_unbalanced_block_refused() -> None:
    csv = CsvEdit()
    rows = csv.block_rows("P2", P2_STRATA[1], 2)
    csv.flip_arm(rows[0])
    problems = refusal(csv.text())
    assert "block 2 is not balanced" in problem_for(problems, rows[0])


def test_unbalanced_block_named_by_its_first_row() -> None:
    # The balance check is per block, so a bad arm in the middle of a block names the block
    # (by its first row and number), not the edited row.
    csv = CsvEdit()
    rows = csv.block_rows("C2", "ALL", 2)
    csv.flip_arm(rows[2])
    problems = refusal(csv.text())
    assert "block 2 is not balanced" in problem_for(problems, rows[0])


def test_block_of_a_size_not_in_the_set_refused() -> None:
    # C1 (cap 8, blocks of 4) is two blocks: merge them into one block of 8, declared as 8,
    # still balanced 6:2 -- only its size is wrong.
    csv = CsvEdit()
    rows = list(csv.rows_of("C1", "ALL"))
    assert len(rows) == 8
    for r in rows:
        csv.set(r, "block", "1")
        csv.set(r, "block_size", "8")
    problems = refusal(csv.text())
    assert "block 1 size 8 is not one of [4]" in problem_for(problems, rows[0])


def test_block_declaring_a_wrong_size_refused() -> None:
    csv = CsvEdit()
    stratum = P2_STRATA[2]
    block = next(b for b in range(1, 60) if len(csv.block_rows("P2", stratum, b)) == 4)
    rows = csv.block_rows("P2", stratum, block)
    for r in rows:
        csv.set(r, "block_size", "6")
    problems = refusal(csv.text())
    assert f"block {block} declares size [6] but has 4 slots" in problem_for(problems, rows[0])


def test_one_row_declaring_a_wrong_block_size_refused() -> None:
    csv = CsvEdit()
    rows = csv.block_rows("C3", "ALL", 1)
    csv.set(rows[0], "block_size", "8")
    problems = refusal(csv.text())
    assert "block 1 declares size [4, 8] but has 4 slots" in problem_for(problems, rows[0])


def test_non_contiguous_block_refused() -> None:
    # Swap the block numbers of the last slot of block 1 and the first of block 2 in C1.
    csv = CsvEdit()
    b1, b2 = csv.block_rows("C1", "ALL", 1), csv.block_rows("C1", "ALL", 2)
    csv.set(b1[-1], "block", "2")
    csv.set(b2[0], "block", "1")
    problems = refusal(csv.text())
    assert "not contiguous" in problem_for(problems, b2[0])


def test_stratum_below_the_cap_refused() -> None:
    csv = CsvEdit()
    for r in reversed(csv.block_rows("C1", "ALL", 2)):
        csv.delete(r)
    problems = refusal(csv.text())
    assert any("C1 stratum ALL: 4 slots, fewer than the cap 8" in p for p in problems)


def test_missing_stratum_of_a_present_scope_refused() -> None:
    csv = CsvEdit()
    for r in reversed(list(csv.rows_of("P2", P2_STRATA[3]))):
        csv.delete(r)
    problems = refusal(csv.text())
    assert problems == [f"scope P2 stratum {P2_STRATA[3]}: no rows"]


@pytest.mark.parametrize(
    "header",
    [
        "scope,stratum,seq,block,block_size,arm",  # renamed column
        "stratum,scope,sequence,block,block_size,arm",  # reordered
        "scope,stratum,sequence,block,arm",  # missing column
        "scope,stratum,sequence,block,block_size,arm,kit",  # extra column
        "Scope,Stratum,Sequence,Block,Block_Size,Arm",  # wrong case
        "scope;stratum;sequence;block;block_size;arm",  # wrong delimiter
    ],
)
def test_wrong_header_refused(header: str) -> None:
    csv = CsvEdit()
    csv.lines[0] = header
    problems = refusal(csv.text())
    assert len(problems) == 1 and problems[0].startswith("header:")


def test_missing_header_refused() -> None:
    csv = CsvEdit()
    del csv.lines[0]
    assert refusal(csv.text())[0].startswith("header:")


@pytest.mark.parametrize("text", ["", "\n", "\ufeff"])
def test_empty_file_refused(text: str) -> None:
    assert refusal(text)[0].startswith("header:")


def test_header_only_file_refused() -> None:
    assert refusal(",".join(CSV_COLUMNS) + "\n") == ["the file holds no slots"]


def test_every_bad_row_is_named() -> None:
    # One defect in each of seven strata (plus a second defect in two of them):
    # the import must report every one, not stop at the first.
    csv = CsvEdit()
    expected: dict[int, str] = {}

    r = csv.row("C1", "ALL", 6)
    csv.set(r, "arm", "ACTIVE")
    expected[r] = "unknown arm"

    r = csv.row("C2", "ALL", 2)
    csv.set(r, "sequence", "two")
    expected[r] = "sequence 'two'"

    r = csv.row("C3", "ALL", 7)
    csv.set(r, "scope", "C9")
    expected[r] = "unknown scope"

    r = csv.row("P2", P2_STRATA[0], 50)
    csv.set(r, "sequence", "49")
    expected[r] = "sequence 49 is repeated"
    r = csv.row("P2", P2_STRATA[0], 180)
    csv.set(r, "sequence", "179")
    expected[r] = "sequence 179 is repeated"

    block_rows = csv.block_rows("P2", P2_STRATA[1], 5)
    csv.flip_arm(block_rows[0])
    expected[block_rows[0]] = "block 5 is not balanced"

    block_rows = csv.block_rows("P2", P2_STRATA[2], 3)
    csv.set(block_rows[0], "block_size", "12")
    expected[block_rows[0]] = "block 3 declares size"

    r = csv.row("P2", P2_STRATA[3], 30)
    csv.set(r, "stratum", "SLEDAI>=10")
    expected[r] = "unknown stratum"
    r = csv.row("P2", P2_STRATA[3], 120)
    csv.set(r, "block", "")
    expected[r] = "block '' is not a whole number"

    problems = refusal(csv.text())
    assert set(expected) <= named_rows(problems)
    for row_no, fragment in expected.items():
        assert fragment in problem_for(problems, row_no), (row_no, problems)
