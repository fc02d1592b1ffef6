"""Small PyTorch models the tests build: the DCGAN generator and a U-Net (test_torch_models,
test_training_memory), a model with a tied layer and one with attention (test_torch_models); the
oracles several modules share: what autograd saves, and a model's ONNX export.

The module imports without torch, so the test modules that use it import everywhere; only
building a model needs torch, and the tests that build one say so (``needs_torch``).
"""

from __future__ import annotations

try:
    import torch
    from torch import nn
    from torch.nn import functional as F

    Module, Sequential = nn.Module, nn.Sequential
except ImportError:  # the classes are still defined; building one fails (its tests skip first)
    Module = Sequential = object


class Generator(Module):
    """The DCGAN generator (Radford et al.), as in PyTorch's examples: 100-d noise to 3x64x64."""

    def __init__(self, nz=100, ngf=64):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, x):
        return self.main(x)


class DoubleConv(Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class Up(Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x, skip):
        x = self.up(x)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(Module):
    """A U-Net with bilinear upsampling and torch.cat skips (the widely used PyTorch U-Net's layout)."""

    def __init__(self, channels=3, classes=2, width=16):
        super().__init__()
        w = width
        self.inc = DoubleConv(channels, w)
        self.downs = nn.ModuleList([nn.Sequential(nn.MaxPool2d(2), DoubleConv(a, b))
                                    for a, b in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 4 * w))])
        self.ups = nn.ModuleList([Up(8 * w, 2 * w), Up(4 * w, w), Up(2 * w, w)])
        self.outc = nn.Conv2d(w, classes, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


class Tied(Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)
        self.head.weight.requires_grad_(False)

    def forward(self, x):
        return self.head(self.conv(self.conv(x)).mean((2, 3)))


class WithAttention(Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 16, 4, stride=4)
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        out, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return out


class WithCumsum(Module):
    """A convolution, then an operation convcalc does not cost (a cumulative sum)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 16, 4, stride=4)

    def forward(self, x):
        return torch.cumsum(self.embed(x), dim=2)


def saved_by_autograd(model, x) -> int:
    """The oracle for saved activations: the bytes of the unique storages autograd saves in a
    training-mode forward pass of ``model`` on ``x``, parameters and buffers aside (convcalc counts
    them as parameters)."""
    kept = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    storages: dict[int, int] = {}
    held = []  # keeps every saved tensor alive, so no address is reused while recording

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in kept:
            storages[storage.data_ptr()] = storage.nbytes()
        held.append(tensor)
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(x)
    return sum(storages.values())


def onnx_bytes(model, shape, dynamo: bool, *, even_chunks: bool = False) -> bytes:
    """``model`` exported to ONNX for inputs of ``shape`` (per sample) with a symbolic batch: by the
    legacy exporter (opset 17), or by torch.export's (``dynamo``), whose example has 2 samples, as it
    specializes a batch of 1. ``even_chunks``: torch.export's trace runs under the PyTorch reader's
    ``even_chunks`` (a chunk of the batch times a multiple of the chunks is traced as the equal split it
    is, PyTorch's results unchanged), so RAFT's chunk of both frames' features keeps the batch a symbol."""
    import contextlib
    import io

    model.eval()
    if dynamo:
        from convcalc.readers.pytorch.chunks import even_chunks as chunks

        with chunks(torch) if even_chunks else contextlib.nullcontext():
            program = torch.onnx.export(model, (torch.randn(2, *shape),), dynamo=True, verbose=False,
                                        dynamic_shapes=({0: torch.export.Dim("batch")},))
        return program.model_proto.SerializeToString()
    buffer = io.BytesIO()
    torch.onnx.export(model, (torch.randn(1, *shape),), buffer, dynamo=False, input_names=["x"], opset_version=17,
                      dynamic_axes={"x": {0: "batch"}})
    return buffer.getvalue()
