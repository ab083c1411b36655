"""Small value normalisers shared by the source readers (ids, names, genres, numbers)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from rar.matching import move_trailing_article, parse_title

_IMDB_RE = re.compile(r"(?:tt)?0*(\d{1,9})$")

# Source genre spellings mapped to one vocabulary (lower case), so a union of genres has no twins.
GENRE_SYNONYMS = {
    "sci-fi": "science fiction",
    "scifi": "science fiction",
    "science-fiction": "science fiction",
    "children's": "children",
    "childrens": "children",
    "kids": "children",
    "film-noir": "film noir",
    "musical": "musical",
    "music": "music",
    "documentary": "documentary",
    "tv movie": "tv movie",
    "(no genres listed)": "",
    "unknown": "",
}


def imdb_id(value: object) -> str | None:
    """`tt0133093` from 'tt0133093', '0133093', 133093 or 133093.0; None when absent or not an id."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        value = int(value)
    text = str(value).strip()
    if not text or text.lower() in {"nan", "none", "\\n", "null"}:
        return None
    match = _IMDB_RE.match(text)
    if not match:
        return None
    number = int(match.group(1))
    if number == 0:
        return None
    return f"tt{number:07d}"


def split_names(value: object, sep: str = ",") -> list[str]:
    """'A, B, C' or ['A', 'B'] -> ['A', 'B', 'C'] with blanks and duplicates removed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    parts: Iterable[object] = value if isinstance(value, (list, tuple)) else str(value).split(sep)
    out: list[str] = []
    for part in parts:
        name = " ".join(str(part).split())
        if name and name.lower() not in {"nan", "none", "n/a", "\\n"} and name not in out:
            out.append(name)
    return out


def genres(value: object, sep: str = ",") -> list[str]:
    """Genres in one lower-case vocabulary (e.g. 'Sci-Fi' -> 'science fiction')."""
    out: list[str] = []
    for name in split_names(value, sep):
        key = name.lower()
        key = GENRE_SYNONYMS.get(key, key)
        if key and key not in out:
            out.append(key)
    return out


def number(value: object) -> float | None:
    """A float from '142 min', '8.8', '1,234' or a number; None for blanks."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    text = str(value).replace(",", "").strip()
    match = re.match(r"^-?\d+(?:\.\d+)?", text)
    return float(match.group(0)) if match else None


def integer(value: object) -> int | None:
    n = number(value)
    return int(n) if n is not None else None


def year(value: object) -> int | None:
    """A plausible release year (1870..2100) or None."""
    n = integer(value)
    return n if n is not None and 1870 <= n <= 2100 else None


def display_title(title: str) -> str:
    """Readable title: collapse spaces, move trailing articles ('Matrix, The' -> 'The Matrix')."""
    return move_trailing_article(" ".join(str(title).split()))


def title_and_year(raw: str) -> tuple[str, int | None]:
    """'Heat (1995)' -> ('Heat', 1995); MovieLens alternative titles in parentheses are dropped."""
    parsed = parse_title(" ".join(str(raw).split()))
    return display_title(parsed.title), parsed.year


def text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    cleaned = " ".join(str(value).split())
    return cleaned or None
