"""Report files for the hospital: XLSX workbooks and the monthly PDF."""
