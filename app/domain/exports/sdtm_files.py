"""The SDTM export's files: every dataset as SAS XPT v5 (pyreadstat) with a Define-XML 2.1, or
as CSV with define.csv, in one zip. Conventions and choices: docs/exports.md."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import pandas as pd  # type: ignore[import-untyped]
import pyreadstat

from app.domain.csv_cells import csv_records
from app.domain.exports import sdtm, sdtm_trial
from app.domain.exports.define_xml import define_xml
from app.domain.exports.records import ExportData
from app.domain.exports.sdtm_variables import DATASETS, Dataset, Row

FileFormat = Literal["xpt", "csv"]
BUILDERS: dict[str, Callable[[ExportData], Dataset]] = {
    "dm": sdtm.dm,
    "ds": sdtm.ds,
    "ex": sdtm.ex,
    "ta": sdtm_trial.ta,
    "te": sdtm_trial.te,
    "tv": sdtm_trial.tv,
}
DATASET_NAMES = tuple(DATASETS)
"""Every dataset, unblinded and blinded alike (the blinded trial design has one arm)."""


def datasets(data: ExportData) -> list[Dataset]:
    return [BUILDERS[name](data) for name in DATASET_NAMES]


def to_csv(dataset: Dataset) -> str:
    """The dataset as CSV: a header of the variable names, then one line a row (cells that a
    spreadsheet would take for a formula neutralised, `csv_records`)."""
    return csv_records([v.name for v in dataset.variables], dataset.rows)


DEFINE_COLUMNS = (
    "dataset",
    "variable",
    "label",
    "type",
    "length",
    "core",
    "role",
    "origin",
    "comment",
)


def define_rows(sets: Iterable[Dataset]) -> list[Row]:
    """Define-style metadata: one row per variable; the length is the longest value (at least
    1) for text, 8 for numbers, as in define.xml."""
    rows = []
    for dataset in sets:
        for var in dataset.variables:
            longest = max((len(r[var.name]) for r in dataset.rows), default=0)
            rows.append(
                {
                    "dataset": dataset.name.upper(),
                    "variable": var.name,
                    "label": var.label,
                    "type": var.type,
                    "length": "8" if var.type == "Num" else str(max(longest, 1)),
                    "core": var.core,
                    "role": var.role,
                    "origin": var.origin,
                    "comment": var.comment,
                }
            )
    return rows


def define_csv(sets: Iterable[Dataset]) -> str:
    return csv_records(DEFINE_COLUMNS, define_rows(sets))


def dataset_csv(data: ExportData, name: str) -> str:
    """One dataset (dm, ds, ex, ta, te, tv) or `define` as CSV."""
    if name == "define":
        return define_csv(datasets(data))
    if name not in BUILDERS:
        raise KeyError(name)
    return to_csv(BUILDERS[name](data))


def frame(dataset: Dataset) -> pd.DataFrame:
    """The dataset as a DataFrame: text as str ("" for null), numbers as float (NaN for null),
    the types SAS XPT holds."""
    columns: dict[str, list[str] | list[float]] = {}
    for var in dataset.variables:
        values = [r[var.name] for r in dataset.rows]
        if var.type == "Num":
            columns[var.name] = [float(v) if v else float("nan") for v in values]
        else:
            columns[var.name] = values
    return pd.DataFrame(columns, columns=[v.name for v in dataset.variables])


def to_xpt(dataset: Dataset) -> bytes:
    """SAS transport version 5 (the format FDA and PMDA accept), written by pyreadstat."""
    with tempfile.TemporaryDirectory(prefix="irt-xpt-") as folder:
        path = Path(folder) / f"{dataset.name}.xpt"
        pyreadstat.write_xport(
            frame(dataset),
            str(path),
            file_label=dataset.meta.label,
            column_labels=[v.label for v in dataset.variables],
            table_name=dataset.name.upper(),
            file_format_version=5,
        )
        return path.read_bytes()


def _zip(files: list[tuple[str, bytes]], data: ExportData) -> bytes:
    stamp = data.created_at.timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in files:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, body)
    return out.getvalue()


def sdtm_zip(data: ExportData, file_format: FileFormat = "csv") -> bytes:
    """Every dataset in one zip, entries dated at the snapshot time: XPT files with define.xml,
    or CSV files with define.csv."""
    sets = datasets(data)
    if file_format == "xpt":
        files = [(f"{d.name}.xpt", to_xpt(d)) for d in sets]
        files.append(("define.xml", define_xml(data, sets).encode("utf-8")))
    else:
        files = [(f"{d.name}.csv", to_csv(d).encode("utf-8")) for d in sets]
        files.append(("define.csv", define_csv(sets).encode("utf-8")))
    return _zip(files, data)
