"""Reports: remediation metrics (:mod:`~patchwarden.report.metrics`), the self-contained HTML /
CSV / JSON report (:mod:`~patchwarden.report.html`) and the compliance evidence export
(:mod:`~patchwarden.report.evidence`).

:func:`~patchwarden.report.data.collect` reads what the store knows into plain records; the
rest is pure.
"""
