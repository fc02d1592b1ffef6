"""Pictures of a network: --format mermaid and dot, and convcalc draw (SVG, PNG, HTML).

The graph drawn is checked against the graph given (the document's own from lists and outputs,
or the layers' from lists in the JSON object), DOT by Graphviz's own parser (dot -Tjson gives each
node's drawn text lines and the edges), Mermaid by a strict grammar of the lines convcalc writes,
the SVG by xml.etree, and the HTML page in headless Chromium (a screenshot, no console message,
nothing fetched). Hostile layer names must come out as text, never as syntax.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.engine.escape import escape

runner = CliRunner()

# A residual block with an auxiliary head: a branch, a merge and two outputs.
RESIDUAL = {"input": [8, 16, 16], "outputs": ["aux"], "layers": [
    {"type": "conv", "out_channels": 8, "kernel_size": 3, "padding": 1, "name": "stem"},
    {"type": "conv", "out_channels": 8, "kernel_size": 3, "padding": 1, "name": "conv1"},
    {"type": "relu", "name": "relu1"},
    {"type": "conv", "out_channels": 8, "kernel_size": 3, "padding": 1, "name": "conv2"},
    {"type": "add", "from": ["conv2", "stem"], "name": "sum"},
    {"type": "gap", "from": ["relu1"], "name": "aux"},
    {"type": "relu", "from": ["sum"], "name": "out"}]}
# What each layer reads, as the document says (a layer without from reads the one before it).
RESIDUAL_EDGES = {("input", "stem"), ("stem", "conv1"), ("conv1", "relu1"), ("relu1", "conv2"), ("conv2", "sum"),
                  ("stem", "sum"), ("relu1", "aux"), ("sum", "out")}
RESIDUAL_OUTPUTS = {"aux", "out"}

HOSTILE = ['quote"d', '"];\nevil [label="pwned"];', "<script>alert(1)</script>", "two\nlines", "esc\x1b[31mred",
           "back`tick`", '%%{init: {"theme": "dark"}}%%', "end", "subgraph x", "a --> b", "slash\\n\\l\\N",
           "#quot;entity", "[[x]]{y}|z;", "&amp; <b>bold</b>", "\u202eevil\u2028", "style n1 fill:#f00;",
           "ﬂ°°60¶ßx", "click n1 call alert(1)", "<img src=x onerror=alert(1)>"]


def _invoke(*args, stdin: str | None = None):
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == 0, (args, result.stderr, result.exception)
    return result


def _hostile_document() -> str:
    return json.dumps({"input": [3, 8, 8], "layers": [{"type": "relu", "name": name} for name in HOSTILE]})


# Mermaid: the text is a run of the four statements convcalc writes, so nothing was broken out of.

_STATEMENT = re.compile(r' *(?:(\w+)(?:\["([^"]*)"\]|\(\["([^"]*)"\]\))|subgraph (\w+)\["([^"]*)"\]|(end)|(\w+) --> (\w+))\n')


def _decoded(label: str) -> list[str]:
    bare = re.sub(r"#\d+;", "", label)
    assert not set(bare) & set('"<>`[]{}|;:%#\\ﬂ¶'), label  # signs only as entity codes
    return re.sub(r"#(\d+);", lambda m: chr(int(m[1])), label).split("\n")


def _mermaid(text: str) -> tuple[dict, set, dict]:
    """Nodes (id -> text lines), edges and subgraphs (title -> node ids) of convcalc's Mermaid."""
    assert text.startswith("flowchart TD\n")
    nodes, edges, subgraphs, inside, at = {}, set(), {}, None, len("flowchart TD\n")
    while at < len(text):
        match = _STATEMENT.match(text, at)
        assert match is not None, f"a statement convcalc does not write: {text[at:at + 80]!r}"
        at = match.end()
        node, square, round_, subgraph, title, end, tail, head = match.groups()
        if node is not None:
            nodes[node] = _decoded(square if square is not None else round_)
            if inside is not None:
                subgraphs[inside].append(node)
        elif subgraph is not None:
            inside = "\n".join(_decoded(title))
            subgraphs[inside] = []
        elif end is not None:
            inside = None
        else:
            edges.add((tail, head))
    return nodes, edges, subgraphs


