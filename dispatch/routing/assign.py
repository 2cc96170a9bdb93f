"""Fill parts with units: a minimum-cost assignment that covers as many parts as possible."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

# Cost of a (part, unit) pair the unit cannot fill.
Cost = Callable[[int, int], float | None]


def assign(parts: int, units: int, cost: Cost) -> list[int | None]:
    """Return, per part, the index of the unit filling it (None: left open).

    The answer fills as many parts as any assignment can and, among those, has the least total
    cost. `cost(part, unit)` is None when the unit cannot fill the part. Each unit fills one
    part at most. Hungarian method (Kuhn-Munkres, O(parts² columns)); a plan has ten parts at
    most, so this is microseconds.
    """
    if parts == 0:
        return []
    table = [[cost(p, u) for u in range(units)] for p in range(parts)]
    real = [c for row in table for c in row if c is not None]
    # Leaving a part open must cost more than any assignment that fills one more part, and an
    # impossible pair more than leaving every part open.
    spread = (max(real) - min(real) + 1.0) if real else 1.0
    floor = min(real) if real else 0.0
    open_cost = spread * (parts + 1)
    never = open_cost * (parts + 1) * 4
    columns = units + parts  # every part has an "open" column of its own
    matrix = [[_entry(row, u, floor, never, open_cost) for u in range(columns)] for row in table]
    chosen = _hungarian(matrix, columns)
    return [u if u < units and table[p][u] is not None else None for p, u in enumerate(chosen)]


def _entry(row: list[float | None], u: int, floor: float, never: float, open_cost: float) -> float:
    if u >= len(row):
        return open_cost
    value = row[u]
    return never if value is None else value - floor


def _hungarian(matrix: Sequence[Sequence[float]], columns: int) -> list[int]:
    # The classic potentials form for rows <= columns, 1-based with a sentinel column 0.
    rows = len(matrix)
    u = [0.0] * (rows + 1)
    v = [0.0] * (columns + 1)
    owner = [0] * (columns + 1)
    way = [0] * (columns + 1)
    for row in range(1, rows + 1):
        owner[0] = row
        col0 = 0
        slack = [math.inf] * (columns + 1)
        used = [False] * (columns + 1)
        while True:
            used[col0] = True
            r0, delta, col1 = owner[col0], math.inf, 0
            for col in range(1, columns + 1):
                if used[col]:
                    continue
                reduced = matrix[r0 - 1][col - 1] - u[r0] - v[col]
                if reduced < slack[col]:
                    slack[col], way[col] = reduced, col0
                if slack[col] < delta:
                    delta, col1 = slack[col], col
            for col in range(columns + 1):
                if used[col]:
                    u[owner[col]] += delta
                    v[col] -= delta
                else:
                    slack[col] -= delta
            col0 = col1
            if owner[col0] == 0:
                break
        while col0:
            col1 = way[col0]
            owner[col0] = owner[col1]
            col0 = col1
    result = [0] * rows
    for col in range(1, columns + 1):
        if owner[col]:
            result[owner[col] - 1] = col - 1
    return result
