"""The backtest's PNG and HTML: a valid image of the expected size and series; the HTML
renders in a real browser (headless Chromium, where installed)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hedgekeeper.backtest.charts import DPI, HEIGHT_IN, PANELS, WIDTH_IN
from hedgekeeper.cli import app
from tests.backtest.helpers import HOUR_MS, START_MS, btc_config, write_bars, write_funding


def _png_chunks(data: bytes) -> dict[bytes, list[bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks: dict[bytes, list[bytes]] = {}
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.setdefault(kind, []).append(body)
        at += 12 + length
    return chunks


@pytest.fixture
def bars(tmp_path: Path) -> Path:
    directory = tmp_path / "bars"
    rows = [(START_MS + i * HOUR_MS, 70000.0 + 500 * ((i * 7) % 11)) for i in range(200)]
    write_bars(directory, "spot", "BTC", rows)
    write_bars(directory, "perp", "BTC", [(t, p * 1.001) for t, p in rows])
    write_funding(directory, "BTC", [(START_MS + 8 * k * HOUR_MS, "0.0001") for k in range(30)])
    return directory


def test_png_has_the_expected_size_and_series(tmp_path: Path, bars: Path) -> None:
    png = tmp_path / "report.png"
    done = CliRunner().invoke(app, ["backtest", "-c", str(btc_config(tmp_path)), "--data",
                                    str(bars), "--png", str(png), "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    chunks = _png_chunks(png.read_bytes())
    width, height = struct.unpack(">II", chunks[b"IHDR"][0][:8])
    assert (width, height) == (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))  # one group
    texts = dict(t.split(b"\0", 1) for t in chunks.get(b"tEXt", []))
    described = texts[b"Description"].decode()
    for _, names in PANELS:
        for name in names:
            assert name in described
    assert described.startswith("btc: exposure, target, hedge, net cost")
    assert len(b"".join(chunks[b"IDAT"])) > 20_000, "the charts are drawn, not blank"


def test_html_report_renders_in_headless_chromium(tmp_path: Path, bars: Path) -> None:
    page = tmp_path / "report.html"
    done = CliRunner().invoke(app, ["backtest", "-c", str(btc_config(tmp_path)), "--data",
                                    str(bars), "--html", str(page), "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    text = page.read_text()
    assert "<svg" in text and "exact every bar" in text and "<script" not in text
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    shot = tmp_path / "screenshot.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()],
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip
    chunks = _png_chunks(shot.read_bytes())
    assert struct.unpack(">II", chunks[b"IHDR"][0][:8]) == (1280, 1600)
    assert len(b"".join(chunks[b"IDAT"])) > 30_000, "the page drew text and charts"
    # pytest keeps the last runs' tmp_path: a person can open it (pytest -s prints where)
    print(f"\nscreenshot of the HTML report: {shot}")
