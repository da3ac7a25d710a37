"""docs/store.md lists every kind of store and its arrays as the stages declare them."""

import re

from vscr_cli.schemas import SCHEMAS
from vscr_cli.store import schemas_markdown

from .conftest import REPO


def test_store_md_table_matches_the_schemas():
    text = (REPO / "docs" / "store.md").read_text()
    documented = re.search(r"<!-- schemas: begin[^>]*-->\n(.*?)<!-- schemas: end -->", text, re.S)
    assert documented is not None, "docs/store.md has no schemas block"
    assert documented.group(1) == schemas_markdown(SCHEMAS.values()), (
        "docs/store.md disagrees with vscr_cli.schemas; regenerate the block with "
        "python -c 'from vscr_cli.schemas import SCHEMAS; from vscr_cli.store import schemas_markdown; print(schemas_markdown(SCHEMAS.values()))'"
    )


def test_schemas_name_each_kind_once():
    assert all(kind == schema.kind for kind, schema in SCHEMAS.items())
    for schema in SCHEMAS.values():
        names = [spec.name for spec in schema.arrays]
        assert len(names) == len(set(names)) and "frame_index" not in names
