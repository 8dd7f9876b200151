"""The documentation site builds in strict mode, and the README's links land on it.

``mkdocs build --strict`` fails on a broken link, a missing anchor, a nav entry
without a page or a page left out of the nav (``mkdocs.yml``'s ``validation``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

MKDOCS = Path(sys.executable).with_name("mkdocs")


def _build(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(MKDOCS),
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _stray_table_rows(site: Path) -> list[str]:
    """Markdown table rows a page shows as text: a row that does not follow its table's
    rows directly (a paragraph or blank line between them) is rendered as a paragraph,
    and the rows after it read as ``| a | b |`` lines. Code blocks are left out."""
    stray = []
    for page in sorted(site.rglob("*.html")):
        text = re.sub(r"<pre\b.*?</pre>", "", page.read_text(), flags=re.S)
        rows = re.findall(r"^\|.*\|$", text, flags=re.M)
        stray += [f"{page.relative_to(site)}: {row[:80]}" for row in rows]
    return stray


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    built = _build(tmp_path / "site", ROOT / "mkdocs.yml")
    assert built.returncode == 0, built.stderr[-4000:]
    # Every table row renders in its table (strict mode does not check it).
    assert _stray_table_rows(tmp_path / "site") == []
    # Diagrams are code rendered by the site (Mermaid), not images.
    assert (
        'class="mermaid"' in (tmp_path / "site" / "explanation" / "architecture.html").read_text()
    )
    # The shared getting-started steps were included, not left as include markers.
    aws = (tmp_path / "site" / "getting-started" / "aws.html").read_text()
    assert "--8&lt;--" not in aws and 'id="reach-the-gateway"' in aws


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    """The strict build is a real judge: one dangling link in one page fails it."""
    docs = tmp_path / "docs"
    subprocess.run(["cp", "-r", str(ROOT / "docs"), str(docs)], check=True)
    page = docs / "how-to" / "drain-a-cloud.md"
    page.write_text(page.read_text() + "\nSee [nowhere](no-such-page.md).\n")
    text = (ROOT / "mkdocs.yml").read_text()
    assert "\ndocs_dir: docs\n" in text
    text = text.replace("\ndocs_dir: docs\n", f"\ndocs_dir: {docs}\n")
    broken = tmp_path / "mkdocs.yml"
    broken.write_text(text)
    built = _build(tmp_path / "site", broken)
    assert built.returncode != 0
    assert "no-such-page.md" in built.stderr


def test_the_readme_links_into_the_docs_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((?!https?://|#)([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert any(link.startswith("docs/") for link in links), "the README links no docs page"
    for link in links:
        assert (ROOT / link).exists(), f"README links {link}, which does not exist"


def test_the_readme_is_a_landing_page() -> None:
    """At most about 250 lines; the two quick-start commands come first; a reader finds
    "add a model to a deployed stack" from it."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    first_block = re.search(r"```(?:sh|bash)\n(.*?)```", readme, re.S)
    assert first_block and first_block.group(1).split() == ["./scripts/plan"]
    second_block = re.findall(r"```(?:sh|bash)\n(.*?)```", readme, re.S)[1]
    assert second_block.split() == ["./scripts/test"]
    assert "(docs/how-to/add-model.md)" in readme
