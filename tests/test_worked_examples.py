"""Worked examples from the seeds (../shared/seeds), the convolution-arithmetic
guide's figure captions (Dumoulin & Visin) and figures other tools publish.
Every expected number here was written down by a person, not produced by convcalc."""

from fractions import Fraction

import pytest

from convcalc import ConvcalcError, analyse_tokens, parse_layer


def out(input_shape, *tokens):
    return analyse_tokens(input_shape, *tokens).output_shape


# Dumoulin & Visin, "A guide to convolution arithmetic", figure captions
def test_guide_strided_padded():
    assert out("1x5x5", "conv:1,k=3,s=2,p=1") == (1, 3, 3)


def test_guide_dilated():
    assert out("1x7x7", "conv:1,k=3,d=2") == (1, 3, 3)


def test_guide_transposed_with_output_padding():
    assert out("1x3x3", "convT:1,k=3,s=2,p=1,op=1") == (1, 6, 6)


# ATen's ceil-mode rule: the last window may not start inside the right padding
def test_ceil_mode_drops_window_starting_in_padding():
    assert out("1x5x5", "maxpool:k=2,s=2,p=1,ceil_mode=true") == (1, 3, 3)
    # without the rule the docs' formula would give ceil((5+2-2)/2)+1 = 4
    assert out("1x6x6", "maxpool:k=3,s=2,p=1,ceil_mode=true") == (1, 4, 4)


# Seed 003 (transposed convolution): the shapes of its PyTorch outputs
@pytest.mark.parametrize(
    "input_shape, token, expected",
    [
        ("1x2x2", "convT:1,k=2,bias=false", (1, 3, 3)),
        ("1x3x3", "convT:1,k=2,s=2,bias=false", (1, 6, 6)),
        ("1x3x3", "convT:1,k=2,s=2,p=1,bias=false", (1, 4, 4)),
        ("1x3x3", "convT:1,k=2,s=2,d=2,bias=false", (1, 7, 7)),
        ("2x2x2", "convT:1,k=2,bias=false", (1, 3, 3)),
    ],
)
def test_seed_003_transposed_shapes(input_shape, token, expected):
    assert out(input_shape, token) == expected


# Seed 001: transposed padding 2 on a 3x3 output "reports an error"
def test_seed_001_transposed_padding_too_large():
    assert out("1x2x2", "convT:1,k=2,p=1") == (1, 1, 1)
    with pytest.raises(ConvcalcError, match="too small"):
        analyse_tokens("1x2x2", "convT:1,k=2,p=2")


# Seed 000: the convolution-matrix example, 4x4 input, 3x3 kernel, and back
def test_seed_000_convolution_matrix_shapes():
    assert out("1x4x4", "conv:1,k=3,bias=false") == (1, 2, 2)
    assert out("1x2x2", "convT:1,k=3,bias=false") == (1, 4, 4)


# Seed 000: PyTorch's documented output_size example (downsample 12 -> 6, back to 12)
def test_seed_000_output_size_example():
    assert out("16x12x12", "conv:16,k=3,s=2,p=1") == (16, 6, 6)
    assert out("16x6x6", "convT:16,k=3,s=2,p=1,output_size=12x12") == (16, 12, 12)
    assert out("16x6x6", "convT:16,k=3,s=2,p=1") == (16, 11, 11)


# Seed 000: spatially separable convolution, 5x5 image: 81 vs 45 + 27 multiplications
def test_seed_000_spatially_separable_multiplications():
    assert analyse_tokens("1x5x5", "conv:1,k=3,bias=false").totals.macs == 81
    separable = analyse_tokens("1x5x5", "conv:1,k=3x1,bias=false", "conv:1,k=1x3,bias=false")
    assert [r.macs for r in separable.layers] == [45, 27]
    assert separable.totals.params == 6  # "only 6 parameters instead of 9"


# Seed 002: depthwise separable on a 3x5x5 input to 4 channels, and its cost ratio 1/n + 1/k^2
def test_seed_002_depthwise_separable_ratio():
    standard = analyse_tokens("3x5x5", "conv:4,k=3,bias=false")
    separable = analyse_tokens("3x5x5", "conv:3,k=3,g=3,bias=false", "conv:4,k=1,bias=false")
    assert standard.output_shape == separable.output_shape == (4, 3, 3)
    assert Fraction(separable.totals.macs, standard.totals.macs) == Fraction(1, 4) + Fraction(1, 9)


# Seed 002 and seed 000: receptive fields of stacked 3x3 and dilated 3x3 convolutions
def test_seed_receptive_fields_of_stacks():
    two = analyse_tokens("1x5x5", "conv:1,k=3", "conv:1,k=3")
    assert [r.receptive_field.size[0] for r in two.layers] == [3, 5]
    three = analyse_tokens("1x9x9", "conv:1,k=3", "conv:1,k=3", "conv:1,k=3")
    assert three.layers[-1].receptive_field.size == (7, 7)  # (kernel-1)*layers+1
    dilated = analyse_tokens("1x32x32", "conv:1,k=3,p=1", "conv:1,k=3,d=2,p=2", "conv:1,k=3,d=4,p=4")
    assert [r.receptive_field.size[0] for r in dilated.layers] == [3, 7, 15]


# Seed 004: 1-D full, same and valid convolutions as paddings
def test_seed_004_one_dimensional_modes():
    k = 5
    assert out("1x20", f"conv:1,k={k},p={k - 1}") == (1, 20 + k - 1)  # full
    assert out("1x20", f"conv:1,k={k},p=same") == (1, 20)
    assert out("1x20", f"conv:1,k={k},p=valid") == (1, 20 - k + 1)


# Published layer figures
def test_conv_params_published():
    assert analyse_tokens("3x224x224", "Conv2d(3, 2, 3)").totals.params == 56


def test_transposed_macs_published():
    result = analyse_tokens("4x8x8", "ConvTranspose2d(4, 6, 4, stride=2, padding=1)", batch=2)
    assert result.totals.macs == 49_152
    assert result.output_shape == (6, 16, 16)


def test_resnet_stem_receptive_field():
    result = analyse_tokens("3x224x224", "conv:64,k=7,s=2,p=3", "maxpool:k=3,s=2,p=1")
    rf = result.layers[-1].receptive_field
    assert rf.size == (11, 11) and rf.jump == (4, 4)
    assert result.totals.params == 64 * 3 * 49 + 64


def test_same_padding_even_kernel_extra_at_end():
    layer = parse_layer("conv:1,k=4,p=same")
    assert layer.pads((5, 5)) == ((1, 2), (1, 2))
    assert out("1x5x5", "conv:1,k=4,p=same") == (1, 5, 5)
