"""Evaluation: end-to-end evaluation of systems over linked samples, and reports."""
