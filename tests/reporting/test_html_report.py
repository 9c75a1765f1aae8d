"""report.html: self-contained, and rendered by a real browser (headless Chromium).

The browser test renders a finished run's page from a copy of its folder (so
it works when moved), takes a screenshot, and reads back what the page
itself saw: every image decoded and the AUROC on screen. A probe script,
added to a copy of the page for the test only, writes those facts into the
DOM that `chromium --dump-dom` prints; an image known to be broken is added
too, so the check is shown to catch one. Chromium is Debian's `chromium`
package (`.ci/run` installs it); without it the test is skipped, saying so.
"""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from anomaly_cli.reporting.html import build_report, write_report_or_warn

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
BROKEN_ON_PURPOSE = "known-broken-control"
PROBE = f"""
<img src="plots/no-such-plot.png" alt="{BROKEN_ON_PURPOSE}">
<script>
window.addEventListener("load", function () {{
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) {{ return !(i.complete && i.naturalWidth > 0); }});
  var text = document.body.innerText;
  var out = document.createElement("pre");
  out.id = "adx-probe";
  out.textContent = JSON.stringify({{
    images: images.length,
    broken: broken.map(function (i) {{ return i.alt; }}),
    text: text
  }});
  document.body.appendChild(out);
}});
</script>
"""


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium found (looked for chromium, chromium-browser, google-chrome); "
        "install Debian's: apt-get install chromium (.ci/run does this)"
    )


def _browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_the_report_renders_in_headless_chromium(tiny_run: Path, tmp_path: Path):
    chromium = _chromium()
    moved = tmp_path / "copied elsewhere"  # a space, as folders on laptops have
    shutil.copytree(tiny_run, moved, ignore=shutil.ignore_patterns("checkpoints", "tb"))
    plots = sorted((moved / "plots").rglob("*.png"))
    assert plots
    page = (moved / "report.html").read_text(encoding="utf-8")
    probe = moved / "report.probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")

    dumped = _browse(
        chromium, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()
    ).stdout
    found = re.search(r'<pre id="adx-probe">(.*?)</pre>', dumped, re.S)
    assert found, dumped[-2000:]
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["images"] == len(plots) + 1  # every plot, and the control
    assert seen["broken"] == [BROKEN_ON_PURPOSE]  # only the control
    auroc = json.loads((moved / "metrics.json").read_text())["auroc"]
    assert f"AUROC\t{auroc:.4f}" in seen["text"]  # the metrics table's row
    assert f"AUROC {auroc:.4f}" in seen["text"]  # the headline

    shot = tmp_path / "report.png"
    _browse(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1200,3000",
        (moved / "report.html").as_uri(),
    )
    with Image.open(shot) as image:
        image.verify()
    with Image.open(shot) as image:
        assert image.size == (1200, 3000)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # text and plots, not a blank page


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if values.get("href"):
            self.links.append(values["href"] or "")


def test_the_report_is_self_contained_with_relative_links(tiny_run: Path):
    page = (tiny_run / "report.html").read_text(encoding="utf-8")
    refs = _Refs()
    refs.feed(page)
    assert not {"script", "link", "iframe"} & set(refs.tags)  # no outside CSS or code
    plots = list((tiny_run / "plots").rglob("*.png"))
    assert refs.images and len(refs.images) == len(plots)
    assert all(src.startswith("data:image/png;base64,") for src in refs.images)
    assert refs.links
    from urllib.parse import unquote

    for link in refs.links:
        assert "://" not in link and not link.startswith("/"), link
        assert (tiny_run / unquote(link)).is_file(), link
    linked = {unquote(link) for link in refs.links}
    assert {"metrics.json", "scores.csv", "config.yaml", "checkpoints/best.keras"} <= linked
    threshold = json.loads((tiny_run / "threshold.json").read_text())
    text = html.unescape(page)
    assert f"chosen by the {threshold['strategy']} strategy" in text
    assert "n_normal: 100" in text  # the config, as config.yaml holds it


def test_file_values_are_escaped_and_a_failure_only_warns(tmp_path: Path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    (run / "data.json").write_text(json.dumps({"source": "<script>alert(1)</script>"}))
    page = build_report(run)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    with caplog.at_level(logging.WARNING, logger="adx"):
        assert write_report_or_warn(tmp_path / "gone") is None
    assert "report.html not written" in caplog.text
