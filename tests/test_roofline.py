"""The roofline bound: worked by hand, the device table and its citations, the peak each kind gets
(TF32 as PyTorch uses it by default), attention's bytes and FLOPs from first principles, and the
command line."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from convcalc import analyse, analyse_tokens, load_document
from convcalc.cli import app
from convcalc.engine.devices import DEVICES, Device
from convcalc.engine.roofline import roofline

from .terminal import run_in_pty


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_a_layer_bound_worked_by_hand():
    # conv 64->64, 3x3, padding 1, on 64x56x56, float32: it reads 64x56x56 x 4 = 802,816 B and its
    # (64*64*9 + 64) x 4 = 147,712 B of weights, writes 802,816 B: 1,753,344 B; FLOPs 2 x 64*64*9*3136
    # + 64*3136 bias adds = 231,411,712. On 1 TFLOP/s and 100 GB/s: 231.4 us of arithmetic, 17.5 us of
    # memory: compute-bound. The ReLU after it moves 1,605,632 B for 200,704 FLOPs: memory-bound.
    device = Device("example", {"float32": 10**12}, 10**11)
    conv, relu, flatten = roofline(analyse_tokens("64x56x56", "conv:64,k=3,p=1", "relu", "flatten"), device).layers
    assert (conv.bytes, conv.intensity, conv.limit) == (1_753_344, Fraction(231_411_712, 1_753_344), "compute")
    assert conv.seconds == 231_411_712 / 10**12
    assert (relu.bytes, relu.limit, relu.seconds) == (1_605_632, "memory", 1_605_632 / 10**11)
    assert (flatten.bytes, flatten.intensity, flatten.seconds) == (0, None, 0.0)  # a view moves nothing


def test_each_device_gets_its_own_bounds_from_one_analysis():
    analysis = analyse_tokens("64x56x56", "conv:64,k=3,p=1")
    slow = roofline(analysis, Device("slow", {"float32": 10**12}, 10**11)).layers[0].seconds
    fast = roofline(analysis, Device("fast", {"float32": 10**13}, 10**12)).layers[0].seconds
    assert (slow, fast) == (231_411_712 / 10**12, 231_411_712 / 10**13)


def test_the_totals_sum_the_bounds_and_split_them():
    device = Device("example", {"float32": 10**12}, 10**11)
    result = roofline(analyse_tokens("64x56x56", "conv:64,k=3,p=1", "relu"), device)
    assert result.seconds == pytest.approx(231_411_712 / 10**12 + 1_605_632 / 10**11)
    assert result.memory_share == pytest.approx((1_605_632 / 10**11) / result.seconds)


def test_the_json_bound_uses_the_devices_published_figures():
    result = invoke("shape", "3x224x224", "conv:64,k=7,s=2,p=3", "bn", "relu", "--device", "t4", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["totals"]["roofline"]["peak_flops"] == 8_100 * 10**9  # T4 single precision: 8.1 TFLOPS
    assert data["totals"]["roofline"]["bandwidth"] == 320 * 10**9
    for layer in data["layers"]:
        bound = layer["roofline"]
        expected = max(layer["flops"] / 8.1e12, bound["bytes"] / 320e9)
        assert bound["seconds"] == pytest.approx(expected)
        assert bound["bound"] == ("compute" if layer["flops"] / 8.1e12 >= bound["bytes"] / 320e9 else "memory")
    assert data["totals"]["roofline"]["seconds"] == pytest.approx(sum(l["roofline"]["seconds"] for l in data["layers"]))


def test_peak_and_bandwidth_describe_a_device_of_ones_own():
    result = invoke("shape", "64x56x56", "conv:64,k=3,p=1", "--peak", "1T", "--bandwidth", "100GB/s", "--json")
    assert result.exit_code == 0, result.stderr
    layer = json.loads(result.stdout)["layers"][0]["roofline"]
    assert layer["seconds"] == pytest.approx(231_411_712 / 10**12) and layer["bound"] == "compute"


@pytest.mark.parametrize("arguments, message", [
    (["--device", "a200"], "unknown device 'a200'"),
    (["--peak", "1T"], "give both --peak and --bandwidth"),
    (["--peak", "fast", "--bandwidth", "1G"], "--peak 'fast' is not a throughput"),
    (["--device", "tpu-v4"], "tpu-v4 has no published peak for float32"),
])
def test_bad_device_options_are_one_line_usage_errors(arguments, message):
    result = invoke("shape", "3x8x8", "relu", *arguments)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_compare_predicts_less_speed_up_than_the_macs_ratio_for_a_memory_bound_variant():
    result = invoke("compare", "144x56x56", "conv:144,k=3,p=1", "--device", "t4", "--json")
    assert result.exit_code == 0, result.stderr
    variants = {v["name"]: v for v in json.loads(result.stdout)["variants"]}
    separable = variants["depthwise_separable"]
    assert separable["roofline"]["ratio"] > separable["ratio_macs"]
    assert separable["roofline"]["memory_bound_share"] > variants["standard"]["roofline"]["memory_bound_share"]
    table = invoke("compare", "144x56x56", "conv:144,k=3,p=1", "--device", "t4")
    assert "bound ratio" in table.stdout


def test_measure_gives_this_machines_figures():
    result = invoke("shape", "3x32x32", "conv:8,k=3", "--device", "measure", "--json")
    assert result.exit_code == 0, result.stderr
    totals = json.loads(result.stdout)["totals"]["roofline"]
    assert totals["device"] == "this machine (measured)"
    assert totals["peak_flops"] > 10**8 and totals["bandwidth"] > 10**8


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_charts_show_on_a_terminal_and_nowhere_else():
    command = ["shape", "3x224x224", "conv:64,k=7,s=2,p=3", "bn", "relu", "maxpool:k=3,s=2,p=1", "--chart"]
    screen = run_in_pty(command, 80)
    assert "share" in screen and "live" in screen and "█" in screen
    assert "memory over the run: " in screen
    assert all(len(line) <= 80 for line in screen.splitlines())
    piped = invoke(*command)
    assert "█" not in piped.stdout and "share" not in piped.stdout
    assert "█" not in invoke(*command, "--json").stdout


# --- the peak each layer gets, and the devices' figures -----------------------------------------------

# The devices with TensorFloat-32 tensor cores (Ampere, Ada, Hopper), with the dense TF32 rate their
# documents print (FLOP/s); Volta, Turing, the TPU and the CPUs have none.
TF32 = {"a100-80gb": 156e12, "a100-40gb": 156e12, "h100-sxm": 494.7e12, "l4": 60e12, "rtx-3090": 35.6e12,
        "rtx-4090": 82.6e12}
A100_FP32, A100_TF32, A100_FP16 = 19.5e12, 156e12, 312e12  # the A100 datasheet's FP32, TF32, FP16 Tensor Core

# one layer of every family, over tokens: an LSTM, norms, softmax, roll, linear, a weight product,
# attention and a product of two activations
TOKENS = {"input": [6, 8], "layers": [
    {"type": "lstm", "input_size": 8, "hidden_size": 8, "batch_first": True},
    {"type": "layernorm", "normalized_shape": [8]},
    {"type": "rmsnorm", "normalized_shape": [8]},
    {"type": "softmax", "dim": -1},
    {"type": "roll", "shifts": 1, "dims": 1},
    {"type": "linear", "out_features": 8, "name": "q"},
    {"type": "matmul", "weight_shape": [8, 8], "name": "k"},
    {"type": "attention", "from": ["q", "k", "k"], "name": "att"},
    {"type": "transpose", "dim0": 1, "dim1": 2, "from": "k", "name": "kt"},
    {"type": "matmul", "from": ["att", "kt"]},
]}
IMAGE = ("3x16x16", "conv:8,k=3,p=1", "convt:4,k=2,s=2", "bn", "relu", "maxpool:k=2", "flatten", "linear:10")


def network(document: dict, dtype: str = "float32"):
    return analyse(replace(load_document(json.dumps(document)), dtype=dtype))


def peaks(analysis, device: str, **options) -> dict:
    """Each costed layer's type -> (the peak its bound used, which rate)."""
    result = roofline(analysis, DEVICES[device], **options)
    return {r.type: (float(b.peak), b.precision) for r, b in zip(analysis.layers, result.layers) if b.peak}


