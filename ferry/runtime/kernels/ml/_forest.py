"""A vectorised decision-forest evaluator shared by the TreeEnsemble* kernels.

Every encoding (the legacy ``nodes_*``/``target_*``/``class_*`` tuples and TreeEnsemble's
``nodes_*``/``leaf_*`` split) is converted to one flat node table: per node a mode, a
feature, a threshold, the two children and the NaN direction; leaves carry no test
(mode ``LEAF``). Evaluation walks all batch rows down all trees at once, one level per
step, then gathers the (row, target, weight) votes of the leaves reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER", "LEAF")
LEQ, LT, GTE, GT, EQ, NEQ, MEMBER, LEAF = range(len(MODES))
AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")


@dataclass
class Forest:
    """Flat node table; ``votes_*`` list every (leaf node, target, weight) contribution."""

    modes: np.ndarray  # int, one of MODES' indices
    features: np.ndarray  # int
    thresholds: np.ndarray  # float64
    true_children: np.ndarray  # int node indices
    false_children: np.ndarray
    nan_true: np.ndarray  # bool
    members: list  # per node: a float64 array of set members (BRANCH_MEMBER) or None
    roots: np.ndarray  # node index of each tree's root
    votes_node: np.ndarray
    votes_target: np.ndarray
    votes_weight: np.ndarray

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The leaf node reached by every row in every tree, [N, trees]."""
        if x.shape[1] <= (self.features[self.modes != LEAF].max(initial=-1)):
            raise ValueError(
                f"tree ensemble tests feature {self.features[self.modes != LEAF].max()}, "
                f"but the input has {x.shape[1]} features"
            )
        rows = np.arange(x.shape[0])[:, None]
        at = np.broadcast_to(self.roots, (x.shape[0], self.roots.size)).copy()
        for _ in range(self.modes.size + 1):
            active = self.modes[at] != LEAF
            if not active.any():
                return at
            nodes = at[active]
            values = x[np.broadcast_to(rows, at.shape)[active], self.features[nodes]]
            go_true = self._test(nodes, values)
            at[active] = np.where(go_true, self.true_children[nodes], self.false_children[nodes])
        raise ValueError("tree ensemble has a cycle: a walk did not reach a leaf")

    def _test(self, nodes: np.ndarray, values: np.ndarray) -> np.ndarray:
        modes, thresholds = self.modes[nodes], self.thresholds[nodes]
        with np.errstate(invalid="ignore"):
            outcome = np.select(
                [modes == LEQ, modes == LT, modes == GTE, modes == GT, modes == EQ, modes == NEQ],
                [values <= thresholds, values < thresholds, values >= thresholds,
                 values > thresholds, values == thresholds, values != thresholds],
                default=False,
            )
        for k in np.flatnonzero(modes == MEMBER):
            outcome[k] = bool(np.isin(values[k], self.members[nodes[k]]))
        missing = np.isnan(values)
        return np.where(missing & self.nan_true[nodes], True, outcome)

    def scores(self, x: np.ndarray, n_targets: int, aggregate: str) -> tuple[np.ndarray, np.ndarray]:
        """Aggregated leaf weights per row and target, and whether any leaf voted there."""
        reached = self.leaves(x)
        n = x.shape[0]
        hit_row, hit_vote = _matching_votes(reached, self.votes_node)
        targets = self.votes_target[hit_vote]
        weights = self.votes_weight[hit_vote]
        voted = np.zeros((n, n_targets), dtype=bool)
        voted[hit_row, targets] = True
        if aggregate in ("SUM", "AVERAGE"):
            totals = np.zeros((n, n_targets))
            np.add.at(totals, (hit_row, targets), weights)
            if aggregate == "AVERAGE":
                totals /= max(self.roots.size, 1)
            return totals, voted
        if aggregate not in ("MIN", "MAX"):
            raise ValueError(f"aggregate_function must be one of {AGGREGATES}, got {aggregate!r}")
        fill = np.inf if aggregate == "MIN" else -np.inf
        totals = np.full((n, n_targets), fill)
        (np.minimum if aggregate == "MIN" else np.maximum).at(totals, (hit_row, targets), weights)
        return np.where(voted, totals, 0.0), voted


