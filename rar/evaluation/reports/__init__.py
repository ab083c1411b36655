"""Reports over saved evaluations: hallucination, popularity bias, paired comparison, k sweep.

Each report reads the per-sample outputs `rar evaluate` saved (recall-vs-k runs the evaluator
itself) and writes a markdown file plus PNG plots (matplotlib, Agg backend).
"""

from rar.evaluation.reports.bundle import standard_reports
from rar.evaluation.reports.compare import compare_report
from rar.evaluation.reports.hallucination import hallucination_report
from rar.evaluation.reports.popularity import popularity_report
from rar.evaluation.reports.recall_vs_k import recall_vs_k_report

__all__ = [
    "compare_report",
    "hallucination_report",
    "popularity_report",
    "recall_vs_k_report",
    "standard_reports",
]
