"""`_target_` may name adx's data sources and models only (plus the user's plugins)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from anomaly_cli.errors import AdxUserError
from anomaly_cli.targets import check_targets, plugin_list, resolve_target


def _cfg(**targets: str):
    return OmegaConf.create({k: {"_target_": v, "name": k} for k, v in targets.items()})


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        ("dataset", "os.system", "is outside anomaly_cli.data"),
        ("dataset", "builtins.print", "is outside anomaly_cli.data"),
        ("dataset", "subprocess.run", "is outside anomaly_cli.data"),
        ("model", "anomaly_cli.data.digits.load", "is outside anomaly_cli.models"),
        ("dataset", "anomaly_cli.runs.remove_run_dir", "is outside anomaly_cli.data"),
        ("dataset", "anomaly_cli.data.nothing_here.load", "there is no module"),
        ("dataset", "anomaly_cli.cli.os.system", "is outside anomaly_cli.data"),
        ("dataset", "__import__('os').system", "is not a dotted name"),
        ("dataset", "print", "is not a dotted name"),
    ],
)
def test_targets_outside_adx_are_refused_before_import(kind: str, target: str, message: str):
    with pytest.raises(AdxUserError, match=message.replace("(", r"\(")):
        check_targets(_cfg(**{kind: target}))


def test_a_target_elsewhere_in_the_config_is_refused():
    cfg = OmegaConf.create({"threshold": {"_target_": "os.system"}})
    with pytest.raises(AdxUserError, match=r"threshold._target_=os.system.*reads _target_ only"):
        check_targets(cfg)


def test_names_reached_through_an_adx_module_are_refused_after_import():
    # anomaly_cli.data.tabular imports numpy as np; np is not a data source.
    with pytest.raises(AdxUserError, match="defines no np"):
        resolve_target("dataset", "anomaly_cli.data.tabular.np")
    with pytest.raises(AdxUserError, match="defines no replace"):
        resolve_target("dataset", "anomaly_cli.data.base.replace")  # dataclasses.replace
    with pytest.raises(AdxUserError, match="not a data source function"):
        resolve_target("dataset", "anomaly_cli.data.base.Splits")


def test_adx_own_targets_and_listed_plugins_resolve():
    from anomaly_cli.data import digits

    assert resolve_target("dataset", "anomaly_cli.data.digits.load") is digits.load
    # A plugin module the user lists is allowed (json stands in for one here).
    assert callable(resolve_target("dataset", "json.decoder.py_scanstring", ["json.decoder"]))
    check_targets(_cfg(dataset="json.decoder.py_scanstring"), plugin_list(["json.decoder"]))


def test_plugins_must_be_module_names_and_not_the_standard_escape_hatches():
    with pytest.raises(AdxUserError, match="not a module name"):
        plugin_list(["os; rm -rf"])
    with pytest.raises(AdxUserError, match="not a module of detectors"):
        plugin_list(["builtins"])
