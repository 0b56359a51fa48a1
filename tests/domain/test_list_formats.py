"""REDCap and Sealed Envelope layouts of a list: export, parse, and the canonical rules on both.
The real-shaped files under tests/fixtures are in tests/domain/test_list_fixtures.py."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import list_formats as lf
from app.domain import sealed_envelope_format as se
from app.domain.csv_cells import csv_cell, csv_text
from app.domain.randomization_list import ListImportError, Slot, generate_list, to_csv
from app.domain.study import load_study

STUDY = load_study()
SCOPES = [s.code for s in STUDY.scopes()]


def sealed_envelope(slots: list[Slot], names: bool = True, whole_level: bool = False) -> str:
    """Sealed Envelope's documented list layout: Sequence, Block, Block size, Treatment, strata."""
    scope = STUDY.scope(slots[0].scope)
    factors = lf.factors(STUDY, scope)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*se.LIST_COLUMNS, *(f.code for f in factors)])
    for s in slots:
        levels = s.stratum.split("/") if factors else []
        values = [
            lvl if whole_level else lvl[len(f.code) :]
            for f, lvl in zip(factors, levels, strict=True)
        ]
        treatment = STUDY.arm(s.arm).name if names else s.arm
        writer.writerow([s.sequence, s.block, s.block_size, treatment, *values])
    return out.getvalue()


def _arms(slots: list[Slot]) -> list[tuple[str, int, str]]:
    return [(s.stratum, s.sequence, s.arm) for s in sorted(slots)]


@settings(max_examples=12, deadline=None)
@given(seed=st.text(min_size=1, max_size=20), scope=st.sampled_from(SCOPES))
def test_redcap_round_trip_keeps_every_arm_in_order_and_is_exact_from_then_on(
    seed: str, scope: str
) -> None:
    """The table carries no blocks: the arms come back exactly (all that allocation uses), the
    blocks of a single block size too, and a list read from REDCap exports and reads back
    exactly (the blocks are read from the arms the same way every time)."""
    slots = generate_list(seed, STUDY.scope(scope))
    back = lf.parse_redcap(lf.to_redcap(slots, STUDY, scope), STUDY, scope)
    assert _arms(back) == _arms(slots)
    if len(STUDY.scope(scope).allocation.block_sizes) == 1:
        assert back == sorted(slots)
    assert lf.parse_redcap(lf.to_redcap(back, STUDY, scope), STUDY, scope) == back


@settings(max_examples=12, deadline=None)
@given(seed=st.text(min_size=1, max_size=20), scope=st.sampled_from(SCOPES))
def test_sealed_envelope_export_then_parse_gives_the_same_slots(seed: str, scope: str) -> None:
    slots = generate_list(seed, STUDY.scope(scope))
    text = lf.to_sealed_envelope(slots, STUDY, scope)
    assert lf.parse_sealed_envelope(text, STUDY, scope) == sorted(slots)
    header = text.split("\r\n", 1)[0].split(",")
    assert header[0] == "Randomisation code" and header[-4:] == list(se.GENERATOR_COLUMNS)


@settings(max_examples=12, deadline=None)
@given(seed=st.text(min_size=1, max_size=20), scope=st.sampled_from(SCOPES))
def test_numbers_are_a_permutation_shared_by_both_layouts(seed: str, scope: str) -> None:
    slots = generate_list(seed, STUDY.scope(scope))
    redcap = [line.split(",")[0] for line in lf.to_redcap(slots, STUDY, scope).splitlines()[1:]]
    sealed = [
        line.split(",")[0] for line in lf.to_sealed_envelope(slots, STUDY, scope).splitlines()[1:]
    ]
    assert redcap == sealed
    assert sorted(int(n.split("-")[1]) for n in redcap) == list(range(1, len(slots) + 1))
    assert all(n.startswith(f"{scope}-") and "B" not in n for n in redcap)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.text(min_size=1, max_size=20),
    scope=st.sampled_from(SCOPES),
    names=st.booleans(),
    whole_level=st.booleans(),
)
def test_sealed_envelope_parse_gives_the_same_slots(
    seed: str, scope: str, names: bool, whole_level: bool
) -> None:
    slots = generate_list(seed, STUDY.scope(scope))
    text = sealed_envelope(slots, names, whole_level)
    assert lf.parse_sealed_envelope(text, STUDY, scope) == sorted(slots)


def test_redcap_layout_and_codes() -> None:
    slots = generate_list("layout", STUDY.scope("P2"))
    lines = lf.to_redcap(slots, STUDY, "P2").splitlines()
    assert (
        lines[0] == "redcap_randomization_number,redcap_randomization_group,sledai_group,pred_group"
    )
    assert lf.arm_groups(STUDY) == {"1": "IMC002", "2": "PLACEBO"}
    first = slots[0]
    group = "1" if first.arm == "IMC002" else "2"
    number, rest = lines[1].split(",", 1)
    assert re.fullmatch(r"P2-[0-9]{4}", number) and rest == f"{group},0,0"
    assert lines[-1].endswith(",1,1")
    assert lf.to_redcap(generate_list("x", STUDY.scope("C1")), STUDY, "C1").startswith(
        "redcap_randomization_number,redcap_randomization_group\n"
    )


