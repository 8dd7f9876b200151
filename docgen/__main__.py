"""``python -m docgen --write`` regenerates the reference blocks; ``--check`` lists stale pages."""

from __future__ import annotations

import argparse
import sys

from docgen.pages import DOCS, PAGES, render_page, stale_pages


def main(argv: list[str] | None = None) -> int:
    """Write or check every generated block; exit 1 when ``--check`` finds a stale page."""
    parser = argparse.ArgumentParser(prog="python -m docgen", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if a page is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages()
        for page in stale:
            print(f"docs/{page} is stale: run `python -m docgen --write`", file=sys.stderr)
        return 1 if stale else 0
    for page in PAGES:
        path = DOCS / page
        text = path.read_text()
        fresh = render_page(text)
        if fresh != text:
            path.write_text(fresh)
            print(f"wrote docs/{page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
