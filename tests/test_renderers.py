"""One renderer per output format, behind one interface: the loop goes over the enum, so no
format is left without one; and the engine keeps to computing (no drawing, no option parsing)."""

import csv
import io
import json

import pytest

from convcalc.output.formats import OutputFormat
from convcalc.output.render import Table
from convcalc.output.renderers import RENDERERS, Renderer, Result

TABLE = Table(("#", "layer", "params"), frozenset({"#", "params"}), (("1", "Conv2d", "1.2 K"), ("2", "ReLU", "0")),
              ("", "total", "1.2 K"), ("a note",), (("1", "Conv2d", "1234"), ("2", "ReLU", "0")),
              ("", "total", "1234"))
RESULT = Result(TABLE, {"schema": "x/1", "layers": [{"index": 1}, {"index": 2}]}, [{"index": 1}, {"index": 2}])


@pytest.mark.parametrize("output", list(OutputFormat), ids=lambda f: f.value)
def test_every_format_has_its_renderer(output):
    renderer = RENDERERS[output]
    assert isinstance(renderer, Renderer) and renderer.format is output
    out = io.StringIO()
    renderer.render(RESULT, out)
    text = out.getvalue()
    expected = {
        OutputFormat.table: lambda: text.splitlines()[0].split() == ["#", "layer", "params"] and "a note" in text,
        OutputFormat.json: lambda: json.loads(text) == RESULT.data,
        OutputFormat.ndjson: lambda: [json.loads(line) for line in text.splitlines()] == RESULT.records,
        OutputFormat.csv: lambda: list(csv.reader(io.StringIO(text)))[1] == ["1", "Conv2d", "1234"],
        OutputFormat.markdown: lambda: text.startswith("| # | layer | params |") and "- a note" in text,
        OutputFormat.mermaid: lambda: text.startswith("flowchart TD\n") and "  n0 --> n1\n  n1 --> n2\n" in text,
        OutputFormat.dot: lambda: text.startswith("digraph network {") and "  n0 -> n1;\n  n1 -> n2;\n" in text,
    }
    assert set(expected) == set(OutputFormat), "describe the new format's output here"
    assert expected[output](), text


def test_no_renderer_without_a_format():
    assert set(RENDERERS) == set(OutputFormat)


def test_the_table_format_prints_text_results_as_they_are():
    out = io.StringIO()
    RENDERERS[OutputFormat.table].render(Result(TABLE, {}, text="o # o"), out)
    assert out.getvalue() == "o # o\n"
    out = io.StringIO()
    RENDERERS[OutputFormat.ndjson].render(Result(TABLE, {"a": 1}), out)  # no records: the object itself
    assert out.getvalue() == '{"a": 1}\n'


def test_the_engine_only_computes():
    import convcalc.engine.units as units

    for name in ("bar", "sparkline", "parse_rate"):  # drawn in output/charts.py, read in cli/values.py
        assert not hasattr(units, name), name
    from convcalc.cli.values import parse_rate
    from convcalc.output.charts import bar, sparkline

    assert bar(0.5, 4) == "██  " and sparkline([1, 8], 2) == "▁█" and parse_rate("1T", "FLOP") == 10**12
