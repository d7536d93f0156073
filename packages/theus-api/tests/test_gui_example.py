"""The Tkinter example (examples/gui/run_window.py, issue 13) under a real X server: the test
starts its own Xvfb on a free display, runs the example in a subprocess, takes screenshots of
the screen with xwd while the run is in progress and after it ended, and checks that the
window drew (non-blank pixels), that it showed progress (rows turn from "running" blue to
"done" green, the two pictures differ, the status file the window writes once Tk drew its
state), and that the run completed — or, pressed by the example's --cancel-after, cancelled
between steps.

Runs where tkinter, Xvfb and xwd are installed (Debian: apt-get install xvfb x11-apps);
skipped with the reason otherwise. THEUS_GUI_SCREENSHOT=PATH keeps the in-progress
screenshot as a PNG (the README's picture).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gui" / "run_window.py"
XVFB = shutil.which("Xvfb")
XWD = shutil.which("xwd")
WIDTH, HEIGHT = 640, 520
# the example's row colours (run_window.COLOURS): running and done backgrounds
RUNNING = (0xBC, 0xD7, 0xFF)
DONE = (0xC9, 0xEF, 0xC9)


def _skip_reason() -> str | None:
    if importlib.util.find_spec("_tkinter") is None:
        return f"this Python ({sys.executable}) has no tkinter (_tkinter) module"
    if XVFB is None:
        return "Xvfb is not installed (apt-get install xvfb)"
    if XWD is None:
        return "xwd is not installed (apt-get install x11-apps)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


@pytest.fixture(scope="module")
def display(tmp_path_factory):
    """A private Xvfb; its display number chosen by the server itself (-displayfd)."""
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    read, write = os.pipe()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(XVFB), "-displayfd", str(write), "-screen", "0", f"{WIDTH}x{HEIGHT}x24"],
            pass_fds=(write,),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()  # empty when the server exits first
        if not number.isdigit():
            pytest.fail(f"Xvfb did not start: {log.read_text(errors='replace')}")
        yield f":{number}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _screenshot(display: str) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(width, height, RGB pixels row by row) of the whole X screen, through xwd."""
    done = subprocess.run([str(XWD), "-root", "-silent", "-display", display],
                          capture_output=True, timeout=60, check=True)  # fmt: skip
    return _read_xwd(done.stdout)


