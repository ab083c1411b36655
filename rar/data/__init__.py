"""Datasets: MovieLens sessions and conversation samples."""