@pytest.mark.parametrize("tf32_matmul", [False, True])
def test_on_an_a100_float32_convolutions_get_tf32_and_matmuls_only_when_asked(tf32_matmul):
    products = (A100_TF32, "tf32") if tf32_matmul else (A100_FP32, "float32")
    # attention: without the switch, the memory-efficient kernel's three TF32 products per product
    attention = (A100_TF32, "tf32") if tf32_matmul else (A100_TF32 / 3, "3xtf32")
    image = peaks(analyse_tokens(*IMAGE), "a100-80gb", tf32_matmul=tf32_matmul)
    assert image == {"Conv2d": (A100_TF32, "tf32"), "ConvTranspose2d": (A100_TF32, "tf32"),
                     "BatchNorm2d": (A100_FP32, "float32"), "ReLU": (A100_FP32, "float32"),
                     "MaxPool2d": (A100_FP32, "float32"), "Linear": products}
    tokens = peaks(network(TOKENS), "a100-80gb", tf32_matmul=tf32_matmul)
    assert tokens == {"LSTM": (A100_TF32, "tf32"), "LayerNorm": (A100_FP32, "float32"),
                      "RMSNorm": (A100_FP32, "float32"), "Softmax": (A100_FP32, "float32"),
                      "Roll": (A100_FP32, "float32"), "Linear": products, "MatMul": products,
                      "ScaledDotProductAttention": attention}


