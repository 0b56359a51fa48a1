"""REDCap and Sealed Envelope layouts of a list: export, parse, and the canonical rules on both."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import list_formats as lf
from app.domain.csv_cells import csv_cell, csv_text
from app.domain.randomization_list import ListImportError, Slot, generate_list, to_csv
from app.domain.study import load_study

STUDY = load_study()
SCOPES = [s.code for s in STUDY.scopes()]


def sealed_envelope(slots: list[Slot], names: bool = True, whole_level: bool = False) -> str:
    """A Sealed Envelope style export: Sequence, Block, Block size, Treatment, strata columns."""
    scope = STUDY.scope(slots[0].scope)
    factors = lf.factors(STUDY, scope)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*lf.SE_COLUMNS, *(f.code for f in factors)])
    for s in slots:
        levels = s.stratum.split("/") if factors else []
        values = [
            lvl if whole_level else lvl[len(f.code) :]
            for f, lvl in zip(factors, levels, strict=True)
        ]
        treatment = STUDY.arm(s.arm).name if names else s.arm
        writer.writerow([s.sequence, s.block, s.block_size, treatment, *values])
    return out.getvalue()


@settings(max_examples=50, deadline=None)
@given(seed=st.text(min_size=1, max_size=20), scope=st.sampled_from(SCOPES))
def test_redcap_export_then_parse_gives_the_same_slots(seed: str, scope: str) -> None:
    slots = generate_list(seed, STUDY.scope(scope))
    assert lf.parse_redcap(lf.to_redcap(slots, STUDY, scope), STUDY, scope) == sorted(slots)


@settings(max_examples=50, deadline=None)
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
    assert lines[1] == f"P2-1-0001-B1-{first.block_size},{group},0,0"
    last_stratum = [s for s in slots if s.stratum == "SLEDAI>=10/PRED>=10"]
    assert lines[-1].startswith(f"P2-4-{len(last_stratum):04d}-") and lines[-1].endswith(",1,1")
    assert lf.to_redcap(generate_list("x", STUDY.scope("C1")), STUDY, "C1").startswith(
        "redcap_randomization_number,redcap_randomization_group\n"
    )


def test_redcap_without_numbers_rebuilds_single_size_blocks_only() -> None:
    slots = generate_list("nonumber", STUDY.scope("C1"))
    text = lf.to_redcap(slots, STUDY, "C1")
    stripped = "\n".join(line.split(",", 1)[1] for line in text.splitlines()) + "\n"
    assert lf.parse_redcap(stripped, STUDY, "C1") == sorted(slots)
    p2 = lf.to_redcap(generate_list("nonumber", STUDY.scope("P2")), STUDY, "P2")
    stripped = "\n".join(line.split(",", 1)[1] for line in p2.splitlines()) + "\n"
    with pytest.raises(ListImportError, match="cannot be rebuilt"):
        lf.parse_redcap(stripped, STUDY, "P2")


def test_a_bad_redcap_file_names_every_bad_row() -> None:
    lines = lf.to_redcap(generate_list("bad", STUDY.scope("P2")), STUDY, "P2").splitlines()
    number, _, sledai, pred = lines[1].split(",")
    lines[1] = f"{number},3,{sledai},{pred}"  # no group 3
    number, group, _, pred = lines[4].split(",")
    lines[4] = f"{number},{group},2,{pred}"  # no code 2
    lines[7] = "P2-9-0007-B2-6," + lines[7].split(",", 1)[1]  # stratum 9 vs columns
    lines[10] = "nonsense," + lines[10].split(",", 1)[1]
    del lines[20]  # a gap in the sequence
    with pytest.raises(ListImportError) as refused:
        lf.parse_redcap("\n".join(lines) + "\n", STUDY, "P2")
    problems = refused.value.problems
    for row in (2, 5, 8, 11, 21):
        assert any(p.startswith(f"row {row}:") for p in problems), (row, problems)
    assert "unknown redcap_randomization_group '3' (1 = IMC002, 2 = PLACEBO)" in problems[0]


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
        assert any(p.startswith(f"row {row}:") for p in problems), (row, problems)
    assert any("unknown Treatment 'Aspirin'" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Sequence,Block,Treatment,SLEDAI,PRED\n", "column 'Block size' is missing"),
        ("Sequence,Block,Block size,Treatment,SLEDAI,PRED,Extra\n", "unknown column 'Extra'"),
        ("Sequence,Block,Block size,Treatment,SLEDAI,PRED\n", "no slots"),
    ],
)
def test_sealed_envelope_headers_are_checked(text: str, message: str) -> None:
    with pytest.raises(ListImportError, match=message):
        lf.parse_sealed_envelope(text, STUDY, "P2")


def test_unknown_scope_and_format_are_refused() -> None:
    with pytest.raises(ListImportError, match="unknown scope"):
        lf.parse_redcap("x\n", STUDY, "P9")
    with pytest.raises(ListImportError, match="unknown format"):
        lf.parse("x\n", study=STUDY, file_format="xml", scope="P2")


@settings(max_examples=30, deadline=None)
@given(seed=st.text(min_size=1, max_size=20), scope=st.sampled_from(SCOPES))
def test_list_files_need_no_formula_neutralising(seed: str, scope: str) -> None:
    """The list files are written as they are (docs/decisions.md): no cell of the canonical CSV
    or the REDCap table starts a formula, so neutralising them would change nothing, and the
    canonical text, whose hash is the commitment, stays exactly what docs/randomization.md says."""
    slots = generate_list(seed, STUDY.scope(scope))
    for text in (to_csv(slots), lf.to_redcap(slots, STUDY, scope)):
        table = list(csv.reader(io.StringIO(text)))
        assert all(csv_cell(cell) == cell for row in table for cell in row), text
        assert csv_text(table[0], table[1:]) == text