def _dot(text: str) -> tuple[dict, set, dict]:
    """Nodes (name -> the text lines Graphviz draws), edges and clusters (label -> node names), as
    Graphviz itself parses the text (dot -Tjson)."""
    done = subprocess.run(["dot", "-Tjson"], input=text.encode(), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    graph = json.loads(done.stdout)
    objects = graph["objects"]
    by_id = {o["_gvid"]: o["name"] for o in objects if "nodes" not in o and "subgraphs" not in o}
    nodes = {o["name"]: [d["text"] for d in o.get("_ldraw_", []) if d["op"] == "T"]
             for o in objects if o["_gvid"] in by_id and o["name"] == by_id[o["_gvid"]]}
    clusters = {"\n".join(d["text"] for d in o.get("_ldraw_", []) if d["op"] == "T"): [by_id[n] for n in o.get("nodes", [])]
                for o in objects if o["name"].startswith("cluster_")}
    edges = {(by_id[e["tail"]], by_id[e["head"]]) for e in graph.get("edges", [])}
    return nodes, edges, clusters


def _named_edges(nodes: dict, edges: set) -> set:
    """Edges by the layers' names (each node's first line; the input is 'input'), outputs left out."""
    name = {node: lines[0] for node, lines in nodes.items()}
    return {(name[a], name[b]) for a, b in edges if name[b] != "output"}


def _outputs(nodes: dict, edges: set) -> set:
    return {nodes[a][0] for a, b in edges if nodes[b] == ["output"]}


needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot (apt-get install graphviz)")
needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None,
                                    reason="needs chromium for the page (apt-get install chromium)")


def test_mermaid_of_a_residual_block_is_its_graph():
    text = _invoke("shape", "-f", "-", "--format", "mermaid", stdin=json.dumps(RESIDUAL)).stdout
    nodes, edges, subgraphs = _mermaid(text)
    assert _named_edges(nodes, edges) == RESIDUAL_EDGES
    assert _outputs(nodes, edges) == RESIDUAL_OUTPUTS
    assert not subgraphs
    # each box: name, type, then output shape, params and MACs (a 3x3 conv 8 -> 8 on 16x16, with bias)
    conv = next(lines for lines in nodes.values() if lines[0] == "conv1")
    params, macs = 8 * 8 * 3 * 3 + 8, 8 * 16 * 16 * 8 * 3 * 3
    assert conv[1] == "Conv2d 8→8 k=3 p=1" and conv[2] == f"8x16x16 · {params} params · {macs // 1000} K MACs"


@needs_dot
def test_dot_of_a_residual_block_is_its_graph():
    text = _invoke("shape", "-f", "-", "--format", "dot", stdin=json.dumps(RESIDUAL)).stdout
    nodes, edges, clusters = _dot(text)
    assert _named_edges(nodes, edges) == RESIDUAL_EDGES
    assert _outputs(nodes, edges) == RESIDUAL_OUTPUTS
    assert not clusters
    assert nodes[next(n for n, lines in nodes.items() if lines[0] == "sum")][1] == "Add 2 branches"


def _preset(depth: str) -> tuple[list, str, str]:
    layers = json.loads(_invoke("shape", "--preset", "resnet18", "--json").stdout)["layers"]
    mermaid = _invoke("shape", "--preset", "resnet18", "--depth", depth, "--format", "mermaid").stdout
    dot = _invoke("shape", "--preset", "resnet18", "--depth", depth, "--format", "dot").stdout
    return layers, mermaid, dot


def _expected(layers: list) -> set:
    """The edges the JSON object's from lists give (a name, #n for an unnamed layer, or input)."""
    label = {f"#{r['index']}" if r["name"] is None else r["name"]: r for r in layers}
    return {(source, f"#{r['index']}" if r["name"] is None else r["name"]) for r in layers for source in r["from"]
            if source == "input" or source in label}


