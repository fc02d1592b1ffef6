"""The program's real JSON output against the JSON Schema files it ships (convcalc/schemas/), and
the schemas strict enough to catch a renamed key or a changed type."""

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.engine.schema import SCHEMA_FILES, json_schema

DATA = Path(__file__).parent / "data"
runner = CliRunner()

try:
    import jsonschema
    import referencing  # (jsonschema's own dependency)
except ImportError:  # the tests that validate say so (needs_jsonschema)
    pass
else:
    REGISTRY = referencing.Registry().with_resources(
        (json_schema(name)["$id"], referencing.Resource.from_contents(json_schema(name))) for name in SCHEMA_FILES)


def validator(name: str, definition: str | None = None):
    """A validator for the object ``name`` ("run", "error" or a schema name), or one of its $defs."""
    schema = json_schema(name)
    if definition is not None:
        schema = {"$ref": f"{schema['$id']}#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema, registry=REGISTRY)


def output(*args, code=0, input=None):
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == code, result.stderr
    return result.stdout


@pytest.mark.needs_jsonschema
def test_the_schemas_are_valid_json_schemas():
    for name in SCHEMA_FILES:
        jsonschema.Draft202012Validator.check_schema(json_schema(name))
    from convcalc.verbs.compare import COMPARE_SCHEMA
    from convcalc.verbs.solve import SOLVE_SCHEMA

    assert {COMPARE_SCHEMA, SOLVE_SCHEMA} <= set(SCHEMA_FILES)  # the names the verbs print are the names shipped


def test_the_schemas_are_package_data():
    shipped = {p.name for p in (Path(__file__).parent.parent / "convcalc" / "schemas").glob("*.json")}
    assert shipped == set(SCHEMA_FILES.values())
    assert '"schemas/*.json"' in (Path(__file__).parent.parent / "pyproject.toml").read_text()


SHAPE_COMMANDS = [
    ["shape", "1x5x5", "conv:1,k=3,s=2,p=1", "convT:1,k=3,s=2,p=1", "up:2"],
    ["shape", "3x8x8", "gap", "flatten", "linear:4", "--device", "t4", "--optimizer", "sgd"],
    ["shape", "3x8x8"],
    ["shape", "--preset", "resnet18"],
    ["shape", "--preset", "unet", "--dtype", "float16", "--batch", "4"],
    ["shape", "-f", str(DATA / "stem.json")],
    ["shape", "3x224x224", "Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)", "--peak", "10T",
     "--bandwidth", "1TB/s"],
]


@pytest.mark.needs_jsonschema
@pytest.mark.parametrize("args", SHAPE_COMMANDS, ids=lambda a: " ".join(a[1:3]))
def test_shape_output_matches_its_schema(args):
    data = json.loads(output(*args, "--json"))
    validator("convcalc.shape/1").validate(data)
    for line in output(*args, "--format", "ndjson").splitlines():
        validator("convcalc.shape/1", "layer").validate(json.loads(line))


@pytest.mark.needs_jsonschema
def test_every_preset_matches_the_schema():
    for preset in json.loads(output("presets", "--json"))["presets"]:
        validator("convcalc.shape/1").validate(json.loads(output("shape", "--preset", preset["name"], "--json")))


@pytest.mark.needs_jsonschema
def test_run_output_matches_its_schema():
    args = ["run", "3x8x8", "conv:4,k=3", "relu", "maxpool:2", "--repeat", "1"]
    data = json.loads(output(*args, "--json"))
    validator("run").validate(data)
    for line in output(*args, "--format", "ndjson").splitlines():
        validator("run", "layer").validate(json.loads(line))
    with pytest.raises(jsonschema.ValidationError):  # a run object is not a bare analysis, nor the reverse
        validator("convcalc.shape/1").validate(data)
    with pytest.raises(jsonschema.ValidationError):
        validator("run").validate(json.loads(output("shape", "3x8x8", "relu", "--json")))


@pytest.mark.needs_jsonschema
@pytest.mark.parametrize("args", [
    ["compare", "32x16x16", "conv:64,k=3,p=1"],
    ["compare", "3x16x16", "conv:2,k=1", "--device", "t4"],  # variants that do not apply
    ["compare", "8x8x8", "conv:8,k=3,bias=false", "--run", "--repeat", "1"],
], ids=["plain", "not-applicable", "run"])
def test_compare_output_matches_its_schema(args):
    data = json.loads(output(*args, "--json"))
    validator("convcalc.compare/1").validate(data)
    for line in output(*args, "--format", "ndjson").splitlines():
        validator("convcalc.compare/1", "variant").validate(json.loads(line))


@pytest.mark.needs_jsonschema
@pytest.mark.parametrize("args, code", [
    (["solve", "3x224x224", "conv:64,k=7,s=2,p=?", "--target", "64x112x112"], 0),
    (["solve", "3x64x64", "conv:16,k=?,s=2,p=?", "-t", "16x?x32", "--range", "k=1..3"], 0),
    (["solve", "3x8x8", "conv:4,k=3,p=?", "--target", "4x100x100", "--range", "p=0..2"], 1),
    (["solve", "3x225x225", "conv:64,k=3,s=2,p=same_upper"], 0),
    (["solve", "3x?x?", "--preset", "unet", "--range", "input=1..64"], 0),
    (["solve", "64x64x64", "conv:64,k=3,p=same,d=?", "--receptive-field", "61"], 0),
], ids=["padding", "two-unknowns", "none", "same", "input", "receptive-field"])
def test_solve_output_matches_its_schema(args, code):
    data = json.loads(output(*args, "--json", code=code))
    validator("convcalc.solve/1").validate(data)
    # one record per solution (the receptive-field plan has none: ndjson prints the object)
    record = "input_solution" if "input" in data else None if "receptive_field" in data else "solution"
    for line in output(*args, "--format", "ndjson", code=code).splitlines():
        validator("convcalc.solve/1", record).validate(json.loads(line))


@pytest.mark.needs_jsonschema
def test_presets_and_explain_match_their_schemas():
    validator("convcalc.presets/1").validate(json.loads(output("presets", "--json")))
    validator("convcalc.explain/1").validate(json.loads(output("explain", "1x5x5", "conv:1,k=3,s=2", "--json")))
    for line in output("presets", "--format", "ndjson").splitlines():
        validator("convcalc.presets/1", "preset").validate(json.loads(line))


@pytest.mark.needs_jsonschema
@pytest.mark.parametrize("args", [
    ["shape", "3x224x224", "conv:64,k=3,g=5"],  # a token's error: token and span
    ["shape", "3x8x8", "relu", "--batch", "0"],  # an option's
    ["shape", "-f", "/nonexistent.json"],
    ["run", "3x8x8", "conv:4,k=3", "--memory-limit", "."],
    ["compare", "8x8x8", "conv:8,k=3", "--groups", "0"],
    ["solve", "3x8x8", "conv:4,k=?", "--range", "k=."],
    ["explain", "1x5", "conv:1,k=3", "--at", "x"],
], ids=lambda a: " ".join(a[:2]))
def test_errors_match_the_error_schema(args):
    for fmt in (["--json"], ["--format", "ndjson"]):
        validator("error").validate(json.loads(output(*args, *fmt, code=2)))


@pytest.mark.needs_jsonschema
def test_stream_lines_match_the_shape_or_error_schema():
    good = json.dumps({"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 3}]})
    bad = json.dumps({"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 9}]})
    lines = output("shape", "--stream", "-", code=1, input="\n".join([good, "{not json", bad, good]) + "\n")
    records = [json.loads(line) for line in lines.splitlines()]
    assert [("error" in r) for r in records] == [False, True, True, False]
    for record in records:
        validator("error" if "error" in record else "convcalc.shape/1").validate(record)
    assert [r["error"]["line"] for r in records if "error" in r] == [2, 3]


def _mutations(data: dict):
    """(what changed, the changed copy): a key renamed and a value's type changed, at the top,
    inside the first item of the first list of objects, and inside a nested object."""
    def renamed(obj, key):
        obj[key + "_renamed"] = obj.pop(key)

    def retyped(obj, key):
        value = obj[key]
        obj[key] = {"unexpected": True} if not isinstance(value, dict) else "text"

    places = [("top", lambda d: d)]
    lists = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
    if lists:
        places.append((f"{lists[0]}[0]", lambda d: d[lists[0]][0]))
    nested = [k for k, v in data.items() if isinstance(v, dict)]
    if nested:
        places.append((nested[0], lambda d: d[nested[0]]))
    for where, find in places:
        for key in list(find(data)):
            for change in (renamed, retyped):
                changed = copy.deepcopy(data)
                change(find(changed), key)
                yield f"{change.__name__} {where}.{key}", changed


@pytest.mark.needs_jsonschema
@pytest.mark.parametrize("name, args", [
    ("convcalc.shape/1", ["shape", "3x8x8", "conv:4,k=3", "--device", "t4"]),
    ("run", ["run", "3x8x8", "conv:4,k=3", "--repeat", "1"]),
    ("convcalc.compare/1", ["compare", "8x8x8", "conv:8,k=3", "--run", "--repeat", "1", "--device", "t4"]),
    ("convcalc.solve/1", ["solve", "3x64x64", "conv:16,k=?,s=2,p=?", "-t", "16x32x32", "--range", "k=1..3"]),
    ("convcalc.solve/1", ["solve", "3x?x?", "--preset", "unet", "--range", "input=1..64"]),
    ("convcalc.solve/1", ["solve", "64x64x64", "conv:64,k=3,p=same,d=?", "--receptive-field", "61"]),
    ("convcalc.presets/1", ["presets"]),
    ("convcalc.explain/1", ["explain", "1x5", "conv:1,k=3"]),
    ("error", ["shape", "3x224x224", "conv:64,k=3,g=5"]),
], ids=lambda v: v if isinstance(v, str) else v[0])
def test_a_renamed_key_or_a_changed_type_fails_validation(name, args):
    error = name == "error"
    data = json.loads(output(*args, "--json", code=2 if error else 0))
    check = validator(name)
    check.validate(data)
    if error:
        data = data["error"]
        check = jsonschema.Draft202012Validator({"$ref": "urn:convcalc:error-1#/properties/error"}, registry=REGISTRY)
    tried = 0
    for what, changed in _mutations(data):
        tried += 1
        assert not check.is_valid(changed), f"{name}: the schema accepts the output with {what}"
    assert tried >= 4
