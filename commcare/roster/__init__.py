"""The office roster (花名册) in and out: reading a CSV or XLSX file, checking it, writing it to the register, exporting it, and finding likely duplicates."""