def test_a_device_can_carry_the_switch_for_every_bound_on_it():
    switched = replace(DEVICES["a100-80gb"], tf32_matmul=True)
    for analysis in (analyse_tokens(*IMAGE), network(TOKENS)):
        with_device = [(b.peak, b.precision) for b in roofline(analysis, switched).layers]
        with_call = [(b.peak, b.precision) for b in roofline(analysis, DEVICES["a100-80gb"], tf32_matmul=True).layers]
        assert with_device == with_call


@pytest.mark.parametrize("tf32_matmul", [False, True])
def test_float16_gets_its_own_peak_whatever_the_switch(tf32_matmul):
    for analysis in (analyse_tokens(*IMAGE, dtype="float16"), network(TOKENS, "float16")):
        got = peaks(analysis, "a100-80gb", tf32_matmul=tf32_matmul)
        assert set(got.values()) == {(A100_FP16, "float16")}


@pytest.mark.parametrize("device", ["v100-sxm2", "t4", "xeon-8380", "epyc-7763"])
def test_devices_without_tf32_give_every_float32_layer_the_fp32_peak(device):
    fp32 = DEVICES[device].peak["float32"]
    for analysis in (analyse_tokens(*IMAGE), network(TOKENS)):
        for tf32_matmul in (False, True):
            assert set(peaks(analysis, device, tf32_matmul=tf32_matmul).values()) == {(fp32, "float32")}
    notes = roofline(network(TOKENS), DEVICES[device], tf32_matmul=True).notes
    assert any("no TF32" in note for note in notes)


def test_the_notes_say_which_peak_each_family_used_and_why():
    notes = "\n".join(roofline(network(TOKENS), DEVICES["a100-80gb"]).notes)
    assert "recurrent layers (layer 1): 156 TFLOP/s" in notes and "cudnn.allow_tf32 = True" in notes
    assert "matrix products (3 layers): 19.5 TFLOP/s" in notes and "matmul.allow_tf32 = False" in notes
    assert "attention (layer 8): 52 TFLOP/s" in notes and "L x S scores" in notes
    switched = "\n".join(roofline(network(TOKENS), DEVICES["a100-80gb"], tf32_matmul=True).notes)
    assert "matrix products (3 layers): 156 TFLOP/s" in switched


@pytest.mark.needs_torch
def test_pytorchs_defaults_are_the_ones_the_bound_assumes():
    import torch

    assert torch.backends.cudnn.allow_tf32 is True  # convolutions (and cuDNN's RNNs) may use TF32
    assert torch.backends.cuda.matmul.allow_tf32 is False  # matrix products do not
    assert torch.get_float32_matmul_precision() == "highest"  # "high" would turn TF32 on for them
    if hasattr(torch.backends.cudnn, "rnn"):  # the per-operation switches of newer releases agree
        assert torch.backends.cudnn.rnn.fp32_precision == torch.backends.cudnn.conv.fp32_precision == "tf32"


def test_tf32_is_published_for_ampere_and_later_only():
    assert {name: device.tf32 for name, device in DEVICES.items() if device.tf32} == TF32
    for name, rate in TF32.items():
        assert rate >= DEVICES[name].peak["float32"]  # the tensor cores are never slower than the CUDA cores


def _printed(value: float) -> list[str]:
    """How a document may print ``value`` FLOP/s (or bytes/s): in tera or giga units, with or without
    thousands separators, dense or as the sparse figure (twice the dense one)."""
    forms = []
    for number in (value / 1e12, 2 * value / 1e12, value / 1e9):
        number = round(number, 6)
        forms += [f"{number:g}", f"{number:,g}"]
    return forms


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_every_figure_of_every_device_cites_its_document(name):
    device = DEVICES[name]
    assert device.bandwidth > 10**10 and all(rate > 10**12 for rate in device.peak.values())
    assert any(word in device.source for word in ("datasheet", "whitepaper", "product page", "documentation"))
    assert set(device.cites) == {*device.peak, "bandwidth"}
    for key, value in (*device.peak.items(), ("bandwidth", device.bandwidth)):
        text = device.cites[key]
        assert any(re.search(rf"(?<![\d.,]){re.escape(form)}(?![\d])", text) for form in _printed(value)), \
            f"{name} {key}: {value:,} is not what {text!r} prints"


