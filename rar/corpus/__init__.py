"""The ground floor: the read-only runtime `Corpus` and its typed `Movie` record.

Every layer reads movies through these; `corpus_builder` writes the format they read
(`rar.corpus.schema`) and never the reverse.
"""

from rar.corpus.corpus import Corpus
from rar.corpus.movie import Movie

__all__ = ["Corpus", "Movie"]
