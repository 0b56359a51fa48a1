"""Files shaped like the ones REDCap and Sealed Envelope write (tests/fixtures), mixed-up files,
the block reading, and the concealment measure behind the REDCap export's numbers."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import concealment, list_blocks
from app.domain import list_formats as lf
from app.domain import randomization_list as rl
from app.domain.randomization_list import ListImportError, Slot, block_arms, generate_list
from app.domain.study import load_study

STUDY = load_study()
FIXTURES = Path(__file__).parents[1] / "fixtures"
DAGS = {"1330": "DE01", "1331": "DE02", "1332": "US01"}
SITES = ("DE01", "DE02", "US01")


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


def test_the_fixtures_keep_the_tools_bytes() -> None:
    """What each file is meant to show: REDCap's download (LF, no quotes, no BOM, empty
    numbers), a template filled in a spreadsheet (BOM, CRLF, blank columns, notes), Sealed
    Envelope's export (quoted text, CRLF)."""
    download = (FIXTURES / "redcap/allocation_download.csv").read_bytes()
    assert b"\r" not in download and b'"' not in download and not download.startswith(b"\xef")
    assert download.split(b"\n")[1].startswith(b",")
    template = (FIXTURES / "redcap/redcap_template.csv").read_bytes()
    assert template.startswith(b"\xef\xbb\xbf") and template.count(b"\r\n") > 800
    assert template.split(b"\r\n")[0].endswith(b",,,notes")
    sealed = (FIXTURES / "sealed_envelope/export_with_strata.csv").read_bytes()
    assert sealed.startswith(b'"Randomisation code","SLEDAI-2K score"') and b"\r\n" in sealed


@pytest.mark.parametrize("name", ["redcap/allocation_download.csv", "redcap/redcap_template.csv"])
def test_redcap_files_import_and_read_back_exactly(name: str) -> None:
    slots = lf.parse_redcap(fixture(name), STUDY, "P2")
    per_stratum = Counter(s.stratum for s in slots)
    assert set(per_stratum) == set(STUDY.scope("P2").strata)
    assert min(per_stratum.values()) >= STUDY.scope("P2").cap
    assert lf.parse_redcap(lf.to_redcap(slots, STUDY, "P2"), STUDY, "P2") == slots


@pytest.mark.parametrize(
    ("name", "file_format", "commitment"),
    [
        (
            "redcap/allocation_download.csv",
            "redcap",
            "e85fd39652fd6a055ccfe80edccfb7a77082ff3fdf1274ab8cf8478d7844995a",
        ),
        (
            "redcap/redcap_template.csv",
            "redcap",
            "eb00584b64cde1fa9dd4c61430efedf372c8a6e80095d8261d3f81cc1072fd30",
        ),
        (
            "sealed_envelope/export_with_strata.csv",
            "sealed-envelope",
            "2623e1725c947528f4e1851c461feed13f3796d4a912fd6c06d8191ad1f85133",
        ),
    ],
)
def test_each_fixture_imports_to_the_same_list_as_always(
    name: str, file_format: str, commitment: str
) -> None:
    """A regression anchor: the SHA-256 of what each committed file imports as."""
    slots = lf.parse(fixture(name), study=STUDY, file_format=file_format, scope="P2")["P2"]
    assert rl.commitment(slots) == commitment
    assert len({s.stratum for s in slots}) == 4 and len(slots) >= 4 * 194


def test_sealed_envelope_export_imports_exactly_with_its_own_headers() -> None:
    text = fixture("sealed_envelope/export_with_strata.csv")
    expected = lf.parse_sealed_envelope(text, STUDY, "P2")
    mapped = text.replace("SLEDAI-2K score", "Disease activity")
    with pytest.raises(ListImportError, match="--column 'THEIRS=CODE'"):
        lf.parse_sealed_envelope(mapped, STUDY, "P2")
    aliases = {"Disease activity": "SLEDAI"}
    assert lf.parse_sealed_envelope(mapped, STUDY, "P2", aliases=aliases) == expected
    again = lf.to_sealed_envelope(expected, STUDY, "P2")
    assert lf.parse_sealed_envelope(again, STUDY, "P2") == expected


def test_a_table_grouped_by_data_access_group_is_refused_by_name() -> None:
    text = fixture("redcap/allocation_download_by_dag.csv")
    with pytest.raises(ListImportError) as refused:
        lf.parse_redcap(text, STUDY, "C1", dag_sites=DAGS, sites=SITES)
    assert refused.value.problems == [
        "column 'redcap_data_access_group': rows of 3 Data Access Groups (DE01, DE02, US01): "
        "this table is grouped by site, and the lists of IMC-002 are not (one list per stratum "
        "for every site); export the table of a REDCap randomization that is not grouped by "
        "Data Access Group"
    ]
    with pytest.raises(ListImportError, match=r"row 2, column 'redcap_data_access_group': "):
        lf.parse_redcap(text, STUDY, "C1", sites=SITES)