def _matching_votes(reached: np.ndarray, votes_node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, vote index) pairs for every vote attached to a leaf some row reached."""
    order = np.argsort(votes_node, kind="stable")
    sorted_nodes = votes_node[order]
    flat = reached.ravel()
    start = np.searchsorted(sorted_nodes, flat, side="left")
    stop = np.searchsorted(sorted_nodes, flat, side="right")
    counts = stop - start
    row_of = np.repeat(np.arange(flat.size) // max(reached.shape[1], 1), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return row_of, order[np.repeat(start, counts) + offsets]


def _split_members(values: np.ndarray | None, count: int) -> list[np.ndarray]:
    """TreeEnsemble's membership_values: ``count`` sets separated by NaN."""
    if count == 0:
        return []
    if values is None:
        raise ValueError("TreeEnsemble has BRANCH_MEMBER nodes but no membership_values")
    values = np.asarray(values, dtype=np.float64).ravel()
    cuts = np.flatnonzero(np.isnan(values))
    groups = np.split(values, cuts)
    sets = [g[~np.isnan(g)] for g in groups]
    if len(sets) > count and sets[-1].size == 0:
        sets = sets[:count]
    if len(sets) != count:
        raise ValueError(f"membership_values holds {len(sets)} sets, but {count} nodes are BRANCH_MEMBER")
    return sets


def _split_children(ids, is_leaf, count: int, leaves: int) -> np.ndarray:
    """Flat-table positions of TreeEnsemble children: leaves are stored after the ``count`` nodes."""
    ids, is_leaf = np.asarray(ids, dtype=np.int64), np.asarray(is_leaf, dtype=bool)
    limit = np.where(is_leaf, leaves, count)
    if ((ids < 0) | (ids >= limit)).any():
        raise ValueError("TreeEnsemble child index out of range (nodes_*nodeids vs nodes_*leafs)")
    return np.where(is_leaf, ids + count, ids)


def from_split_encoding(
    *,
    tree_roots,
    nodes_modes,
    nodes_featureids,
    nodes_splits,
    nodes_truenodeids,
    nodes_trueleafs,
    nodes_falsenodeids,
    nodes_falseleafs,
    nodes_missing_value_tracks_true,
    membership_values,
    leaf_targetids,
    leaf_weights,
) -> Forest:
    """Build a Forest from TreeEnsemble's interior-node / leaf encoding (leaves after nodes)."""
    modes = np.asarray(nodes_modes).astype(np.int64).ravel()
    count = modes.size
    columns = [nodes_featureids, nodes_truenodeids, nodes_trueleafs, nodes_falsenodeids, nodes_falseleafs]
    if any(len(c) != count for c in columns) or np.asarray(nodes_splits).size != count:
        raise ValueError(f"TreeEnsemble nodes_* attributes must all have {count} entries")
    if ((modes < 0) | (modes > MEMBER)).any():
        raise ValueError(f"TreeEnsemble nodes_modes must be in [0, 6], got {sorted(set(modes.tolist()))}")
    weights = np.asarray(leaf_weights, dtype=np.float64).ravel()
    if len(leaf_targetids) != weights.size:
        raise ValueError("TreeEnsemble leaf_targetids and leaf_weights must have the same length")
    leaves = weights.size

    sets = iter(_split_members(membership_values, int((modes == MEMBER).sum())))
    members = [next(sets) if m == MEMBER else None for m in modes] + [None] * leaves
    missing = nodes_missing_value_tracks_true or [0] * count
    return Forest(
        modes=np.concatenate([modes, np.full(leaves, LEAF)]),
        features=np.concatenate([np.asarray(nodes_featureids, dtype=np.int64), np.zeros(leaves, np.int64)]),
        thresholds=np.concatenate([np.asarray(nodes_splits, dtype=np.float64).ravel(), np.zeros(leaves)]),
        true_children=np.concatenate([_split_children(nodes_truenodeids, nodes_trueleafs, count, leaves), np.zeros(leaves, np.int64)]),
        false_children=np.concatenate([_split_children(nodes_falsenodeids, nodes_falseleafs, count, leaves), np.zeros(leaves, np.int64)]),
        nan_true=np.concatenate([np.asarray(missing, dtype=bool), np.zeros(leaves, bool)]),
        members=members,
        roots=np.asarray(tree_roots, dtype=np.int64),
        votes_node=np.arange(leaves, dtype=np.int64) + count,
        votes_target=np.asarray(leaf_targetids, dtype=np.int64),
        votes_weight=weights,
    )


