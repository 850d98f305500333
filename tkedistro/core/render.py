"""The jinja2 environment and the templates packaged with tkedistro.

Templates use ``[[ ]]`` / ``[% %]`` delimiters so GitHub Actions' ``${{ }}`` passes through.
"""

from __future__ import annotations

from typing import Any

import jinja2


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("tkedistro", "templates"),
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def yaml_documents(*docs: Any) -> str:
    """Plain data as YAML documents (``---`` between them), keys in the order given."""
    from io import StringIO

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buf = StringIO()
    yaml.dump_all(list(docs), buf)
    return buf.getvalue()
