"""Which sample is normal, which is an anomaly, and which split it goes to.

Sources describe their pool of samples by class; this module turns classes
into labels (`normal_class`, `anomaly_classes`), draws anomalies
(`n_anomalies`, `anomaly_ratio`) and applies the protocol:

- clean (default): disjoint, stratified, seeded train / val / test; train
  holds normal samples only.
- transductive (seed 000's notebook): train on every normal sample and score
  all of them again together with the drawn anomalies (val = test).
- unsupervised (seed 001): train on one contaminated set whose labels training
  never sees, and score that same set (train = val = test).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from omegaconf import DictConfig

from anomaly_cli.checks import is_integer, is_number
from anomaly_cli.data.base import (
    ANOMALY,
    CLEAN,
    NORMAL,
    TRANSDUCTIVE,
    UNSUPERVISED,
    ArraySplit,
    LoadContext,
    Split,
    Splits,
)
from anomaly_cli.data.inputs import as_list, data_seed, shown
from anomaly_cli.errors import AdxUserError

UNUSED = -1  # label of a sample of neither the normal nor an anomaly class
PROTOCOLS = (CLEAN, TRANSDUCTIVE, UNSUPERVISED)


def resolve_classes(value: Any, names: Sequence[str], key: str) -> list[str]:
    """Class names for a config value: a name or an index, or a list of them."""
    wanted = as_list(value)
    found, unknown = [], []
    for item in wanted:
        text = str(item)
        if text in names:
            found.append(text)
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(names):
            found.append(names[item])  # an index into names like tfds label names
        else:
            unknown.append(text)
    if not wanted or unknown:
        raise AdxUserError(
            f"{key}={value} is not a class of this dataset; classes present: {shown(names, 60)}"
        )
    return list(dict.fromkeys(found))


def class_labels(classes: np.ndarray, names: Sequence[str], cfg: DictConfig) -> np.ndarray:
    """NORMAL, ANOMALY or UNUSED per sample, from dataset.normal_class / anomaly_classes."""
    normal = resolve_classes(cfg.normal_class, names, "dataset.normal_class")
    chosen = cfg.get("anomaly_classes")
    if chosen is None:
        anomalous = [n for n in names if n not in normal]
    else:
        anomalous = resolve_classes(chosen, names, "dataset.anomaly_classes")
    both = sorted(set(normal) & set(anomalous))
    if both:
        raise AdxUserError(
            f"dataset.anomaly_classes repeats the normal class {', '.join(both)}; "
            "a class is either normal or an anomaly"
        )
    classes = classes.astype(str)
    labels = np.full(len(classes), UNUSED, dtype=np.int8)
    labels[np.isin(classes, normal)] = NORMAL
    labels[np.isin(classes, anomalous)] = ANOMALY
    return labels


def protocol_indices(
    labels: np.ndarray, cfg: DictConfig, ctx: LoadContext
) -> dict[str, np.ndarray]:
    """Indices of train / val / test under ctx.protocol (see the module doc)."""
    rng = np.random.default_rng(ctx.seed)
    check_anomaly_draw(cfg, ctx.protocol, ctx.contamination)
    n_anomalies, ratio = cfg.get("n_anomalies"), cfg.get("anomaly_ratio")
    normal = np.flatnonzero(labels == NORMAL)
    anomaly = np.flatnonzero(labels == ANOMALY)
    if ctx.protocol == UNSUPERVISED:
        rho = ctx.contamination
        wanted = round(rho / (1 - rho) * len(normal))
        if wanted > len(anomaly):
            raise AdxUserError(
                f"protocol.contamination={rho} needs {wanted} anomalies for {len(normal)} "
                f"normal samples, the data has {len(anomaly)}; lower protocol.contamination"
            )
        pool = np.sort(np.concatenate([normal, _draw(rng, anomaly, wanted)]))
        parts = {"train": pool, "val": pool, "test": pool}
    elif ctx.protocol == TRANSDUCTIVE:
        if ratio is not None:
            wanted = round(float(ratio) / (1 - float(ratio)) * len(normal))
        else:
            wanted = len(anomaly) if n_anomalies is None else _count(n_anomalies, anomaly)
        scored = np.sort(np.concatenate([normal, _draw(rng, anomaly, wanted)]))
        parts = {"train": normal, "val": scored, "test": scored}
    else:
        if n_anomalies is not None:
            anomaly = np.sort(_draw(rng, anomaly, _count(n_anomalies, anomaly)))
        used = np.concatenate([normal, anomaly])
        parts = {k: used[v] for k, v in split_indices(labels[used], cfg.split, ctx.seed).items()}
        if ratio is not None:
            parts["val"] = cap_anomalies(parts["val"], labels, float(ratio), rng)
            parts["test"] = cap_anomalies(parts["test"], labels, float(ratio), rng)
    check_splits(parts, labels)
    return parts


def check_sampling(dataset: DictConfig, protocol: DictConfig | None) -> None:
    """The sampling settings of a dataset and protocol config, before any data is read."""
    name = str(protocol.get("name")) if protocol is not None else CLEAN
    contamination = protocol.get("contamination", 0.1) if protocol is not None else 0.1
    data_seed(dataset)
    check_anomaly_draw(dataset, name, contamination)
    if name == CLEAN and dataset.get("split") is not None:
        split_weights(dataset.split)


def check_anomaly_draw(cfg: DictConfig, protocol: str, contamination: Any) -> None:
    """dataset.n_anomalies / anomaly_ratio and protocol.contamination, without the data."""
    if protocol not in PROTOCOLS:
        raise AdxUserError(f"protocol={protocol} is unknown; choose one of: {', '.join(PROTOCOLS)}")
    n_anomalies, ratio = cfg.get("n_anomalies"), cfg.get("anomaly_ratio")
    if n_anomalies is not None and ratio is not None:
        raise AdxUserError(
            "dataset.n_anomalies and dataset.anomaly_ratio both set; keep one of them"
        )
    if protocol == UNSUPERVISED:
        if n_anomalies is not None or ratio is not None:
            raise AdxUserError(
                "protocol=unsupervised draws anomalies by protocol.contamination; "
                "unset dataset.n_anomalies and dataset.anomaly_ratio"
            )
        if not is_number(contamination) or not 0 < contamination < 1:
            raise AdxUserError(
                f"protocol.contamination={contamination} must lie between 0 and 1, e.g. 0.1"
            )
    if n_anomalies is not None and (not is_integer(n_anomalies) or n_anomalies < 1):
        raise AdxUserError(f"dataset.n_anomalies={n_anomalies} must be a whole number >= 1")
    if ratio is not None and (not is_number(ratio) or not 0 < ratio < 1):
        raise AdxUserError(f"dataset.anomaly_ratio={ratio} must lie between 0 and 1, e.g. 0.1")


def limit_anomalies(
    parts: dict[str, np.ndarray], labels: np.ndarray, cfg: DictConfig, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """n_anomalies / anomaly_ratio for sources whose files fix the splits (MVTec, .npz).

    n_anomalies draws that many anomalies from val and test together;
    anomaly_ratio caps anomalies at that share of val and of test.
    """
    check_anomaly_draw(cfg, CLEAN, None)
    n_anomalies, ratio = cfg.get("n_anomalies"), cfg.get("anomaly_ratio")
    parts = dict(parts)
    if n_anomalies is not None:
        scored = np.concatenate([parts["val"], parts["test"]])
        pool = scored[labels[scored] == ANOMALY]
        kept = _draw(rng, pool, _count(n_anomalies, pool))
        for name in ("val", "test"):
            idx = parts[name]
            parts[name] = idx[(labels[idx] != ANOMALY) | np.isin(idx, kept)]
    if ratio is not None:
        for name in ("val", "test"):
            parts[name] = cap_anomalies(parts[name], labels, float(ratio), rng)
    return parts


def _count(n: Any, pool: np.ndarray) -> int:
    n = int(n)
    if n < 1 or n > len(pool):
        raise AdxUserError(
            f"dataset.n_anomalies={n} must lie between 1 and the {len(pool)} anomalies available"
        )
    return n


def _draw(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    return rng.choice(pool, size=min(n, len(pool)), replace=False)


def cap_anomalies(
    idx: np.ndarray, labels: np.ndarray, ratio: float, rng: np.random.Generator
) -> np.ndarray:
    """Keep anomalies at `ratio` of the split (ratio = anomalies / all samples)."""
    if not 0 < ratio < 1:
        raise AdxUserError(f"dataset.anomaly_ratio={ratio} must lie between 0 and 1")
    normal = idx[labels[idx] == NORMAL]
    anomaly = idx[labels[idx] == ANOMALY]
    wanted = max(1, round(ratio / (1 - ratio) * len(normal))) if len(anomaly) else 0
    return np.sort(np.concatenate([normal, _draw(rng, anomaly, wanted)]))


def split_indices(
    labels: np.ndarray, fractions: Mapping[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Indices of a clean train / val / test split.

    Normal samples are divided by `fractions` (train, val, test, normalised to
    sum to 1); anomalies never enter train and are divided between val and
    test in the val:test ratio. Each split is sorted so ids stay in source
    order; the same labels and seed give the same split on every machine.
    """
    weights = split_weights(fractions)
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(labels == NORMAL))
    anomaly = rng.permutation(np.flatnonzero(labels == ANOMALY))
    n_train, n_val = _cut(len(normal), weights / weights.sum())
    val_share = weights[1] / (weights[1] + weights[2])
    n_val_anomaly = round(len(anomaly) * val_share)
    parts = {
        "train": normal[:n_train],
        "val": np.concatenate([normal[n_train : n_train + n_val], anomaly[:n_val_anomaly]]),
        "test": np.concatenate([normal[n_train + n_val :], anomaly[n_val_anomaly:]]),
    }
    check_splits(parts, labels)
    return {name: np.sort(idx) for name, idx in parts.items()}


