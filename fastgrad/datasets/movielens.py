"""Reader for MovieLens rating files (nothing is downloaded).

Supported layouts, detected from the first line when ``sep="auto"``:

- ml-100k ``u.data``: ``user<TAB>item<TAB>rating<TAB>timestamp``;
- ml-1m / ml-10m ``ratings.dat``: ``user::item::rating::timestamp``;
- ml-latest ``ratings.csv``: ``userId,movieId,rating,timestamp`` with a header line;
- any of these with 3 columns (no timestamp) or whitespace separators.

A directory is accepted too: its ``u.data``, ``ratings.dat`` or ``ratings.csv``
is read.
"""
import os
from typing import NamedTuple

import numpy as np

__all__ = ["load_movielens", "Ratings", "sniff_separator"]

_CANDIDATES = ("u.data", "ratings.dat", "ratings.csv")


class Ratings(NamedTuple):
    """Ratings as parallel arrays (unpacks as ``users, items, ratings, timestamps``)."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray   # int64; empty when the file has no timestamp column


def sniff_separator(line):
    """Guess the field separator of one MovieLens line: ``"::"``, tab, comma, ``";"`` or whitespace."""
    for sep in ("::", "\t", ",", ";", "|"):
        if sep in line:
            return sep
    return None   # whitespace


def _resolve(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        for name in _CANDIDATES:
            cand = os.path.join(path, name)
            if os.path.exists(cand):
                return cand
        raise FileNotFoundError(f"no MovieLens ratings file ({', '.join(_CANDIDATES)}) in {path}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"ratings file not found: {path}")
    return path


def _is_number(tok):
    try:
        float(tok)
        return True
    except ValueError:
        return False


def load_movielens(path, *, sep="auto", as_frame=False, encoding="latin-1"):
    """Read a MovieLens ratings file.

    Parameters
    ----------
    path : str or path-like
        A ratings file (``u.data``, ``ratings.dat``, ``ratings.csv`` or any file
        in those formats) or a directory containing one.
    sep : str, default="auto"
        Field separator; ``"auto"`` detects ``"::"``, tab, comma, ``";"``,
        ``"|"`` or whitespace from the first line. ``"\\t"``/``"tab"`` and
        ``"whitespace"`` are accepted spellings.
    as_frame : bool, default=False
        Return a pandas DataFrame with columns ``user, item, rating[, timestamp]``.
    encoding : str, default="latin-1"
        Text encoding (MovieLens files are Latin-1).

    Returns
    -------
    Ratings or pandas.DataFrame
        ``(users, items, ratings, timestamps)``; ids are int64 when every id is
        an integer, else strings; ratings are float64.

    Raises
    ------
    FileNotFoundError
        If no file is found.
    ValueError
        Empty file, ragged rows, fewer than 3 columns or non-numeric ratings.
    """
    path = _resolve(path)
    with open(path, encoding=encoding) as fh:
        text = fh.read()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: no ratings found (empty file)")
    if sep == "auto":
        sep = sniff_separator(lines[0])
    elif sep in ("tab", "\\t"):
        sep = "\t"
    elif sep in ("whitespace", " ", None):
        sep = None
    elif not isinstance(sep, str) or not sep:
        raise ValueError(f"sep must be 'auto', 'tab', 'whitespace' or a separator string, got {sep!r}")

    def split(line):
        return [tok.strip() for tok in (line.split(sep) if sep is not None else line.split())]

    first = split(lines[0])
    if len(first) >= 3 and not _is_number(first[2]):       # header line (ml-latest csv)
        lines = lines[1:]
        if not lines:
            raise ValueError(f"{path}: no ratings found (header only)")
        first = split(lines[0])
    ncol = len(first)
    if ncol < 3:
        raise ValueError(f"{path}: expected at least 3 fields (user, item, rating) per line, "
                         f"got {ncol} with separator {sep!r}")
    rows = [split(ln) for ln in lines]
    bad = next((k for k, row in enumerate(rows) if len(row) != ncol), None)
    if bad is not None:
        raise ValueError(f"{path}: line {bad + 1} has {len(rows[bad])} fields, expected {ncol}")
    cols = list(zip(*rows))
    try:
        ratings = np.array(cols[2], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric rating: {exc}") from None
    users, items = _ids(cols[0]), _ids(cols[1])
    if ncol >= 4:
        try:
            timestamps = np.array(cols[3], dtype=np.float64).astype(np.int64)
        except ValueError as exc:
            raise ValueError(f"{path}: non-numeric timestamp: {exc}") from None
    else:
        timestamps = np.empty(0, dtype=np.int64)
    if as_frame:
        import pandas as pd
        data = {"user": users, "item": items, "rating": ratings}
        if timestamps.size:
            data["timestamp"] = timestamps
        return pd.DataFrame(data)
    return Ratings(users, items, ratings, timestamps)


def _ids(tokens):
    try:
        return np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        return np.array(tokens, dtype=str)
