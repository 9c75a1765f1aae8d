"""benchmarks/defects.py end to end on a tiny setting: real `adx train` runs, CSV rows, README."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import pandas as pd
import pytest

from anomaly_cli.data.defects import DEFECTS
from tests.conftest import REPO


def load_script():
    spec = importlib.util.spec_from_file_location(
        "defects_benchmark", REPO / "benchmarks" / "defects.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return load_script()


TINY = [
    "--categories",
    "weave",
    "--image-size",
    "32",
    "--data-size",
    "32",
    "--epochs",
    "1",
    "--n-train",
    "10",
    "--n-test-good",
    "4",
    "--n-test-per-defect",
    "2",
    "--threads",
    "1",
]


def test_one_conv_ae_run_gives_a_row_per_defect_and_resumes(bench, tmp_path, capsys):
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "benchmarks" / "README.md", readme)
    original = readme.read_text()
    argv = [
        *TINY,
        "--models",
        "conv_ae",
        "ghost:model=no_such_model",
        "--out",
        str(tmp_path / "out"),
        "--write-readme",
        "--readme",
        str(readme),
    ]
    bench.main(argv)
    printed = capsys.readouterr().out
    assert "skipping ghost: configs/model/no_such_model.yaml does not exist" in printed
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert sorted(rows.defect) == sorted([*DEFECTS, bench.ALL])
    assert set(rows.model) == {"conv_ae"} and set(rows.category) == {"weave"}
    assert rows.image_auroc.between(0, 1).all() and rows.pixel_auroc.between(0, 1).all()
    assert (rows.seconds > 0).all() and (rows.epochs == 1).all()
    # The run folder is gone unless --keep-runs; its log beside it stays, so the
    # pattern demonstrably names this run.
    named = list((tmp_path / "out" / "runs").glob("conv_ae_weave_*"))
    assert [path.name for path in named] == ["conv_ae_weave_0_32px.log"]
    assert not any(path.is_dir() for path in named)

    # The section went between the markers; everything else is as it was.
    text = readme.read_text()
    head, rest = text.split(bench.BEGIN, 1)
    section, tail = rest.split(bench.END, 1)
    assert original.startswith(head) and original.endswith(tail)
    assert "| conv_ae | weave" in section and "missing_texture (s / l)" in section

    # Again: nothing left to run, no duplicate rows, the section replaced, not added.
    bench.main(argv)
    assert "1 runs already in" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == len(rows)
    assert readme.read_text().count(bench.BEGIN) == 1


def test_variants_parse_and_a_new_one_needs_overrides(bench):
    assert bench.parse_variant("conv_ae_ssim")[1] == [
        "model=conv_ae",
        "model.loss=ssim",
        "model.score=ssim",
    ]
    assert bench.parse_variant("wide:model=conv_ae model.latent_dim=64") == (
        "wide",
        ["model=conv_ae", "model.latent_dim=64"],
    )
    with pytest.raises(Exception, match="unknown model variant 'cnv_ae'"):
        bench.parse_variant("cnv_ae")


def test_other_data_settings_in_the_same_folder_are_refused(bench, tmp_path):
    out = ["--out", str(tmp_path), "--models", "ghost:model=no_such_model"]
    bench.main([*TINY, *out])
    with pytest.raises(SystemExit, match="was generated with"):
        bench.main([*TINY, "--n-train", "11", *out])


def test_a_readme_without_the_markers_gets_a_new_section(bench, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nSomething else.\n")
    bench.write_readme("| a table |", readme)
    bench.write_readme("| the new table |", readme)
    text = readme.read_text()
    assert text.startswith("# Benchmarks\n\nSomething else.\n\n" + bench.SECTION)
    assert text.count(bench.BEGIN) == 1 and "| the new table |" in text
    assert "| a table |" not in text


def test_a_variant_that_sets_its_own_image_size_is_recorded_at_it(bench):
    args = bench.argparse.Namespace(val_fraction=0.2, image_size=128, epochs=1, threads=None)
    assert bench.image_size(args, bench.VARIANTS["conv_ae"]) == 128
    windows = bench.VARIANTS["conv_ae_windows"]
    assert bench.image_size(args, windows) == 256
    # The variant's overrides come after the benchmark's, so its size is the one used.
    overrides = bench.run_overrides(bench.Path("/data"), "weave", 0, args, windows)
    sizes = [o for o in overrides if o.startswith("dataset.preprocess.image_size=")]
    assert sizes == ["dataset.preprocess.image_size=128", "dataset.preprocess.image_size=256"]