def test_the_former_block_numbers_still_import_exactly() -> None:
    """Files exported before the numbers became opaque carry the blocks: read from them."""
    slots = generate_list("former", STUDY.scope("P2"))
    position = {stratum: i for i, stratum in enumerate(STUDY.scope("P2").strata, 1)}
    lines = ["redcap_randomization_number,redcap_randomization_group,sledai_group,pred_group"]
    for s in sorted(slots, key=lambda s: (position[s.stratum], s.sequence)):
        codes = ["0" if "<" in level else "1" for level in s.stratum.split("/")]
        number = f"P2-{position[s.stratum]}-{s.sequence:04d}-B{s.block}-{s.block_size}"
        lines.append(",".join([number, "1" if s.arm == "IMC002" else "2", *codes]))
    assert lf.parse_redcap("\n".join(lines) + "\n", STUDY, "P2") == sorted(slots)
    lines[5] = "P2-3-0005-B2-4," + lines[5].split(",", 1)[1]
    with pytest.raises(ListImportError, match="names stratum 3 but the strata columns give 1"):
        lf.parse_redcap("\n".join(lines) + "\n", STUDY, "P2")


def test_a_bad_redcap_file_names_every_bad_row_and_column() -> None:
    lines = lf.to_redcap(generate_list("bad", STUDY.scope("P2")), STUDY, "P2").splitlines()
    number, _, sledai, pred = lines[1].split(",")
    lines[1] = f"{number},3,{sledai},{pred}"  # no group 3
    number, group, _, pred = lines[4].split(",")
    lines[4] = f"{number},{group},2,{pred}"  # no code 2
    lines[7] = lines[9].split(",")[0] + "," + lines[7].split(",", 1)[1]  # a repeated number
    with pytest.raises(ListImportError) as refused:
        lf.parse_redcap("\n".join(lines) + "\n", STUDY, "P2")
    assert refused.value.problems == [
        "row 2, column 'redcap_randomization_group': '3' is not a group (1 = IMC002, 2 = PLACEBO)",
        "row 5, column 'sledai_group': '2' is not a level of SLEDAI",
        f"row 10, column 'redcap_randomization_number': {lines[9].split(',')[0]!r} is also the "
        "number of row 8",
    ]


def test_arms_that_do_not_split_into_balanced_blocks_are_refused_at_their_row() -> None:
    lines = lf.to_redcap(generate_list("unbalanced", STUDY.scope("C1")), STUDY, "C1").splitlines()
    number, group = lines[6].split(",")
    lines[6] = f"{number},{'2' if group == '1' else '1'}"  # block 2 no longer 3:1
    with pytest.raises(ListImportError) as refused:
        lf.parse_redcap("\n".join(lines) + "\n", STUDY, "C1")
    (problem,) = refused.value.problems
    assert problem == (
        "row 6: stratum ALL: from here the arms do not split into blocks of 4 balanced to the "
        "ratio 3 IMC002:1 PLACEBO (slot 5 of 8 in this stratum)"
    )


def test_a_bad_sealed_envelope_file_names_every_bad_row() -> None:
    lines = sealed_envelope(generate_list("bad", STUDY.scope("P2"))).splitlines()
    lines[2] = lines[2].replace("Placebo", "Aspirin").replace("IMC-002", "Aspirin")
    lines[3] = ",".join([*lines[3].split(",")[:4], "<5", "<10"])
    # in another stratum (the gap rows 3 and 4 leave stops the block checks of the first)
    other = next(i for i, line in enumerate(lines) if line.endswith(",<10,>=10"))
    cells = lines[other].split(",")
    lines[other] = ",".join([cells[0], cells[1], "5", *cells[3:]])  # wrong declared size
    with pytest.raises(ListImportError) as refused:
        lf.parse_sealed_envelope("\n".join(lines) + "\n", STUDY, "P2")
    problems = refused.value.problems
    for row in (3, 4, other + 1):
        assert any(p.startswith(f"row {row}") for p in problems), (row, problems)
    assert "row 3, column 'Treatment': 'Aspirin' is not an arm" in problems[0]
    assert "row 4, column 'SLEDAI': '<5' is not a level of SLEDAI" in problems


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Sequence,Block,Treatment,SLEDAI,PRED\n", "column 'Block size' is missing"),
        ("Sequence,Block,Block size,Treatment,SLEDAI,PRED,Extra\n", "column 7 'Extra': not a"),
        ("Sequence,Block,Block size,Treatment,SLEDAI,PRED,,Notes\n", "no slots"),
        ("Sequence,Block,Block size,Treatment,SLEDAI\n", "--column 'THEIRS=CODE'"),
        ("Sequence,Block,Block size,Treatment,SLEDAI,PRED\n", "no slots"),
    ],
)
def test_sealed_envelope_headers_are_checked(text: str, message: str) -> None:
    with pytest.raises(ListImportError, match=message):
        lf.parse_sealed_envelope(text, STUDY, "P2")


def test_unknown_scope_and_format_are_refused() -> None:
    with pytest.raises(ListImportError, match=r"unknown scope 'P9' \(known: C1, C2, C3, P2\)"):
        lf.parse_redcap("x\n", STUDY, "P9")
    with pytest.raises(ListImportError, match="unknown format"):
        lf.parse("x\n", study=STUDY, file_format="xml", scope="P2")


@settings(max_examples=12, deadline=None)
@given(seed=st.text(min_size=1, max_size=20), scope=st.sampled_from(SCOPES))
def test_list_files_need_no_formula_neutralising(seed: str, scope: str) -> None:
    """The list files are written as they are (docs/decisions.md): no cell of the canonical CSV
    or the REDCap table starts a formula, so neutralising them would change nothing, and the
    canonical text, whose hash is the commitment, stays exactly what docs/randomization.md says."""
    slots = generate_list(seed, STUDY.scope(scope))
    for text in (
        to_csv(slots),
        lf.to_redcap(slots, STUDY, scope),
        lf.to_sealed_envelope(slots, STUDY, scope),
    ):
        table = list(csv.reader(io.StringIO(text)))
        assert all(csv_cell(cell) == cell for row in table for cell in row), text
        assert csv_text(table[0], table[1:]) == text.replace("\r\n", "\n")
