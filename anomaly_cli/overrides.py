"""Check command-line overrides before Hydra runs, so a typo costs one clear line.

Hydra composes configs in struct mode, so a misspelt key already fails, but
with a multi-line message, exit code 1 and no list of valid keys. Checking
first also means no run directory is created for a command that cannot run.
The YAML defaults double as the schema: an override must name an existing key
and, for scalar keys, carry a value of a compatible type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from anomaly_cli.config_dir import config_dir, config_groups
from anomaly_cli.errors import AdxUserError, first_lines


def check_overrides(verb: str, overrides: Sequence[str]) -> None:
    """Raise AdxUserError naming the first override that cannot apply to `verb`."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from anomaly_cli.launchers import check_launcher
    from anomaly_cli.resolvers import names_only, register

    register()
    check_launcher(overrides)  # before any compose: a missing plugin fails it in many lines
    parsed = _parse(overrides)
    with (
        names_only(),
        initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="adx"),
    ):
        defaults = compose(verb, return_hydra_config=True)
        choices = defaults.hydra.runtime.choices
        groups = {g: opts for g, opts in config_groups().items() if g in choices}
        group_overrides = _check_group_choices(parsed, groups)
        # Each compose costs a quarter of a second: none is made twice.
        base = (
            compose(verb, overrides=group_overrides)
            if group_overrides
            else OmegaConf.masked_copy(defaults, [k for k in defaults if k != "hydra"])
        )
        for override in parsed:
            if override.key_or_group not in groups and not _skipped(override):
                _check_key(base, override, defaults)
        plain = [o.input_line for o in parsed if not o.is_sweep_override()]
        if plain == group_overrides:
            return
        try:
            compose(verb, overrides=plain)
        except (HydraException, OmegaConfBaseException) as error:
            raise AdxUserError(f"invalid override: {first_lines(error, 2)}") from error


def _parse(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.extend(parser.parse_overrides([text]))
        except OverrideParseException as error:
            raise AdxUserError(
                f"cannot read override '{text}': {first_lines(error, 2)} (write key=value)"
            ) from error
    return parsed


def _skipped(override: Any) -> bool:
    """Hydra's own settings and explicit additions/deletions are Hydra's business."""
    return (
        override.is_hydra_override()
        or override.key_or_group.startswith("hydra")
        or override.is_add()
        or override.is_force_add()
        or override.is_delete()
    )


def _check_group_choices(parsed: Iterable[Any], groups: dict[str, list[str]]) -> list[str]:
    selected = []
    for override in parsed:
        group = override.key_or_group
        if group not in groups or _skipped(override):
            continue
        values = _candidate_values(override)
        for value in values:
            if value not in groups[group]:
                raise AdxUserError(
                    f"unknown {group} '{value}'; choose one of: {', '.join(groups[group])}"
                )
        selected.append(f"{group}={values[0]}")
    return selected


def _candidate_values(override: Any) -> list[str]:
    if override.is_choice_sweep():
        return [str(v) for v in override.value().list]
    if override.is_sweep_override():
        return list(override.sweep_string_iterator())
    return [str(override.value())]


def _check_key(base: Any, override: Any, defaults: Any = None) -> None:
    """`override` names a key of `base`, with a value of its type; a value of the type
    the verb's own default has passes too (debug=default sets trainer.verbose to 0,
    and trainer.verbose=auto must still be accepted then)."""
    from omegaconf import DictConfig

    key = override.key_or_group
    parent_key, _, leaf = key.rpartition(".")
    parent = base if not parent_key else _select(base, parent_key)
    where = f"under {parent_key}" if parent_key else "at the top level"
    if not isinstance(parent, DictConfig):
        raise AdxUserError(f"unknown config key '{key}': '{parent_key}' holds no settings")
    if leaf not in parent:
        valid = ", ".join(sorted(str(k) for k in parent)) or "(none)"
        raise AdxUserError(f"unknown config key '{key}'; valid keys {where}: {valid}")
    if not override.is_sweep_override():
        try:
            _check_type(key, parent._get_node(leaf)._value(), override.value())
        except AdxUserError:
            default = _select(defaults, key) if defaults is not None else None
            if default is None or isinstance(default, DictConfig):
                raise
            _check_type(key, default, override.value())


def _select(base: Any, key: str) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(base, key, throw_on_resolution_failure=False)


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number"}
# What a key whose default has this type accepts (an int where a float goes).
_ACCEPTS = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _check_type(key: str, default: Any, value: Any) -> None:
    """Scalar keys keep their type; lists are accepted where one value or several make sense."""
    from omegaconf import DictConfig

    if default is None or value is None or isinstance(value, list):
        return
    if isinstance(default, DictConfig) or isinstance(value, dict):
        if isinstance(default, DictConfig) and isinstance(value, dict):
            return
        raise AdxUserError(f"config key '{key}' cannot take '{value}': types differ")
    if isinstance(default, str) and default.startswith("${"):
        return  # an interpolation: its type is decided where it points
    accepts = _ACCEPTS.get(type(default))
    if accepts is not None and not accepts(value):
        raise AdxUserError(
            f"config key '{key}' expects {_TYPE_NAMES[type(default)]}, got '{value}'"
        )
