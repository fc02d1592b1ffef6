"""External data in ONNX files is untrusted: it is read only from regular files inside the model's own
directory, resolved against that directory, and never from anywhere else (the working directory, an
absolute path, ``..``, a symlink leading out, a device), and not at all for a model read from stdin.

The model here feeds an initializer to Resize's ``sizes``, so whatever bytes convcalc reads would
come back printed as the output's size: the tests check that no file's bytes ever do."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.readers.onnx import from_onnx

pytestmark = pytest.mark.needs_onnx  # every test here writes an ONNX model

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    pass

runner = CliRunner()

# Eight int64 sizes' worth of bytes: Resize would print them as the output's shape.
SECRET = b"TOPSECRETPASSWORDABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij"[:32]


def _model(location: str, offset: int | None = None, length: int | None = None) -> bytes:
    """x (1x3x8x8) resized to the four int64 sizes an external initializer holds."""
    sizes = numpy_helper.from_array(np.array([1, 3, 16, 16], dtype=np.int64), "sizes")
    sizes.ClearField("raw_data")
    sizes.ClearField("int64_data")
    sizes.data_location = TensorProto.EXTERNAL
    entries = {"location": location}
    if offset is not None:
        entries["offset"] = str(offset)
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        entry = sizes.external_data.add()
        entry.key, entry.value = key, value
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize", mode="nearest")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_empty_tensor_value_info("y")], [sizes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _good_sizes() -> bytes:
    return np.array([1, 3, 16, 16], dtype=np.int64).tobytes()


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """A working directory holding a secret, and a model directory inside it."""
    work = tmp_path / "work"
    model_dir = work / "models"
    model_dir.mkdir(parents=True)
    (work / "secret.txt").write_bytes(SECRET)
    (work / ".config").mkdir()
    (work / ".config" / "creds").write_bytes(SECRET)
    monkeypatch.chdir(work)
    return work, model_dir


def _shape(*args, stdin=None):
    return runner.invoke(app, ["shape", *args, "--json"], input=stdin)


def _assert_refused(result, *words):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output
    # none of the secret's bytes come back, as sizes or text
    secret_sizes = np.frombuffer(SECRET, dtype=np.int64).tolist()
    assert not any(str(n) in result.output for n in secret_sizes)
    assert "TOPSECRET" not in result.output


def test_data_beside_the_model_is_read(layout):
    work, model_dir = layout
    (model_dir / "sizes.bin").write_bytes(_good_sizes())
    (model_dir / "net.onnx").write_bytes(_model("sizes.bin"))
    result = _shape("-f", str(model_dir / "net.onnx"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["layers"][-1]["output_shape"] == [3, 16, 16]


def test_data_in_a_subdirectory_with_offset_and_length(layout):
    work, model_dir = layout
    (model_dir / "data").mkdir()
    (model_dir / "data" / "w.bin").write_bytes(b"\0" * 5 + _good_sizes())
    (model_dir / "net.onnx").write_bytes(_model("data/w.bin", offset=5, length=32))
    network = from_onnx(str(model_dir / "net.onnx"))
    assert network.layers[-1].name == "resize"
    result = _shape("-f", str(model_dir / "net.onnx"))
    assert json.loads(result.stdout)["layers"][-1]["output_shape"] == [3, 16, 16]


@pytest.mark.parametrize("location", ["secret.txt", ".config/creds"])
def test_a_name_relative_to_the_working_directory_is_not_read_from_it(layout, location):
    """The hole: the model's own directory has no such file, the working directory does."""
    work, model_dir = layout
    (model_dir / "net.onnx").write_bytes(_model(location))
    _assert_refused(_shape("-f", str(model_dir / "net.onnx")), "cannot read the external data file")


@pytest.mark.parametrize("location", ["../secret.txt", "data/../../secret.txt", "..", "/etc/passwd",
                                      "\\etc\\passwd", "C:/secret.txt", ""])
def test_locations_leaving_the_directory_are_refused(layout, location):
    work, model_dir = layout
    (model_dir / "net.onnx").write_bytes(_model(location))
    _assert_refused(_shape("-f", str(model_dir / "net.onnx")), "initializer 'sizes'")


def test_a_symlink_leading_out_is_refused(layout):
    work, model_dir = layout
    os.symlink(work / "secret.txt", model_dir / "sizes.bin")
    (model_dir / "net.onnx").write_bytes(_model("sizes.bin"))
    _assert_refused(_shape("-f", str(model_dir / "net.onnx")), "symbolic link")


