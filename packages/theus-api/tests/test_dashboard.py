"""The performance dashboard renders (issue 13): asv publishes a small results fixture (four of
the suite's benchmarks over three commits of a scratch repository), asv_bench/offline.py points
the page at local scripts, and headless Chromium draws it: a screenshot with enough non-blank
pixels, the benchmark names and one drawn plot canvas per benchmark in the DOM.

Runs where asv and Chromium (with the Debian script packages of offline.py) are installed;
skipped with the reason otherwise. No benchmark is run.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "dashboard_data"
OFFLINE = HERE.parents[2] / "asv_bench" / "offline.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BENCHMARKS = json.loads((FIXTURE / "benchmarks.json").read_text())
NAMES = sorted(k for k in BENCHMARKS if k != "version")


def _offline() -> Any:
    spec = importlib.util.spec_from_file_location("theus_asv_offline", OFFLINE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _skip_reason() -> str | None:
    if importlib.util.find_spec("asv") is None:
        return "asv is not installed (pip install asv)"
    if CHROMIUM is None:
        return "Chromium is not installed (apt-get install chromium)"
    absent = _offline().missing()
    if absent:
        return f"the dashboard's scripts are not installed (apt-get install {' '.join(absent)})"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def _git(repo: Path, *args: str, date: str | None = None) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def _result(name: str, commit_index: int) -> list[Any]:
    bench = BENCHMARKS[name]
    params = [list(p) for p in bench["params"]]
    count = 1
    for p in params:
        count *= len(p)
    base = {"bench_engine": 5e-6, "bench_hub": 2e-3, "bench_flux_expr": 1e-6}[name.split(".")[0]]
    wobble = (1.0, 1.3, 0.9)[commit_index]
    values = [base * wobble * (1 + i) for i in range(count)]
    result: Any = values if params else values[0]
    return [result if params else [result], params, bench["version"], 0, 1.0]


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dashboard")
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    commits = []
    for i in range(3):
        (repo / "f.txt").write_text(f"{i}\n")
        _git(repo, "add", "f.txt")
        _git(repo, "commit", "-q", "-m", f"commit {i}", date=f"2026-11-0{i + 1}T12:00:00Z")
        commits.append(_git(repo, "rev-parse", "HEAD"))
    results = root / "results"
    machine = results / "ci"
    machine.mkdir(parents=True)
    shutil.copyfile(FIXTURE / "benchmarks.json", results / "benchmarks.json")
    info = {"arch": "x86_64", "cpu": "test", "machine": "ci", "num_cpu": "2", "os": "Linux",
            "ram": "1", "version": 1}  # fmt: skip
    (machine / "machine.json").write_text(json.dumps(info))
    for i, commit in enumerate(commits):
        data = {
            "commit_hash": commit,
            "env_name": "existing-py",
            "date": 1793534400000 + i * 86_400_000,
            "params": {**{k: v for k, v in info.items() if k != "version"}, "python": "3.11"},
            "python": "3.11",
            "requirements": {},
            "env_vars": {},
            "result_columns": ["result", "params", "version", "started_at", "duration"],
            "results": {name: _result(name, i) for name in NAMES},
            "durations": {},
            "version": 2,
        }
        (machine / f"{commit[:8]}-existing-py.json").write_text(json.dumps(data))
    conf = {
        "version": 1,
        "project": "theus",
        "repo": str(repo),
        "branches": ["main"],
        "dvcs": "git",
        "environment_type": "virtualenv",
        "pythons": ["3.11"],
        "benchmark_dir": "benchmarks",
        "results_dir": "results",
        "html_dir": "html",
        "env_dir": "env",
    }
    (root / "asv.conf.json").write_text(json.dumps(conf))
    done = subprocess.run(
        [sys.executable, "-m", "asv", "publish"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    html = root / "html"
    assert (html / "index.html").is_file()
    left = _offline().localize(html)
    assert left == []
    return html


@pytest.fixture(scope="module")
def server(published):
    handler = functools.partial(_QuietHandler, directory=str(published))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[bytes]:
    cmd = [
        str(CHROMIUM),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp / 'profile'}",
        "--window-size=1000,800",
        "--virtual-time-budget=15000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, timeout=180, check=False)


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [r if channels == 3 else _rgb(r) for r in rows]


def _rgb(row: bytes) -> bytes:
    return bytes(v for i, v in enumerate(row) if i % 4 != 3)


def test_the_published_dashboard_draws_its_graphs(server, tmp_path):
    shot = tmp_path / "dashboard.png"
    done = _chromium(f"--screenshot={shot}", server, tmp=tmp_path)
    assert shot.is_file(), done.stderr.decode(errors="replace")[-3000:]
    keep = os.environ.get("THEUS_DASHBOARD_SCREENSHOT")
    if keep:  # where to keep a copy (the README's picture)
        shutil.copyfile(shot, keep)
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 800)
    pixels = [row[i : i + 3] for row in rows for i in range(0, len(row), 3)]
    non_white = sum(1 for p in pixels if min(p) < 240)
    assert non_white > 0.01 * len(pixels), f"only {non_white} non-blank pixels: an empty page"
    # flot draws the lines in blue; a page of only text and frames has none
    blue = sum(1 for p in pixels if p[2] > 120 and p[2] > p[0] + 60 and p[2] > p[1] + 20)
    assert blue > 200, f"only {blue} plot-coloured pixels: the graphs did not draw"

    dom = _chromium("--dump-dom", server, tmp=tmp_path).stdout.decode(errors="replace")
    assert "Can not determine continental origin of swallow" not in dom
    for name in NAMES:
        assert name.split(".", 1)[1] in dom, f"{name} is not on the page"
    assert dom.count('class="flot-base"') >= len(NAMES)


def test_offline_reports_missing_packages(tmp_path, monkeypatch):
    offline = _offline()
    monkeypatch.setattr(offline, "JS", tmp_path)
    assets = tuple(
        (needle, None if path is None else tmp_path / path.name, pkg)
        for needle, path, pkg in offline.ASSETS
    )
    monkeypatch.setattr(offline, "ASSETS", assets)
    assert "libjs-jquery" in offline.missing()
    with pytest.raises(FileNotFoundError, match="apt-get install -y .*libjs-jquery-flot"):
        offline.localize(tmp_path)
