"""Exact maximum-weight bipartite matching without SciPy, for the tracker's association step.

This replaces ``scipy.optimize.linear_sum_assignment(score, maximize=True)``: importing
``scipy.optimize`` costs some 46 MB of resident memory, close to what the rest of the runtime
needs together, for a single function. The tracker's score matrices are small (up to about 100
tracks x 100 detections) and very sparse (a detection overlaps one track, seldom two or three),
so the graph of non-zero scores is first split into connected components: a component with a
single row or a single column is solved by argmax, and only the rare larger ones go to an exact
shortest augmenting path (Hungarian / Jonker-Volgenant) solver, O(n^3): in plain Python for
tiny components, where NumPy's per-call overhead dominates, else with its inner loop vectorised
over columns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.intp]

# Components with at most this many entries go to the plain-Python solver.
_SMALL = 36


def max_weight_matching(
    score: npt.NDArray[np.float32] | npt.NDArray[np.float64],
) -> tuple[IntArray, IntArray]:
    """One-to-one pairs (rows, cols), sorted by row, with ``score > 0`` maximising the total.

    ``score`` is a 2-D non-negative matrix of any shape, empty included. The result is what
    ``linear_sum_assignment(score, maximize=True)`` gives after dropping its zero-score pairs,
    up to ties between equally good assignments.
    """
    if score.ndim != 2:
        raise ValueError(f"score must be 2-D, got shape {score.shape}")
    positive = score > 0
    rows, cols = np.nonzero(positive)
    if rows.size == 0:
        empty = np.empty(0, np.intp)
        return empty, empty
    row_degree = np.bincount(rows, minlength=score.shape[0])
    col_degree = np.bincount(cols, minlength=score.shape[1])
    # The common case: a track and a detection that overlap only each other.
    alone = (row_degree[rows] == 1) & (col_degree[cols] == 1)
    if alone.all():  # nonzero() gives them sorted by row already
        return rows.astype(np.intp, copy=False), cols.astype(np.intp, copy=False)
    left_rows, left_cols = rows[~alone], cols[~alone]
    edges = list(zip(left_rows.tolist(), left_cols.tolist(), strict=True))
    weight = dict(zip(edges, score[left_rows, left_cols].tolist(), strict=True))
    pairs: list[tuple[int, int]] = []
    for comp_rows, comp_cols in _components(left_rows.tolist(), left_cols.tolist()):
        if len(comp_rows) == 1:
            row = comp_rows[0]
            pairs.append((row, max(comp_cols, key=lambda col: weight.get((row, col), 0.0))))
        elif len(comp_cols) == 1:
            col = comp_cols[0]
            pairs.append((max(comp_rows, key=lambda row: weight.get((row, col), 0.0)), col))
        else:
            sub = [[weight.get((r, c), 0.0) for c in comp_cols] for r in comp_rows]
            pairs.extend(
                (comp_rows[i], comp_cols[j]) for i, j in _max_assignment(sub) if sub[i][j] > 0
            )
    extra = np.array(pairs, np.intp).reshape(-1, 2)
    all_rows = np.concatenate([rows[alone], extra[:, 0]]).astype(np.intp, copy=False)
    all_cols = np.concatenate([cols[alone], extra[:, 1]]).astype(np.intp, copy=False)
    order = np.argsort(all_rows, kind="stable")
    return all_rows[order], all_cols[order]


def _components(rows: list[int], cols: list[int]) -> list[tuple[list[int], list[int]]]:
    """Connected components (sorted rows, sorted cols) of the bipartite graph of edges rows-cols.

    Union-find in plain Python: after the fast path there are only a handful of edges left.
    """
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(node: tuple[int, int]) -> tuple[int, int]:
        root = parent.setdefault(node, node)
        while root != parent[root]:
            root = parent[root]
        while node != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for row, col in zip(rows, cols, strict=True):
        parent[find((1, col))] = find((0, row))
    members: dict[tuple[int, int], tuple[set[int], set[int]]] = {}
    for node in parent:
        side, index = node
        members.setdefault(find(node), (set(), set()))[side].add(index)
    return [(sorted(r), sorted(c)) for r, c in members.values()]


def _max_assignment(score: list[list[float]]) -> list[tuple[int, int]]:
    """Full assignment (every row or every column used) maximising the total score."""
    top = max(max(line) for line in score)
    transpose = len(score) > len(score[0])
    if transpose:
        score = [list(line) for line in zip(*score, strict=True)]
    cost = [[top - value for value in line] for line in score]
    if len(cost) * len(cost[0]) <= _SMALL:
        pairs = _min_assignment_small(cost)
    else:
        rows, cols = _min_assignment(np.array(cost, np.float64))
        pairs = list(zip(rows.tolist(), cols.tolist(), strict=True))
    return [(j, i) for i, j in pairs] if transpose else pairs


def _min_assignment(cost: npt.NDArray[np.float64]) -> tuple[IntArray, IntArray]:
    """Minimum-cost assignment of every row of ``cost`` (rows <= cols) to a distinct column.

    Shortest augmenting paths with row and column potentials (Hungarian method in the
    Jonker-Volgenant form): each row is added in turn and a Dijkstra-like search over columns,
    vectorised, finds the cheapest alternating path to a free column. Index 0 of the column
    arrays is a virtual column holding the row being added; rows are 1-based in ``owner``.
    """
    n, m = cost.shape
    row_pot = np.zeros(n + 1)
    col_pot = np.zeros(m + 1)
    owner = np.zeros(m + 1, np.intp)  # row (1-based) assigned to each column, 0 for none
    via = np.zeros(m + 1, np.intp)  # previous column on the shortest path
    for row in range(1, n + 1):
        owner[0] = row
        col = 0
        dist = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[col] = True
            r = owner[col]
            reduced = cost[r - 1] - row_pot[r] - col_pot[1:]
            better = ~used[1:] & (reduced < dist[1:])
            dist[1:][better] = reduced[better]
            via[1:][better] = col
            free_dist = np.where(used, np.inf, dist)
            nxt = int(np.argmin(free_dist))
            delta = free_dist[nxt]
            row_pot[owner[used]] += delta
            col_pot[used] -= delta
            dist[~used] -= delta
            col = nxt
            if owner[col] == 0:
                break
        while col:  # augment along the path
            prev = via[col]
            owner[col] = owner[prev]
            col = prev
    assigned = np.nonzero(owner[1:])[0]
    return (owner[1:][assigned] - 1).astype(np.intp), assigned.astype(np.intp)


def _min_assignment_small(table: list[list[float]]) -> list[tuple[int, int]]:
    """``_min_assignment`` in plain Python, same algorithm, for tiny matrices: (row, col) pairs."""
    n, m = len(table), len(table[0])
    row_pot = [0.0] * (n + 1)
    col_pot = [0.0] * (m + 1)
    owner = [0] * (m + 1)
    via = [0] * (m + 1)
    for row in range(1, n + 1):
        owner[0] = row
        col = 0
        dist = [float("inf")] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[col] = True
            r = owner[col]
            costs = table[r - 1]
            base = row_pot[r]
            delta = float("inf")
            nxt = 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = costs[j - 1] - base - col_pot[j]
                    if reduced < dist[j]:
                        dist[j] = reduced
                        via[j] = col
                    if dist[j] < delta:
                        delta = dist[j]
                        nxt = j
            for j in range(m + 1):
                if used[j]:
                    row_pot[owner[j]] += delta
                    col_pot[j] -= delta
                else:
                    dist[j] -= delta
            col = nxt
            if owner[col] == 0:
                break
        while col:
            prev = via[col]
            owner[col] = owner[prev]
            col = prev
    return sorted((owner[j] - 1, j - 1) for j in range(1, m + 1) if owner[j])
