"""The documentation's links resolve, and the README points to privacy and SEG validation.

Every relative link in README.md and docs/*.md must name an existing file and, with ``#anchor``,
a heading of that file (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", page.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_readme_and_index_link_privacy_and_name_dcmqi():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/privacy.md)" in readme.split("## Documentation")[1]
    assert "(privacy.md)" in (ROOT / "docs/index.md").read_text(encoding="utf-8")
    assert re.search(r"dciodvfy[^.]*dcmqi", readme), "dcmqi beside dciodvfy for SEG validation"
    medical = (ROOT / "docs/medical.md").read_text(encoding="utf-8")
    (recovery,) = [line for line in medical.splitlines() if line.startswith("| Recovery |")]
    assert "privacy.md" in recovery and "0600" in recovery
