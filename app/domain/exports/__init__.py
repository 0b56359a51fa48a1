"""Pure builders of the data exports: SDTMIG 3.4 datasets (SAS XPT v5 with Define-XML 2.1, or
CSV with define.csv), CDISC ODM 1.3.2 XML and a FHIR R5 bundle (docs/exports.md).

Every builder takes an `ExportData` snapshot (records.py) read by app/services/exports.py and
returns text or bytes; none touches the database or the network (the XPT writer goes through
a temporary file, pyreadstat's only way). A blinded snapshot carries no arm, kit content or lot, and
the builders write no arm value for it either.
"""