# --- attention, from first principles ------------------------------------------------------------------

BATCH, L, S, E, EV = 2, 6, 4, 8, 12
# query: a linear layer's 6 x 8; key: the first 4 tokens of the input (a view of it); value: a linear
# layer's 4 x 12 from the key
ATTENTION = {"input": [L, E], "batch": BATCH, "layers": [
    {"type": "linear", "out_features": E, "name": "q", "from": "input"},
    {"type": "narrow", "dim": 1, "start": 0, "length": S, "name": "k", "from": "input"},
    {"type": "linear", "out_features": EV, "name": "v", "from": "k"},
    {"type": "attention", "from": ["q", "k", "v"]},
]}


def _causal_pairs(length: int, source: int) -> int:
    """The (query, key) pairs a causal mask keeps, as PyTorch builds it: key s for query l where s <= l."""
    return sum(1 for l in range(length) for s in range(source) if s <= l)


@pytest.mark.parametrize("causal", [False, True])
def test_a_small_attention_layer_worked_by_hand(causal):
    document = json.loads(json.dumps(ATTENTION))
    document["layers"][-1]["is_causal"] = causal
    analysis = network(document)
    bound = roofline(analysis, DEVICES["a100-80gb"]).layers[-1]
    # bytes: the query 6x8, the key's 4x8 (read from the input, where it is a view), the value 4x12 and
    # the output 6x12, float32, for 2 samples; a causal query l reaches keys 0..l, and all 4 are reached
    assert bound.bytes == BATCH * 4 * (L * E + S * E + S * EV + L * EV) == 1600
    # FLOPs: the scores' product (E MACs a score) and the values' (EV), over every score or the unmasked ones
    pairs = _causal_pairs(L, S) if causal else L * S
    assert (pairs, bound.flops) == ((18, 720 * BATCH) if causal else (24, 960 * BATCH))
    assert bound.flops == BATCH * pairs * 2 * (E + EV)
    assert bound.flops <= analysis.layers[-1].flops  # the math backend's count, with the softmax's work
    # on an A100 in float32: a third of the TF32 rate, 52 TFLOP/s, against 2,039 GB/s: memory-bound
    assert (float(bound.peak), bound.precision, bound.limit) == (52e12, "3xtf32", "memory")
    assert bound.exact == Fraction(1600, 2_039 * 10**9)


def test_a_causal_layer_reads_only_the_keys_its_queries_reach():
    # 3 queries over 8 keys: query l reaches keys 0..l, so keys 3..7 (and their values) are never read
    document = {"input": [8, 4], "layers": [
        {"type": "narrow", "dim": 1, "start": 0, "length": 3, "name": "q", "from": "input"},
        {"type": "linear", "out_features": 4, "name": "k", "from": "input"},
        {"type": "linear", "out_features": 4, "name": "v", "from": "input"},
        {"type": "attention", "from": ["q", "k", "v"], "is_causal": True}]}
    bound = roofline(network(document)).layers[-1]
    assert bound.bytes == 4 * (3 * 4 + 3 * 4 + 3 * 4 + 3 * 4)  # query, reached keys and values, output
    assert bound.flops == _causal_pairs(3, 8) * 2 * (4 + 4) == 96