def test_a_preset_by_blocks_has_every_layer_and_edge_and_a_subgraph_per_block():
    layers, mermaid, _ = _preset("1")
    nodes, edges, subgraphs = _mermaid(mermaid)
    names = {f"#{r['index']}" if r["name"] is None else r["name"] for r in layers}
    assert {lines[0] for lines in nodes.values()} == names | {"input", "output"}
    assert _named_edges(nodes, edges) == _expected(layers)
    blocks = sorted({r["path"][0] for r in layers if r["path"]})
    assert sorted(title.split(" (")[0] for title in subgraphs) == blocks  # layer1.0 ... layer4.1
    for title, members in subgraphs.items():
        inside = {f"#{r['index']}" if r["name"] is None else r["name"] for r in layers
                  if r["path"][:1] == [title.split(" (")[0]]}
        assert {nodes[m][0] for m in members} == inside and title.endswith(f"({len(inside)} layers)")


@needs_dot
def test_a_preset_by_blocks_in_dot_has_a_cluster_per_block():
    layers, _, dot = _preset("1")
    nodes, edges, clusters = _dot(dot)
    assert _named_edges(nodes, edges) == _expected(layers)
    assert len(nodes) == len(layers) + 2
    assert {title.split(" (")[0] for title in clusters} == {r["path"][0] for r in layers if r["path"]}
    assert re.search(r"subgraph cluster_c1 \{", dot)


def test_depth_zero_is_one_subgraph_and_a_depth_past_the_blocks_none():
    layers, mermaid, _ = _preset("0")
    subgraphs = _mermaid(mermaid)[2]
    assert list(subgraphs) == [f"network ({len(layers)} layers)"] and len(subgraphs[f"network ({len(layers)} layers)"]) \
        == len(layers)
    assert not _mermaid(_preset("5")[1])[2]


def test_compare_draws_each_variant_in_a_subgraph():
    data = json.loads(_invoke("compare", "8x16x16", "conv:16,k=3", "--json").stdout)
    nodes, edges, subgraphs = _mermaid(_invoke("compare", "8x16x16", "conv:16,k=3", "--format", "mermaid").stdout)
    drawn = [v for v in data["variants"] if v["applicable"]]
    assert list(subgraphs) == [v["name"].replace("_", " ") for v in drawn]
    for variant, members in zip(drawn, subgraphs.values()):
        assert len(members) == len(variant["layers"]) + 2  # its input, its layers, its output
        own = {(a, b) for a, b in edges if a in members and b in members}
        assert _named_edges({m: nodes[m] for m in members}, own) == _expected(variant["layers"])
        assert len(own) == len(_expected(variant["layers"])) + 1  # and the edge to its output


def _in_mermaid(name: str) -> str:
    """A name as Mermaid shows it: escaped, and the two characters that start Mermaid's own entity
    runs (ﬂ°°60¶ß would show as <) written as codes."""
    return escape(name).replace("ﬂ", "\\ufb02").replace("¶", "\\xb6")


def _blocks_document() -> str:
    """Each hostile name as a block (a path) of two layers."""
    return json.dumps({"input": [3, 8, 8], "layers": [{"type": "relu", "path": [name]} for name in HOSTILE
                                                      for _ in range(2)]})


def test_hostile_names_stay_text_in_mermaid():
    text = _invoke("shape", "-f", "-", "--format", "mermaid", stdin=_hostile_document()).stdout
    nodes, edges, _ = _mermaid(text)  # every statement parsed: nothing broke out
    assert [nodes[f"n{i + 1}"][0] for i in range(len(HOSTILE))] == [_in_mermaid(name) for name in HOSTILE]
    assert len(edges) == len(HOSTILE) + 1
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]", text)
    subgraphs = _mermaid(_invoke("shape", "-f", "-", "--depth", "1", "--format", "mermaid",
                                 stdin=_blocks_document()).stdout)[2]
    assert list(subgraphs) == [f"{_in_mermaid(name)} (2 layers)" for name in HOSTILE]


def _ops_document() -> str:
    """Each hostile name as the operation of a layer convcalc cannot cost (an opaque layer's type)."""
    return json.dumps({"input": [3, 8, 8], "layers": [{"type": "opaque", "op": name, "output": [3, 8, 8]}
                                                      for name in HOSTILE]})


