"""Evaluation: ranking metrics with uncertainty (`metrics`), linking and end-to-end evaluation."""