def test_one_data_access_group_maps_to_its_site_by_id_or_by_unique_name() -> None:
    lines = fixture("redcap/allocation_download_by_dag.csv").splitlines()[:9]
    one_site = "\n".join(lines) + "\n"
    expected = lf.parse_redcap(one_site, STUDY, "C1", dag_sites=DAGS, sites=SITES)
    assert rl.commitment(expected) == (
        "a516278feaab6510d9199a9736dcc374f0de784bce5265daf5e65c1f4dfa6852"
    )
    by_name = one_site.replace(",1330", ",de01")
    assert lf.parse_redcap(by_name, STUDY, "C1", sites=SITES) == expected


@pytest.mark.parametrize(
    ("name", "file_format", "scope", "message"),
    [
        ("sealed_envelope/export_with_strata.csv", "redcap", "P2", "use --format sealed-envelope"),
        ("redcap/allocation_download.csv", "sealed-envelope", "P2", "use --format redcap"),
        ("redcap/allocation_download.csv", "redcap", "C1", "is this the P2 table? (not C1)"),
        ("redcap/redcap_template.csv", "canonical", "P2", "expected columns scope,stratum"),
        ("sealed_envelope/export_with_strata.csv", "sealed-envelope", "C2", "is this the P2"),
    ],
)
def test_mixed_up_files_are_refused_saying_what_they_look_like(
    name: str, file_format: str, scope: str, message: str
) -> None:
    with pytest.raises(ListImportError) as refused:
        lf.parse(fixture(name), study=STUDY, file_format=file_format, scope=scope)
    assert any(message in p for p in refused.value.problems), refused.value.problems


def test_a_shifted_row_and_an_unknown_column_are_named() -> None:
    lines = fixture("redcap/allocation_download.csv").splitlines()
    lines[3] = lines[3] + ",0"
    with pytest.raises(ListImportError, match=r"^row 4, column 5: a value beyond the header"):
        lf.parse_redcap("\n".join(lines) + "\n", STUDY, "P2")
    lines = fixture("redcap/allocation_download.csv").splitlines()
    lines[0] += ",sex"
    with pytest.raises(ListImportError, match=r"header, column 5 'sex': not a column"):
        lf.parse_redcap("\n".join(lines) + "\n", STUDY, "P2")


@settings(max_examples=30, deadline=None)
@given(
    blocks=st.lists(st.sampled_from([4, 6]), min_size=1, max_size=12),
    data=st.data(),
)
def test_rebuilt_blocks_are_balanced_and_keep_every_arm(
    blocks: list[int], data: st.DataObject
) -> None:
    scope = STUDY.scope("P2")
    arms: list[str] = []
    for size in blocks:
        arms += data.draw(st.permutations(block_arms(scope.allocation.ratio, size)))
    read = list_blocks.rebuild_blocks(arms, scope)
    assert len(read) == len(arms)
    start = 0
    while start < len(arms):
        block, size = read[start]
        assert all(read[i] == (block, size) for i in range(start, start + size))
        assert Counter(arms[start : start + size]) == Counter(
            block_arms(scope.allocation.ratio, size)
        )
        start += size


_FORMER = re.compile(r"^P2-[0-9]+-[0-9]+-B(?P<block>[0-9]+)-(?P<size>[0-9]+)$")


def _read_former(number: str) -> concealment.BlockView:
    """What a site reads off a number: the block and its size, if the number carries them."""
    match = _FORMER.match(number)
    return None if match is None else (int(match["block"]), int(match["size"]))


def _former_numbers(slots: list[Slot]) -> dict[tuple[str, int], str]:
    position = {stratum: i for i, stratum in enumerate(STUDY.scope("P2").strata, 1)}
    return {
        (s.stratum, s.sequence): f"P2-{position[s.stratum]}-{s.sequence:04d}-B{s.block}-"
        f"{s.block_size}"
        for s in slots
    }


def test_opaque_numbers_leave_a_site_only_what_the_arms_force() -> None:
    """Share of certain guesses for a site that knows the earlier arms of a stratum and sees
    the exported numbers, over 20 phase II lists: 28.1 % with the former numbers, 5.5 % with
    the opaque ones, the same as with no number at all."""
    scope = STUDY.scope("P2")
    before = after = nothing = total = 0
    for i in range(20):
        slots = generate_list(f"concealment {i}", scope)
        exported = lf.to_redcap(slots, STUDY, "P2").splitlines()[1:]
        assert not any(_read_former(line.split(",")[0]) for line in exported)
        opaque = list_blocks.opaque_numbers(sorted(slots))
        blank = {(s.stratum, s.sequence): "" for s in slots}
        measure = concealment.certain_guesses
        before += measure(slots, scope, numbers=_former_numbers(slots), read=_read_former).certain
        after += measure(slots, scope, numbers=opaque, read=_read_former).certain
        nothing += measure(slots, scope, numbers=blank, read=lambda _: None).certain
        total += len(slots)
    assert 0.27 < before / total < 0.30
    assert after == nothing and after / total < 0.07