def test_hostile_operations_stay_text_in_both_languages():
    nodes = _mermaid(_invoke("shape", "-f", "-", "--format", "mermaid", stdin=_ops_document()).stdout)[0]
    assert [nodes[f"n{i + 1}"][1] for i in range(len(HOSTILE))] == [f"{_in_mermaid(op)} from 3x8x8" for op in HOSTILE]
    assert all(nodes[f"n{i + 1}"][2].endswith(" · ? MACs") for i in range(len(HOSTILE)))  # not counted
    if shutil.which("dot"):
        nodes = _dot(_invoke("shape", "-f", "-", "--format", "dot", stdin=_ops_document()).stdout)[0]
        assert [nodes[f"n{i + 1}"][1] for i in range(len(HOSTILE))] == [f"{escape(op)} from 3x8x8" for op in HOSTILE]


@needs_dot
def test_hostile_names_stay_text_in_dot():
    text = _invoke("shape", "-f", "-", "--format", "dot", stdin=_hostile_document()).stdout
    nodes, edges, _ = _dot(text)
    assert len(nodes) == len(HOSTILE) + 2 and len(edges) == len(HOSTILE) + 1  # no node or edge added
    assert [nodes[f"n{i + 1}"][0] for i in range(len(HOSTILE))] == [escape(name) for name in HOSTILE]
    svg = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True, timeout=120)
    assert svg.returncode == 0
    texts = [t.text for t in ElementTree.fromstring(svg.stdout).iter("{http://www.w3.org/2000/svg}text")]
    assert all(escape(name) in texts for name in HOSTILE)
    clusters = _dot(_invoke("shape", "-f", "-", "--depth", "1", "--format", "dot", stdin=_blocks_document()).stdout)[2]
    assert sorted(clusters) == sorted(f"{escape(name)} (2 layers)" for name in HOSTILE)


@needs_dot
def test_draw_svg_holds_every_layer_name(tmp_path):
    layers = json.loads(_invoke("shape", "--preset", "resnet18", "--json").stdout)["layers"]
    out = tmp_path / "net.svg"
    out.write_text("an older picture")  # replaced
    _invoke("draw", "--preset", "resnet18", "--depth", "1", "-o", str(out))
    root = ElementTree.parse(out).getroot()
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {r["name"] for r in layers if r["name"]} <= texts
    assert {f"#{r['index']}" for r in layers if r["name"] is None} <= texts
    assert sum(1 for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "cluster") == 8


