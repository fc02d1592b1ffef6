"""The output formats every command offers (kept free of imports: the CLI needs it at start-up)."""

from enum import Enum


class OutputFormat(str, Enum):
    """Every way a command can print its result."""

    table = "table"  # Rich on a terminal, aligned plain text otherwise
    json = "json"  # one JSON object (the command's schema)
    ndjson = "ndjson"  # one JSON object per layer or row
    csv = "csv"  # the table's cells, with exact numbers
    markdown = "markdown"  # a table to paste into papers and READMEs
    mermaid = "mermaid"  # the network's graph as a Mermaid flowchart (GitHub and GitLab draw it)
    dot = "dot"  # the network's graph as a Graphviz digraph