def _legacy_roots(trees: np.ndarray, index: dict, children: set[int]) -> np.ndarray:
    """Each tree's root (in order of first appearance): its node no other node points to."""
    roots = []
    for tree in dict.fromkeys(trees.tolist()):
        nodes = [i for (t, _), i in index.items() if t == tree]
        free = [i for i in nodes if i not in children]
        roots.append(free[0] if free else min(nodes))
    return np.asarray(roots, dtype=np.int64)


def _legacy_modes(nodes_modes, op: str) -> np.ndarray:
    try:
        return np.array([MODES.index(m) for m in nodes_modes], dtype=np.int64)
    except ValueError:
        allowed = MODES[:6] + MODES[7:]
        raise ValueError(f"{op}: nodes_modes must be among {allowed}, got {sorted(set(nodes_modes))}") from None


def _legacy_children(ids, trees: np.ndarray, modes: np.ndarray, index: dict, op: str) -> np.ndarray:
    """Node positions of the children named by (tree id, child node id); leaves get 0."""
    out = np.zeros(trees.size, dtype=np.int64)
    for i, (tree, target) in enumerate(zip(trees.tolist(), ids)):
        if modes[i] != LEAF:
            if (tree, int(target)) not in index:
                raise ValueError(f"{op}: a node of tree {tree} points to missing node {target}")
            out[i] = index[tree, int(target)]
    return out


def _legacy_votes(index: dict, treeids, nodeids, ids, weights, op: str) -> tuple[np.ndarray, ...]:
    """(node position, target, weight) arrays of the leaf votes."""
    treeids, nodeids, ids = list(treeids or []), list(nodeids or []), list(ids or [])
    weights = np.asarray(weights if weights is not None else [], dtype=np.float64).ravel()
    if not len(treeids) == len(nodeids) == len(ids) == weights.size:
        raise ValueError(f"{op}: the leaf vote attributes (tree ids, node ids, ids, weights) differ in length")
    try:
        nodes = [index[int(t), int(n)] for t, n in zip(treeids, nodeids)]
    except KeyError as missing:
        raise ValueError(f"{op}: a weight refers to missing (tree id, node id) {missing}") from None
    return np.asarray(nodes, dtype=np.int64), np.asarray(ids, dtype=np.int64), weights


def from_legacy_encoding(
    *,
    op: str,
    nodes_treeids,
    nodes_nodeids,
    nodes_modes,
    nodes_featureids,
    nodes_values,
    nodes_truenodeids,
    nodes_falsenodeids,
    nodes_missing_value_tracks_true,
    vote_treeids,
    vote_nodeids,
    vote_ids,
    vote_weights,
) -> Forest:
    """Build a Forest from the (tree id, node id) tuples of TreeEnsembleRegressor/Classifier."""
    trees = np.asarray(nodes_treeids or [], dtype=np.int64)
    count = trees.size
    columns = {
        "nodes_nodeids": nodes_nodeids, "nodes_modes": nodes_modes, "nodes_featureids": nodes_featureids,
        "nodes_truenodeids": nodes_truenodeids, "nodes_falsenodeids": nodes_falsenodeids,
    }
    for name, column in columns.items():
        if column is None or len(column) != count:
            raise ValueError(f"{op}: {name} must have one entry per node ({count})")
    if count == 0:
        raise ValueError(f"{op} has no nodes")
    modes = _legacy_modes(nodes_modes, op)
    index = {(int(t), int(n)): i for i, (t, n) in enumerate(zip(trees, nodes_nodeids))}
    if len(index) != count:
        raise ValueError(f"{op}: a (tree id, node id) pair appears twice")
    true_children = _legacy_children(nodes_truenodeids, trees, modes, index, op)
    false_children = _legacy_children(nodes_falsenodeids, trees, modes, index, op)
    branches = modes != LEAF
    children = set(true_children[branches].tolist()) | set(false_children[branches].tolist())
    values = nodes_values if nodes_values is not None else np.zeros(count)
    votes = _legacy_votes(index, vote_treeids, vote_nodeids, vote_ids, vote_weights, op)
    return Forest(
        modes=modes,
        features=np.asarray(nodes_featureids, dtype=np.int64),
        thresholds=np.asarray(values, dtype=np.float64).ravel(),
        true_children=true_children,
        false_children=false_children,
        nan_true=np.asarray(nodes_missing_value_tracks_true or [0] * count, dtype=bool),
        members=[None] * count,
        roots=_legacy_roots(trees, index, children),
        votes_node=votes[0],
        votes_target=votes[1],
        votes_weight=votes[2],
    )