def split_weights(fractions: Mapping[str, Any]) -> np.ndarray:
    """dataset.split as (train, val, test) weights; train and test must be positive."""
    values = [fractions.get(k) for k in ("train", "val", "test")]
    if not all(is_number(v) for v in values):
        raise AdxUserError(
            f"dataset.split={dict(fractions)} needs numbers for train, val and test, "
            "e.g. dataset.split.val=0.2"
        )
    weights = np.array(values, dtype=np.float64)
    if np.any(weights < 0) or not np.all(np.isfinite(weights)) or min(weights[0], weights[2]) <= 0:
        raise AdxUserError(
            f"dataset.split={dict(fractions)} must give train and test a positive fraction"
        )
    return weights


def _cut(n: int, shares: np.ndarray) -> tuple[int, int]:
    n_train = round(n * shares[0])
    n_val = round(n * shares[1])
    return n_train, min(n_val, n - n_train)


def check_splits(parts: Mapping[str, np.ndarray], labels: np.ndarray) -> None:
    """Train needs a normal sample; test needs both classes. Errors name the counts."""

    def count(idx: np.ndarray) -> str:
        normal = int(np.sum(labels[idx] == NORMAL))
        return f"{normal} normal, {int(np.sum(labels[idx] == ANOMALY))} anomalies"

    if not np.any(labels[parts["train"]] == NORMAL):
        raise AdxUserError(
            f"the train split has no normal sample (train: {count(parts['train'])}); "
            "add normal data or raise dataset.split.train"
        )
    test_labels = labels[parts["test"]]
    if not np.any(labels == ANOMALY):
        raise AdxUserError(
            f"the data holds no anomaly ({int(np.sum(labels == NORMAL))} normal samples, "
            "0 anomalies), so nothing can be tested; add samples of another class, or check "
            "dataset.normal_class and dataset.anomaly_classes"
        )
    if not (np.any(test_labels == NORMAL) and np.any(test_labels == ANOMALY)):
        raise AdxUserError(
            f"the test split needs normal and anomaly samples, it has {count(parts['test'])}; "
            "add data or raise dataset.split.test"
        )


