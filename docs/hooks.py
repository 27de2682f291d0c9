"""mkdocs hook: the site's home page is the repository's README.

README.md links to the other pages as ``docs/NAME.md`` (right on the repository's front page);
on the site those pages sit beside the home page, so the prefix is dropped.
"""

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def on_page_markdown(markdown, page, **kwargs):
    """Replace ``docs/index.md`` with README.md, its ``docs/`` links made site-relative."""
    if page.file.src_uri != "index.md":
        return markdown
    return README.read_text(encoding="utf-8").replace("](docs/", "](")