def test_a_symlinked_directory_leading_out_is_refused(layout):
    work, model_dir = layout
    os.symlink(work / ".config", model_dir / "cfg")
    (model_dir / "net.onnx").write_bytes(_model("cfg/creds"))
    _assert_refused(_shape("-f", str(model_dir / "net.onnx")), "symbolic link")


def test_a_symlink_inside_the_directory_is_followed(layout):
    work, model_dir = layout
    (model_dir / "real.bin").write_bytes(_good_sizes())
    os.symlink("real.bin", model_dir / "sizes.bin")
    (model_dir / "net.onnx").write_bytes(_model("sizes.bin"))
    assert _shape("-f", str(model_dir / "net.onnx")).exit_code == 0


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_files_are_refused(layout):
    work, model_dir = layout
    os.symlink("/dev/zero", model_dir / "zero")  # the symlink leaves the directory: refused as such
    (model_dir / "net.onnx").write_bytes(_model("zero"))
    _assert_refused(_shape("-f", str(model_dir / "net.onnx")), "symbolic link")


def test_a_fifo_is_refused_without_blocking(layout):
    work, model_dir = layout
    os.mkfifo(model_dir / "sizes.bin")
    (model_dir / "net.onnx").write_bytes(_model("sizes.bin"))
    _assert_refused(_shape("-f", str(model_dir / "net.onnx")), "not a regular file")


def test_a_directory_is_refused(layout):
    work, model_dir = layout
    (model_dir / "sizes.bin").mkdir()
    (model_dir / "net.onnx").write_bytes(_model("sizes.bin"))
    _assert_refused(_shape("-f", str(model_dir / "net.onnx")))


def test_stdin_has_no_directory(layout):
    work, model_dir = layout
    (model_dir / "sizes.bin").write_bytes(_good_sizes())
    result = _shape("-f", "-", stdin=_model("secret.txt"))
    _assert_refused(result, "stdin")


def test_bytes_have_no_directory(layout):
    from convcalc.engine.errors import ConvcalcError

    with pytest.raises(ConvcalcError, match="no directory"):
        from_onnx(_model("secret.txt"))


@pytest.mark.parametrize("offset, length, words", [
    (None, 31, "disagrees"), (1, None, "fewer than"), (None, None, "fewer than"), ("x", None, "not a byte count")])
def test_lengths_and_offsets_are_checked(layout, offset, length, words):
    work, model_dir = layout
    (model_dir / "sizes.bin").write_bytes(_good_sizes()[:-1] if offset is None and length is None else _good_sizes())
    model = onnx.load_model_from_string(_model("sizes.bin", length=length))
    if offset is not None:
        entry = model.graph.initializer[0].external_data.add()
        entry.key, entry.value = "offset", str(offset)
    (model_dir / "net.onnx").write_bytes(model.SerializeToString())
    _assert_refused(_shape("-f", str(model_dir / "net.onnx")), words)


def test_a_constant_node_with_external_data_is_held_to_the_same_rule(layout):
    work, model_dir = layout
    tensor = numpy_helper.from_array(np.array([1, 3, 16, 16], dtype=np.int64), "c")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "secret.txt"
    nodes = [helper.make_node("Constant", [], ["sizes"], value=tensor),
             helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize", mode="nearest")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_empty_tensor_value_info("y")])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    (model_dir / "net.onnx").write_bytes(data)
    _assert_refused(_shape("-f", str(model_dir / "net.onnx")), "node 'Constant', attribute 'value'")


def test_convert_never_writes_a_files_bytes(layout):
    work, model_dir = layout
    (model_dir / "net.onnx").write_bytes(_model("secret.txt"))
    result = runner.invoke(app, ["convert", "-f", str(model_dir / "net.onnx")])
    _assert_refused(result)


def test_the_external_data_budget_is_a_limit_the_environment_sets(layout, monkeypatch):
    """All external data together may be at most CONVCALC_MAX_EXTERNAL_BYTES (2 GiB by default): 31 bytes
    refuse the model's 32, naming the tensor and the variable; 32 read it."""
    from convcalc.engine.limits import limit

    work, model_dir = layout
    (model_dir / "sizes.bin").write_bytes(_good_sizes())
    (model_dir / "net.onnx").write_bytes(_model("sizes.bin"))
    for allowed, read in ((31, False), (32, True)):
        monkeypatch.setenv("CONVCALC_MAX_EXTERNAL_BYTES", str(allowed))
        limit.cache_clear()
        result = _shape("-f", str(model_dir / "net.onnx"))
        if read:
            assert result.exit_code == 0, result.output
        else:
            _assert_refused(result, "initializer 'sizes'", "more than 31 bytes", "CONVCALC_MAX_EXTERNAL_BYTES")
    limit.cache_clear()
