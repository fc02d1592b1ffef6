"""The roofline bound: worked by hand, the device table, and the command line."""

from __future__ import annotations

import json
import sys
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from convcalc import analyse_tokens
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


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_every_shipped_device_cites_its_figures(name):
    device = DEVICES[name]
    assert device.bandwidth > 10**10 and all(rate > 10**12 for rate in device.peak.values())
    assert len(device.source) > 40 and any(word in device.source for word in ("datasheet", "whitepaper", "page",
                                                                                "documentation"))


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
