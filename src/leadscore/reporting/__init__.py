"""The reporting stage: what a salesperson opens (report.xlsx, report.html) and the formula guard
on every text cell written for spreadsheets and CRMs."""
