"""Frames of one rollup table as one: text keys stay categorical over the union of the
pieces' categories, and a long period's pieces are joined without holding them twice
(kept apart from core/rollups, which is at its size)."""
from __future__ import annotations

import pandas as pd

from . import memory


def union_categories(frames: list[pd.DataFrame], col: str) -> pd.CategoricalDtype:
    """The categories of `col` over the frames: the first frame's order, then the others'
    new ones (so ties keep the order of the input as when it is read whole)."""
    cats = pd.Index([])
    for f in frames:
        if col not in f:
            continue
        values = (f[col].cat.categories if isinstance(f[col].dtype, pd.CategoricalDtype)
                  else pd.Index(f[col].dropna().unique()))
        cats = cats.append(values[~values.isin(cats)])
    return pd.CategoricalDtype(cats)


def _categorical(frames: list[pd.DataFrame], col: str) -> bool:
    return any(isinstance(f[col].dtype, pd.CategoricalDtype) for f in frames if col in f)


def same_categories(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The frames with each column that is categorical in any of them categorical in all,
    over the same categories (`union_categories`), so concatenating keeps it
    categorical."""
    out = list(frames)
    for col in frames[0].columns:
        if _categorical(frames, col):
            dtype = union_categories(frames, col)
            out = [f.assign(**{col: f[col].astype(dtype)}) if col in f else f for f in out]
    return out


def concat_consuming(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames (all with the same columns) one after the other, as pd.concat of
    `same_categories` gives them, built a column at a time from the pieces' columns,
    each let go once copied and its heap trimmed: the list is emptied, so where it held
    the only reference to the pieces the join holds the result and what is left of the
    pieces, not the result and every piece (26 large weeks: the main process's peak at
    the end of the load went from 3.0 to 2.8 GiB). A caller's frames are not changed."""
    columns = list(frames[0].columns)
    categorical = {col: union_categories(frames, col) for col in columns
                   if _categorical(frames, col)}
    parts = {col: [f[col] for f in frames] for col in columns}
    frames.clear()
    out = {}
    for col in columns:
        pieces = parts.pop(col)
        if col in categorical:
            pieces = [p.astype(categorical[col]) for p in pieces]
        out[col] = pd.concat(pieces, ignore_index=True)
        del pieces
        memory.trim_if_grown()     # the pieces' heap, freed, not resident as the next grows
    return pd.DataFrame(out, columns=columns, copy=False)
