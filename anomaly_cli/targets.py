"""`_target_` in a config names adx's own code, never anything a config author likes.

A config is input: it comes from the command line and from run folders that
may have been copied from elsewhere. Hydra's `get_method`/`instantiate` would
import and call whatever a `_target_` names (`os.system` included), so adx
resolves targets itself: only data sources (functions in `anomaly_cli.data.*`),
models (AnomalyModel classes in `anomaly_cli.models.*`) and optimizers (classes
in `keras.optimizers`) may be named, plus modules the user lists in
`plugins=[...]` on their own command line. The
check of the text runs before anything is imported; the resolved object is
checked again after import.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from anomaly_cli.errors import AdxUserError

# Where each kind of target may live, and what it must be.
HOMES = {
    "dataset": "anomaly_cli.data",
    "model": "anomaly_cli.models",
    "optimizer": "keras.optimizers",
}
# Homes whose existence is taken on trust before import: finding
# `keras.optimizers` would import Keras and TensorFlow, which the checks that
# run before any folder is made must not pay for.
_KNOWN_HOMES = {"keras.optimizers"}
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def config_targets(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every `_target_` in a config tree, as (dotted key, value)."""
    from omegaconf import DictConfig, ListConfig

    if isinstance(node, (DictConfig, dict)):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, value
            else:
                yield from config_targets(value, where)
    elif isinstance(node, (ListConfig, list, tuple)):
        for i, value in enumerate(node):
            yield from config_targets(value, f"{path}[{i}]")


def check_targets(cfg: Any, plugins: Sequence[str] = (), origin: str = "") -> None:
    """Refuse any `_target_` outside adx's data sources and models (or the plugins).

    `origin` names where the config came from (a run folder), for the message.
    """
    for where, value in config_targets(cfg):
        kind = where.rsplit(".", 1)[0]
        if kind not in HOMES:
            raise AdxUserError(
                f"{where}={value}{origin}: adx reads _target_ only in {', '.join(HOMES)}; remove it"
            )
        check_target_text(kind, value, plugins, origin)


def check_target_text(kind: str, value: Any, plugins: Sequence[str] = (), origin: str = "") -> str:
    """The module part of a `<kind>._target_`, checked without importing it."""
    text = str(value)
    homes = (HOMES[kind], *plugins)
    if not isinstance(value, str) or not _DOTTED.fullmatch(text):
        raise AdxUserError(f"{kind}._target_={text}{origin} is not a dotted name like module.name")
    module = text.rsplit(".", 1)[0]
    if not any(module == home or module.startswith(f"{home}.") for home in homes):
        raise AdxUserError(
            f"{kind}._target_={text}{origin} is outside {' and '.join(homes)}; adx calls "
            f"{kind} code only from there (to use a module of your own, list it in plugins=[...])"
        )
    if module in _KNOWN_HOMES:
        return module
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise AdxUserError(f"{kind}._target_={text}{origin}: there is no module {module}")
    return module


def resolve_target(kind: str, value: Any, plugins: Sequence[str] = ()) -> Any:
    """Import and return what `<kind>._target_` names, after the same checks."""
    module_name = check_target_text(kind, value, plugins)
    attribute = str(value).rsplit(".", 1)[1]
    target = getattr(importlib.import_module(module_name), attribute, None)
    # Only objects defined in that module: `anomaly_cli.data.tabular.np` would
    # otherwise hand out numpy, and through it anything. Keras' public modules
    # re-export classes defined elsewhere; the class check below covers them.
    defined_here = getattr(target, "__module__", None) == module_name
    if target is None or not (defined_here or module_name in _KNOWN_HOMES):
        raise AdxUserError(f"{kind}._target_={value}: {module_name} defines no {attribute}")
    if kind == "optimizer":
        import keras

        if not (isinstance(target, type) and issubclass(target, keras.optimizers.Optimizer)):
            raise AdxUserError(f"optimizer._target_={value} is not a Keras optimizer class")
    elif kind == "model":
        from anomaly_cli.models.base import AnomalyModel

        if not (isinstance(target, type) and issubclass(target, AnomalyModel)):
            raise AdxUserError(f"model._target_={value} is not an adx model class")
    elif not callable(target) or isinstance(target, type):
        raise AdxUserError(f"dataset._target_={value} is not a data source function")
    return target


def plugin_list(value: Any) -> list[str]:
    """`plugins` from a config: module prefixes the user allows targets in."""
    if value is None:
        return []
    items: Iterable[Any] = [value] if isinstance(value, str) else value
    plugins = [str(item) for item in items]
    for plugin in plugins:
        if not _DOTTED.fullmatch(plugin) and not plugin.isidentifier():
            raise AdxUserError(f"plugins={plugins}: '{plugin}' is not a module name")
        if plugin.split(".")[0] in {"builtins", "os", "sys", "subprocess", "shutil"}:
            raise AdxUserError(f"plugins={plugins}: '{plugin}' is not a module of detectors")
    return plugins
