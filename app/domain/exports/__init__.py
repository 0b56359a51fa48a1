"""Pure builders of the data exports: SDTM-style CSV datasets with their define-style
descriptions, CDISC ODM 1.3.2 XML and a FHIR R5 bundle (docs/exports.md).

Every builder takes an `ExportData` snapshot (records.py) read by app/services/exports.py and
returns text or bytes; none does I/O. A blinded snapshot carries no arm, kit content or lot, and
the builders write no arm value for it either.
"""