def _read_xwd(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode an XWD (X11 window dump, version 7) of a TrueColor screen, ZPixmap format."""
    header = struct.unpack(">25I", data[:100])
    (size, version, pixmap_format, _depth, width, height, _xoffset, byte_order, _unit,
     _bit_order, _pad, bits_per_pixel, bytes_per_line, _visual, red_mask, green_mask,
     blue_mask, _bits_rgb, _entries, ncolors, *_rest) = header  # fmt: skip
    assert version == 7 and pixmap_format == 2, f"XWD version {version}, format {pixmap_format}"
    assert bits_per_pixel in (24, 32), f"{bits_per_pixel} bits per pixel"
    start = size + 12 * ncolors
    step = bits_per_pixel // 8
    order = "little" if byte_order == 0 else "big"

    def channel(value: int, mask: int) -> int:
        shift = (mask & -mask).bit_length() - 1
        return ((value & mask) >> shift) * 255 // (mask >> shift)

    pixels = []
    for y in range(height):
        line = data[start + y * bytes_per_line : start + (y + 1) * bytes_per_line]
        for x in range(width):
            value = int.from_bytes(line[x * step : (x + 1) * step], order)
            pixels.append(
                (channel(value, red_mask), channel(value, green_mask), channel(value, blue_mask))
            )
    return width, height, pixels


def _write_png(path: Path, width: int, height: int, pixels: list[tuple[int, int, int]]) -> None:
    raw = b"".join(
        b"\x00" + bytes(v for p in pixels[y * width : (y + 1) * width] for v in p)
        for y in range(height)
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def _near(pixel: tuple[int, int, int], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 6 for a, b in zip(pixel, colour, strict=True))


def _start(display: str, status: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DISPLAY": display}
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--status", str(status), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def _wait_for(app: subprocess.Popen[bytes], status: Path, ready: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = _status(status)
        if current is not None and ready(current):
            return current
        if app.poll() is not None:
            _, err = app.communicate()
            pytest.fail(f"the example exited ({app.returncode}) before {what}: {err.decode()}")
        time.sleep(0.02)
    app.kill()
    pytest.fail(f"timed out waiting for {what}; last status: {_status(status)}")


def _finish(app: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    try:
        out, err = app.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        app.kill()
        out, err = app.communicate()
    return app.returncode, out.decode(), err.decode()


def test_window_shows_live_progress_and_the_summary(display, tmp_path):
    status = tmp_path / "status.json"
    app = _start(display, status, "--delay", "0.3", "--exit-after", "2")
    try:
        midway = _wait_for(
            app,
            status,
            lambda s: s["state"] == "running" and 3 <= s["committed"] <= s["expected"] - 4,
            "three steps committed",
        )
        width, height, during = _screenshot(display)
        after_shot = _status(status)
        final = _wait_for(app, status, lambda s: s["state"] != "running", "the end of the run")
        _, _, end = _screenshot(display)
    finally:
        code, out, err = _finish(app)
    assert code == 0, err
    assert out == "", "the example prints nothing"
    keep = os.environ.get("THEUS_GUI_SCREENSHOT")
    if keep:
        _write_png(Path(keep), width, height, during)

    # the run: completed, every step committed, what the window says at the end
    assert final["state"] == "completed", final
    assert final["committed"] == final["expected"] == 14
    assert final["summary"].startswith("Completed: 14 steps, version 14,"), final["summary"]
    assert final["summary"].endswith("published 9 rows")
    assert final["progress"] == 14
    assert final["title"] == "nightly batches: completed (14/14)"
    assert {s["process"]: s["runs"] for s in final["steps"]} == {
        "load": 1, "fetch": 3, "clean": 3, "tag": 3, "store": 3, "publish": 1, "review": 0,
    }  # fmt: skip
    assert {s["status"] for s in final["steps"] if s["process"] != "review"} == {"done"}
    # midway: part of the bar, some rows done, the rest pending or running, time going on
    assert after_shot is not None and after_shot["state"] == "running"
    assert 0 < midway["progress"] < 14 and midway["current"]
    statuses = Counter(s["status"] for s in midway["steps"])
    assert statuses["done"] >= 1 and statuses["pending"] >= 1, statuses
    assert 0 < midway["elapsed"] < final["elapsed"]

    # the pictures: the window drew, and it drew the progress
    assert (width, height) == (WIDTH, HEIGHT)
    for picture in (during, end):
        colours = Counter(picture)
        background, count = colours.most_common(1)[0]
        assert count < 0.9 * len(picture), f"{count} of {len(picture)} pixels are {background}"
        assert len(colours) > 20, "too few colours for a window with text"
    changed = sum(1 for a, b in zip(during, end, strict=True) if a != b)
    assert changed > 2000, f"only {changed} pixels changed between midway and the end"
    done_during = sum(1 for p in during if _near(p, DONE))
    done_end = sum(1 for p in end if _near(p, DONE))
    running_end = sum(1 for p in end if _near(p, RUNNING))
    assert done_during > 500, f"{done_during} 'done' pixels midway: no finished row drawn"
    assert done_end > done_during + 500, (done_during, done_end)
    assert running_end == 0, f"{running_end} 'running' pixels after the run ended"


def test_cancel_stops_the_run_between_steps(display, tmp_path):
    # on the reference backend (the first test runs on the best installed one)
    status = tmp_path / "status.json"
    app = _start(display, status, "--delay", "0.3", "--cancel-after", "3", "--exit-after", "0.5",
                 "--backend", "reference")  # fmt: skip
    try:
        final = _wait_for(
            app, status, lambda s: s["state"] not in ("starting", "running", "cancelling"),
            "the end of the cancelled run",
        )  # fmt: skip
    finally:
        code, _, err = _finish(app)
    assert code == 0, err
    assert final["state"] == "cancelled", final
    # Cancel was pressed once 3 steps committed; steps already running finish and commit
    # (at most the two parallel branches), no later one starts
    assert 3 <= final["committed"] <= 5, final
    assert final["summary"] == f"Cancelled after {final['committed']} steps (version " + (
        f"{final['version']})"
    )
    steps = {s["process"]: s for s in final["steps"]}
    assert sum(s["runs"] for s in steps.values()) == final["committed"]
    assert steps["fetch"]["runs"] == 1 and steps["load"]["status"] == "done", steps
    assert steps["publish"]["status"] == steps["review"]["status"] == "not run", steps
    assert "running" not in {s["status"] for s in steps.values()}, steps
    assert final["title"] == f"nightly batches: cancelled ({final['committed']}/14)"