@pytest.mark.needs_torch
def test_the_attention_figures_agree_with_pytorch():
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    q, k, v = torch.randn(BATCH, L, E), torch.randn(BATCH, S, E), torch.randn(BATCH, S, EV)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert roofline(network(ATTENTION)).layers[-1].flops == counter.get_total_flops()  # the two products
    # the causal mask is the one counted by hand: the same output as an explicit mask of s <= l
    mask = torch.tensor([[s <= l for s in range(S)] for l in range(L)])
    causal = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(causal, torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert int(mask.sum()) == _causal_pairs(L, S)


def test_a_fixed_mask_is_read_once_at_a_byte_an_element():
    # a 6x6 mask that is no branch, shared by the 2 heads: at least a boolean's byte per element
    document = {"input": [2, 6, 8], "layers": [
        {"type": "attention", "from": ["input", "input", "input"], "mask_shape": [6, 6]}]}
    assert roofline(network(document)).layers[0].bytes == 2 * (2 * 6 * 8 * 4) + 6 * 6


def test_einsum_is_a_matrix_product():
    document = {"input": [6, 8], "layers": [{"type": "einsum", "equation": "nd,md->nm", "from": ["input", "input"]}]}
    analysis = network(document)
    assert peaks(analysis, "a100-80gb") == {"Einsum": (A100_FP32, "float32")}
    assert peaks(analysis, "a100-80gb", tf32_matmul=True) == {"Einsum": (A100_TF32, "tf32")}
    assert roofline(analysis).layers[0].bytes == 6 * 8 * 4 + 6 * 6 * 4  # its one input once, its output


def test_self_attention_reads_its_one_input_once():
    # query, key and value are one tensor of 4 heads x 16 tokens x 8 features: read once, 2,048 bytes
    document = {"input": [4, 16, 8], "layers": [{"type": "attention", "from": ["input", "input", "input"]}]}
    bound = roofline(network(document)).layers[0]
    assert bound.bytes == 2 * 4 * 16 * 8 * 4
    assert bound.flops == 4 * 16 * 16 * 2 * (8 + 8)


# --- what other kinds move ------------------------------------------------------------------------------

def _read_positions(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Input positions of one axis a sliding window reads, one output at a time (PyTorch's output size)."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
    return len({o * stride - pad + t * dilation for o in range(out) for t in range(kernel)} & set(range(size)))


@pytest.mark.parametrize("token, kernel, stride, pad, dilation", [
    ("conv:16,k=1,s=2", 1, 2, 0, 1),  # a ResNet shortcut: a quarter of the input
    ("conv:16,k=3,s=2", 3, 2, 0, 1),  # the last row and column are never read
    ("conv:16,k=3,s=4,p=1", 3, 4, 1, 1),
    ("conv:16,k=3,d=3", 3, 1, 0, 3),
    ("maxpool:k=2,s=3", 2, 3, 0, 1),
    ("avgpool:k=3,s=2,p=1", 3, 2, 1, 1),
    ("conv:16,k=3,p=1", 3, 1, 1, 1),  # every position
])
def test_a_strided_window_reads_only_the_positions_it_uses(token, kernel, stride, pad, dilation):
    analysis = analyse_tokens("8x13x13", token)
    report, bound = analysis.layers[0], roofline(analysis).layers[0]
    read = 8 * _read_positions(13, kernel, stride, pad, dilation) ** 2 * 4
    assert bound.bytes == read + report.param_bytes + report.activation_bytes


@pytest.mark.parametrize("stride, pad", [(2, 0), (2, 3), (3, 5), (1, 2)])
def test_a_transposed_convolution_reads_only_the_inputs_whose_taps_land_in_its_output(stride, pad):
    analysis = analyse_tokens("8x7", f"convt:4,k=3,s={stride},p={pad}")
    report, bound = analysis.layers[0], roofline(analysis).layers[0]
    out = report.output_shape[1]  # PyTorch's (7 - 1) * s - 2p + 3: input i's taps i*s - p + t, t < 3
    read = sum(1 for i in range(7) if any(0 <= i * stride - pad + t < out for t in range(3)))
    assert bound.bytes == 8 * read * 4 + report.param_bytes + report.activation_bytes


def test_a_tensor_read_twice_is_read_once():
    document = {"input": [8, 4, 4], "layers": [{"type": "add", "from": ["input", "input"]}]}
    assert roofline(network(document)).layers[0].bytes == 2 * 8 * 4 * 4 * 4  # read once, written once


def test_an_operation_convcalc_cannot_cost_is_marked_not_guessed():
    document = {"input": [8, 4], "layers": [{"type": "opaque", "op": "aten.custom", "output": [8, 4]},
                                            {"type": "relu"}]}
    analysis = network(document)
    result = roofline(analysis, DEVICES["a100-80gb"])
    opaque, relu = result.layers
    assert (opaque.known, opaque.flops, opaque.seconds, opaque.intensity) == (False, None, None, None)
    assert relu.known and relu.seconds is not None
    assert any("layer 1: what it moves or computes is not known" in note for note in result.notes)


def test_the_command_line_switch_takes_float32_products_to_tf32():
    import json

    from typer.testing import CliRunner

    from convcalc.cli import app

    def seconds(*extra):
        result = CliRunner().invoke(app, ["shape", "197x768", "mha:768,12", "--device", "a100-80gb", "--json", *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["layers"][0]["roofline"]["seconds"]

    # MultiheadAttention's FLOPs at 52 TFLOP/s (a third of TF32, attention's kernels) or at 156 (TF32)
    assert seconds() == pytest.approx(3 * seconds("--tf32-matmul"))
    refused = CliRunner().invoke(app, ["shape", "197x768", "mha:768,12", "--tf32-matmul"])
    assert refused.exit_code == 2 and "no device is given" in refused.output