@needs_dot
def test_draw_writes_png_and_to_stdout(tmp_path):
    out = tmp_path / "net.png"
    _invoke("draw", "3x16x16", "conv:4,k=3", "relu", "-o", str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = _invoke("draw", "3x16x16", "conv:4,k=3", "relu", "-o", "-").stdout
    assert ElementTree.fromstring(svg[svg.index("<svg"):]).tag.endswith("svg")
    mermaid = _invoke("draw", "-f", "-", "--as", "mermaid", "-o", "-", stdin=json.dumps(RESIDUAL)).stdout
    assert _named_edges(*_mermaid(mermaid)[:2]) == RESIDUAL_EDGES


def test_draw_text_formats_match_shape(tmp_path):
    for kind, ending in (("mermaid", "mmd"), ("dot", "dot")):
        out = tmp_path / f"net.{ending}"
        _invoke("draw", "--preset", "resnet18", "--depth", "1", "-o", str(out))
        shown = _invoke("shape", "--preset", "resnet18", "--depth", "1", "--format", kind).stdout
        assert out.read_text() == shown


@pytest.mark.parametrize("args, message", [
    (["-o", "net.txt"], "cannot tell what to draw into 'net.txt'"),
    (["-o", "net"], "cannot tell what to draw into 'net'"),
    (["-o", "-", "--as", "jpeg"], "--as takes svg, png, html, dot, mermaid"),
    (["-o", "/no/such/dir/net.mmd"], "cannot write '/no/such/dir/net.mmd'"),
    (["-o", "net.svg", "--depth", "-1"], "--depth must be 0 or more"),
])
def test_draw_refuses_in_one_line(args, message):
    result = runner.invoke(app, ["draw", "3x8x8", "relu", *args])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {message}"), result.stderr
    assert not result.stdout and len(result.stderr.splitlines()) <= 2


def test_without_graphviz_svg_is_refused_and_html_lists_the_layers(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    result = runner.invoke(app, ["draw", "3x8x8", "relu", "-o", str(tmp_path / "net.svg")])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert "apt-get install graphviz" in result.stderr and "brew install graphviz" in result.stderr
    assert "--format dot" in result.stderr and not (tmp_path / "net.svg").exists()
    page = tmp_path / "net.html"
    result = runner.invoke(app, ["draw", "-f", "-", "-o", str(page)], input=_hostile_document())
    assert result.exit_code == 0 and "Graphviz's dot is not installed" in result.stderr
    text = _page_text(page.read_text())
    assert "listed rather than drawn" in text and all(escape(name) in text for name in HOSTILE)


class _Text(HTMLParser):
    """The text a browser shows, and the tags and attributes it sees."""

    def __init__(self):
        super().__init__()
        self.parts, self.tags, self.attributes = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_data(self, data):
        self.parts.append(data)


def _page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "".join(parser.parts)


def _assert_self_contained(html: str) -> None:
    parser = _Text()
    parser.feed(html)
    assert not {"script", "img", "link", "iframe", "object", "embed", "image", "use"} & set(parser.tags)
    assert not [value for name, value in parser.attributes if name in ("src", "href", "xlink:href", "srcset", "action")
                and not (value or "").startswith("#")]
    assert not re.search(r"(?i)https?:|//[a-z]", html)  # no address at all, not even a namespace's
    assert "default-src 'none'" in html


@needs_dot
def test_html_page_is_self_contained_and_escaped(tmp_path):
    page = tmp_path / "net.html"
    _invoke("draw", "-f", "-", "--device", "a100-80gb", "-o", str(page), stdin=_hostile_document())
    html = page.read_text()
    _assert_self_contained(html)
    assert "<script>alert" not in html and "\x1b" not in html
    text = _page_text(html)
    assert all(escape(name) in text for name in HOSTILE)  # in the graph and the table
    assert "Memory over the run" in text and "Time bound per layer" in text and "memory-bound" in text


def _devtools(page: Path, profile: Path, timeout: float = 60.0) -> tuple[list[str], list[str]]:
    """Every URL headless Chromium requests while it loads ``page`` (the page's own included), and every
    console message, log entry and exception, over the DevTools protocol on a pipe (fds 3 and 4)."""
    commands_r, commands_w = os.pipe()
    events_r, events_w = os.pipe()

    def wire():  # Chromium reads commands on fd 3 and writes to fd 4
        os.dup2(commands_r, 3)
        os.dup2(events_w, 4)

    proc = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                             "--remote-debugging-pipe", "--host-resolver-rules=MAP * ~NOTFOUND", "about:blank"],
                            pass_fds=(3, 4), preexec_fn=wire, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(commands_r)
    os.close(events_w)
    buffer, number, requests, messages = b"", 0, [], []
    deadline = time.monotonic() + timeout

    def send(method, params=None, session=None):
        nonlocal number
        number += 1
        message = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(commands_w, json.dumps(message).encode() + b"\0")
        return number

    def receive():
        nonlocal buffer
        while b"\0" not in buffer:
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            ready, _, _ = select.select([events_r], [], [], left)
            if ready:
                chunk = os.read(events_r, 1 << 16)
                assert chunk, "Chromium closed the pipe"
                buffer += chunk
        raw, _, buffer = buffer.partition(b"\0")
        message = json.loads(raw)
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            requests.append(params["request"]["url"])
        elif method == "Runtime.consoleAPICalled":
            messages.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Log.entryAdded":
            messages.append(params["entry"]["text"])
        elif method == "Runtime.exceptionThrown":
            messages.append(params["exceptionDetails"]["text"])
        return message

    def call(method, params=None, session=None):
        wanted = send(method, params, session)
        while True:
            message = receive()
            if message.get("id") == wanted:
                assert "error" not in message, message
                return message.get("result", {})

    try:
        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Runtime", "Log", "Page"):
            call(f"{domain}.enable", session=session)
        call("Page.navigate", {"url": page.as_uri()}, session)
        while receive().get("method") != "Page.loadEventFired":
            pass
        call("Runtime.evaluate", {"expression": "1"}, session)  # let what the load queued come through
        call("Browser.close")
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait(timeout=30)
        os.close(commands_w)
        os.close(events_r)
    return requests, messages


def _chromium(page: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A screenshot of ``page`` in headless Chromium with every host name unresolvable, and the
    console messages it logged (a page's own, and any load its Content-Security-Policy blocked)."""
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0", "--window-size=1200,2000",
         f"--screenshot={shot}", "--virtual-time-budget=5000", page.as_uri()],
        capture_output=True, text=True, timeout=180)
    return shot, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


@needs_chromium
@needs_dot
def test_html_page_requests_nothing_but_itself(tmp_path):
    page = tmp_path / "net.html"
    _invoke("draw", "-f", "-", "--depth", "1", "--device", "t4", "-o", str(page), stdin=_blocks_document())
    requests, messages = _devtools(page, tmp_path / "profile")
    assert requests == [page.as_uri()] and messages == []
    # the check sees what it looks for: a fetch (even one the policy blocks) and a console message
    bad = tmp_path / "bad.html"
    bad.write_text(page.read_text().replace("<h1>", '<img src="http://example.com/x.png"><h1>', 1)
                   .replace('<meta http-equiv="Content-Security-Policy"', "<meta", 1)
                   .replace("</body>", "<script>console.error('seen')</script></body>"))
    requests, messages = _devtools(bad, tmp_path / "profile")
    assert "http://example.com/x.png" in requests and "seen" in messages


@needs_chromium
@needs_dot
def test_html_page_in_headless_chromium(tmp_path):
    page = tmp_path / "net.html"
    _invoke("draw", "--preset", "resnet18", "--depth", "1", "--device", "a100-80gb", "-o", str(page))
    _assert_self_contained(page.read_text())
    shot, console = _chromium(page, tmp_path)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert console == []
    # the check sees what it looks for: a page that fetches and logs is caught
    bad = tmp_path / "bad.html"
    bad.write_text(page.read_text().replace("<h1>", '<img src="http://example.com/x.png"><h1>', 1))
    _, console = _chromium(bad, tmp_path)
    assert any("example.com" in line for line in console)


@needs_chromium
def test_html_page_without_graphviz_in_headless_chromium(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    page = tmp_path / "net.html"
    assert runner.invoke(app, ["draw", "-f", "-", "-o", str(page)], input=_hostile_document()).exit_code == 0
    monkeypatch.undo()
    _assert_self_contained(page.read_text())
    shot, console = _chromium(page, tmp_path)
    assert shot.stat().st_size > 5_000 and console == []


def test_the_residual_example_on_the_pictures_page_is_what_convcalc_prints():
    page = (Path(__file__).resolve().parent.parent / "docs" / "pictures.md").read_text()
    document = re.search(r"```yaml\n(.*?)```", page, re.S)[1]
    shown = re.search(r"```mermaid\n(.*?)```", page, re.S)[1]
    assert _invoke("shape", "-f", "-", "--format", "mermaid", stdin=document).stdout == shown


MODEL = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv2(self.relu(self.conv1(x))) + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Block(8)
        self.head = nn.Conv2d(8, 4, 1)
        self.aux = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        x = self.block(self.stem(x))
        return self.head(x), self.aux(x)
'''


@pytest.mark.needs_torch
def test_draw_a_pytorch_model_as_torch_fx_traces_it(tmp_path, monkeypatch):
    """A residual block and two heads: the edges between modules, the number of edges and outputs,
    and each module's parameters, as torch.fx and the module itself give them."""
    import importlib

    import torch.fx

    (tmp_path / "res_net.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    net = importlib.import_module("res_net").Net()
    graph = torch.fx.symbolic_trace(net).graph
    label = {n: ("input" if n.op == "placeholder" else n.target if n.op == "call_module" else None) for n in graph.nodes}
    inner = [n for n in graph.nodes if n.op not in ("placeholder", "output")]
    fx_edges = [(label[a], label[n]) for n in inner for a in n.all_input_nodes]
    returned = [label[a] for a in next(n for n in graph.nodes if n.op == "output").all_input_nodes]

    text = _invoke("draw", "--model", f"{tmp_path / 'res_net.py'}:Net", "3x16x16", "--as", "mermaid", "-o", "-").stdout
    nodes, edges, _ = _mermaid(text)
    drawn = _named_edges(nodes, edges)
    assert {(a, b) for a, b in fx_edges if a and b} <= drawn  # module to module, as traced
    assert len(drawn) == len(fx_edges) and _outputs(nodes, edges) == set(returned)
    for name, module in net.named_modules():
        if name and not list(module.children()):
            box = next(lines for lines in nodes.values() if lines[0] == name)
            assert f" · {sum(p.numel() for p in module.parameters())} params · " in box[2]


@pytest.mark.needs_onnx
def test_draw_an_onnx_file_as_its_graph_wires_it(tmp_path):
    """Each node's inputs and the graph's outputs, as the ONNX graph names them."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["c2"], name="proj", kernel_shape=[1, 1]),
             helper.make_node("Add", ["c2", "c"], ["s"], name="sum"),
             helper.make_node("Relu", ["s"], ["y"], name="out")]
    weights = [numpy_helper.from_array(np.full((8, 3, 3, 3), 0.1, np.float32), "w"),
               numpy_helper.from_array(np.full((8, 8, 1, 1), 0.1, np.float32), "w2")]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("y", "r")]
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              outputs, weights)
    path = tmp_path / "model.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    producer = {"x": "input", **{out: node.name for node in nodes for out in node.output}}
    expected = {(producer[i], node.name) for node in nodes for i in node.input if i in producer}

    for kind in ("mermaid", "dot") if shutil.which("dot") else ("mermaid",):
        text = _invoke("draw", "-f", str(path), "--as", kind, "-o", "-").stdout
        drawn, edges, _ = _mermaid(text) if kind == "mermaid" else _dot(text)
        assert _named_edges(drawn, edges) == expected
        assert _outputs(drawn, edges) == {producer["y"], producer["r"]}


def test_the_page_charts_memory_and_time_as_counted_by_hand(tmp_path):
    """A 3x3 convolution (3 -> 8 channels, 32x32, bias), a ReLU and a Flatten, in float32, on a device of
    1 TFLOP/s and 100 GB/s. Live memory: the input and the conv's output while it runs (12,288 +
    32,768 B), the conv's output and the ReLU's while the ReLU runs (65,536 B: the peak), the view
    adds nothing. Bounds: each layer's FLOPs (2 per MAC, one add per output for the bias; one per
    element for the ReLU) at the peak, or its bytes (inputs, parameters, output) at the bandwidth."""
    page = tmp_path / "net.html"
    _invoke("draw", "3x32x32", "conv:8,k=3,p=1", "relu", "flatten", "--peak", "1T", "--bandwidth", "100GB/s",
            "-o", str(page))
    titles = re.findall(r"<title>([^<]*)</title>", page.read_text())
    assert "peak 64.00 KiB while layer 2 (ReLU) runs" in titles  # 65,536 B
    outputs = 8 * 32 * 32
    conv_flops, conv_bytes = 2 * outputs * 3 * 9 + outputs, 4 * (3 * 32 * 32 + (8 * 3 * 9 + 8) + outputs)
    relu_flops, relu_bytes = outputs, 4 * (outputs + outputs)
    expected = {1: max(conv_flops / 1e12, conv_bytes / 1e11), 2: max(relu_flops / 1e12, relu_bytes / 1e11), 3: 0.0}
    units = {"s": 1, "ms": 1e-3, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9, "ps": 1e-12}
    for title in titles:
        if (match := re.fullmatch(r"layer (\d) \(\w+\): ([\d.]+) (\w+)(, (\w+)-bound)?", title)) is not None:
            seconds = float(match[2]) * units[match[3]]
            assert seconds == pytest.approx(expected[int(match[1])], rel=5e-3), title
            limits = {1: "memory", 2: "memory", 3: None}  # 450,560 FLOPs in 0.45 µs < 45,952 B in 0.46 µs
            assert match[5] == limits[int(match[1])], title
            expected.pop(int(match[1]))
    assert not expected  # a bar for every layer
