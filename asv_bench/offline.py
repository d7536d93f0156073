"""Make a published asv dashboard work offline: its JavaScript and CSS from Debian packages.

    python offline.py HTML_DIR

`asv publish` writes an `index.html` that loads jQuery, Flot, Bootstrap, stupidtable and
blueimp-md5 from public CDNs; without network access (CI, a laptop on a train) the page shows
"Can not determine continental origin of swallow" and draws nothing. This copies local copies
into `HTML_DIR/vendor/` and points `index.html` at them (integrity attributes dropped: the
files differ from the CDN builds). Sources are the Debian packages `libjs-jquery`,
`libjs-jquery-flot` (Flot 4: one bundle that contains the time, selection and categories
plugins), `libjs-bootstrap`, `libjs-jquery-stupidtable`, `node-blueimp-md5`. The Flot
orderBars plugin has no Debian package; its tag is removed (bars of one category then overlap
in the bar view, nothing else changes). Exit status 1 naming the missing packages.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

JS = Path("/usr/share/javascript")
# (a substring of the CDN URL, the local file or None to drop the tag, its Debian package)
ASSETS: tuple[tuple[str, Path | None, str], ...] = (
    ("code.jquery.com/jquery-", JS / "jquery" / "jquery.min.js", "libjs-jquery"),
    ("flot/0.8.3/jquery.flot.min.js", JS / "jquery-flot" / "jquery.flot.js", "libjs-jquery-flot"),
    ("flot/0.8.3/jquery.flot.time.min.js", None, "libjs-jquery-flot"),
    ("flot/0.8.3/jquery.flot.selection.min.js", None, "libjs-jquery-flot"),
    ("flot/0.8.3/jquery.flot.categories.min.js", None, "libjs-jquery-flot"),
    ("flot-orderbars", None, ""),
    (
        "stupidtable.min.js",
        JS / "jquery-stupidtable" / "stupidtable.min.js",
        "libjs-jquery-stupidtable",
    ),
    ("md5.min.js", JS / "blueimp-md5" / "md5.min.js", "node-blueimp-md5"),
    ("bootstrap.min.js", JS / "bootstrap" / "js" / "bootstrap.min.js", "libjs-bootstrap"),
    ("bootstrap.min.css", JS / "bootstrap" / "css" / "bootstrap.min.css", "libjs-bootstrap"),
)
DEBIAN_PACKAGES = sorted({pkg for _, _, pkg in ASSETS if pkg})
_TAG = re.compile(r"<(script|link)\b[^>]*?(?:src|href)=\"(https://[^\"]+)\"[^>]*>(?:\s*</script>)?")


def missing() -> list[str]:
    """The Debian packages whose files are not installed."""
    return sorted({pkg for _, path, pkg in ASSETS if path is not None and not path.is_file()})


def localize(html_dir: Path) -> list[str]:
    """Rewrite ``html_dir/index.html`` to load local copies; return the remote URLs left."""
    absent = missing()
    if absent:
        raise FileNotFoundError(
            "the dashboard's scripts are not installed: apt-get install -y " + " ".join(absent)
        )
    index = html_dir / "index.html"
    text = index.read_text(encoding="utf-8")
    vendor = html_dir / "vendor"
    vendor.mkdir(exist_ok=True)
    left: list[str] = []

    def replace(match: re.Match[str]) -> str:
        tag, url = match.group(1), match.group(2)
        for needle, path, _ in ASSETS:
            if needle in url:
                if path is None:
                    return ""
                shutil.copyfile(path, vendor / path.name)
                if tag == "link":
                    return f'<link rel="stylesheet" href="vendor/{path.name}">'
                return f'<script src="vendor/{path.name}"></script>'
        if tag == "script":
            left.append(url)
        return match.group(0)

    index.write_text(_TAG.sub(replace, text), encoding="utf-8")
    return left


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python offline.py HTML_DIR\n")
        return 2
    try:
        left = localize(Path(argv[0]))
    except FileNotFoundError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    if left:
        sys.stderr.write(f"still loaded from the network: {', '.join(left)}\n")
        return 1
    sys.stdout.write(f"{Path(argv[0]) / 'index.html'}: scripts served locally\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
