"""The documentation site's generated reference blocks.

Pages under ``docs/`` hold blocks between ``<!-- generated:NAME:start -->`` and
``<!-- generated:NAME:end -->``; each NAME is rendered from the code it
documents (the config models, the admin API's route table, the policy pack, the
metric families, the command lines). ``python -m docgen --write`` rewrites the
blocks; ``python -m docgen --check`` (and ``tests/docs/test_generated.py``)
fails when a page is stale.

This package sits outside ``infra``, ``policies`` and ``gateway_app`` on
purpose: it imports all three, which none of them may do with each other.
"""

from docgen.pages import BLOCKS, PAGES, render_page, stale_pages

__all__ = ["BLOCKS", "PAGES", "render_page", "stale_pages"]