def select_splits(
    pool: Split, cfg: DictConfig, ctx: LoadContext, names: Sequence[str]
) -> tuple[dict[str, Split], dict[str, Any]]:
    """Label a whole pool by class and cut it into train / val / test per the protocol.

    `pool.classes` holds each sample's class name; the returned splits carry
    binary labels instead of the pool's placeholder ones. The dict says which
    classes ended up normal and anomalous, for data.json.
    """
    if pool.classes is None:
        raise ValueError("select_splits needs a pool with classes")
    labels = class_labels(pool.classes, names, cfg)
    labelled = replace(pool, labels=labels)
    parts = {name: labelled.select(idx) for name, idx in protocol_indices(labels, cfg, ctx).items()}
    classes = pool.classes.astype(str)
    info = {
        "classes": list(names),
        "normal_classes": sorted(set(classes[labels == NORMAL]), key=natural_order),
        "anomaly_classes": sorted(set(classes[labels == ANOMALY]), key=natural_order),
        "protocol": ctx.protocol,
    }
    return parts, info


def array_splits(
    x: np.ndarray,
    classes: np.ndarray,
    ids: np.ndarray,
    cfg: DictConfig,
    ctx: LoadContext,
    info: dict | None = None,
    names: Sequence[str] | None = None,
) -> Splits:
    """Label and split in-memory samples; `x` holds one sample per row in model layout."""
    classes = classes.astype(str)
    names = list(names) if names is not None else sorted(np.unique(classes), key=natural_order)
    pool = ArraySplit(ids=ids, labels=np.zeros(len(ids), np.int8), classes=classes, x=x)
    parts, chosen = select_splits(pool, cfg, ctx, names)
    return Splits(
        **parts,
        input_shape=tuple(int(d) for d in x.shape[1:]),
        info={**(info or {}), **chosen},
        protocol=ctx.protocol,
    )


def natural_order(name: str) -> tuple[int, int | str]:
    """Sort "2" before "10" when class names are numbers."""
    return (0, int(name)) if name.lstrip("-").isdigit() else (1, name)
