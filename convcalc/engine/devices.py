"""Devices for the roofline bound: published peak arithmetic throughput per dtype and
memory bandwidth, each figure with the words of the document that publishes it.

Each figure is the vendor's published one for dense arithmetic (no structured
sparsity; where a document prints only the sparse figure, half of it, as its
footnote says), from the document named in ``source``; ``cites`` holds, for
each key of ``peak`` and for ``"bandwidth"``, what that document prints.
float32 is the vector (CUDA core) rate; float16 and bfloat16 are the
tensor-core rates with float32 accumulation where the vendor gives both; int8
is in operations per second. A dtype a device has no published figure for is
left out, and asking for it is an error that says to give ``--peak``.

``tf32`` is not a dtype: it is the TensorFloat-32 tensor-core rate of GPUs from
Ampere on (A100, RTX 3090, H100, L4, RTX 4090), at which they multiply float32
tensors whose inputs are rounded to TF32. Which float32 layers PyTorch runs at
that rate is the roofline's rule (``engine/roofline.py``), not the device's.
Volta (V100) and Turing (T4) have no TF32, nor have the CPUs and the TPU.

The CPU figures are the vendor's core count, base clock and vector units (FLOPs
per cycle per core) and its memory channels times their transfer rate, as the
vendor's product page lists them; a CPU's real clock under load differs.

>>> device = DEVICES["a100-80gb"]
>>> device.peak_for("float32"), device.tf32, device.cites["tf32"]
(19500000000000, 156000000000000, 'Tensor Float 32 (TF32) 156 TFLOPS (312 TFLOPS with sparsity)')
"""

from __future__ import annotations

from dataclasses import dataclass, field

T, G = 10**12, 10**9
TF32 = "tf32"  # the key of the TensorFloat-32 tensor-core rate in ``Device.peak``


@dataclass(frozen=True)
class Device:
    """A device's peak arithmetic throughput (FLOP/s per dtype, and ``tf32``) and memory bandwidth (bytes/s)."""

    name: str
    peak: dict[str, int] = field(hash=False)
    bandwidth: int
    source: str = ""
    # each figure as the document in ``source`` prints it: a key of ``peak``, or "bandwidth"
    cites: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    # the program runs float32 matrix products on TF32 (torch.backends.cuda.matmul.allow_tf32 = True):
    # every bound on this device takes it so, as roofline(..., tf32_matmul=True) does for one call
    tf32_matmul: bool = False

    def peak_for(self, dtype: str) -> int | None:
        """The peak for tensors of ``dtype`` (None: not published)."""
        return None if dtype == TF32 else self.peak.get(dtype)

    @property
    def tf32(self) -> int | None:
        """The TensorFloat-32 tensor-core rate (None: the device has none, or none is published)."""
        return self.peak.get(TF32)

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtypes with a published peak."""
        return tuple(key for key in self.peak if key != TF32)


def _device(name: str, source: str, bandwidth: tuple[int, str], **figures: tuple[int, str]) -> Device:
    """A device from its document and its figures, each (value, what the document prints)."""
    cites = {key: text for key, (_, text) in figures.items()} | {"bandwidth": bandwidth[1]}
    return Device(name, {key: value for key, (value, _) in figures.items()}, bandwidth[0], source, cites)


_A100 = {
    "float64": (19_500 * G, "FP64 Tensor Core 19.5 TFLOPS"),
    "float32": (19_500 * G, "FP32 19.5 TFLOPS"),
    "tf32": (156 * T, "Tensor Float 32 (TF32) 156 TFLOPS (312 TFLOPS with sparsity)"),
    "float16": (312 * T, "FP16 Tensor Core 312 TFLOPS"),
    "bfloat16": (312 * T, "BFLOAT16 Tensor Core 312 TFLOPS"),
    "int8": (624 * T, "INT8 Tensor Core 624 TOPS"),
}
_H100_PAPER = "the NVIDIA H100 Tensor Core GPU Architecture whitepaper's dense figure for H100 SXM5"

DEVICES = {device.name: device for device in (
    _device("h100-sxm", "NVIDIA H100 Tensor Core GPU datasheet, technical specifications table, column H100 SXM "
            "(figures marked * are with sparsity, 'specifications 1/2 lower without sparsity'); the dense tensor "
            "figures from the NVIDIA H100 Tensor Core GPU Architecture whitepaper, H100 SXM5, which are the larger",
            (3_350 * G, "GPU memory bandwidth 3.35TB/s"),
            float64=(67 * T, "FP64 Tensor Core 67 teraFLOPS"),
            float32=(67 * T, "FP32 67 teraFLOPS"),
            tf32=(494_700 * G, f"TF32 Tensor Core 989 teraFLOPS* (494.5 dense); 494.7 in {_H100_PAPER}"),
            float16=(989_400 * G, f"FP16 Tensor Core 1,979 teraFLOPS* (989.5 dense); 989.4 in {_H100_PAPER}"),
            bfloat16=(989_400 * G, f"BFLOAT16 Tensor Core 1,979 teraFLOPS* (989.5 dense); 989.4 in {_H100_PAPER}"),
            int8=(1_978_900 * G, f"INT8 Tensor Core 3,958 TOPS* (1,979 dense); 1,978.9 in {_H100_PAPER}")),
    _device("a100-80gb", "NVIDIA A100 Tensor Core GPU datasheet, technical specifications table, column A100 80GB "
            "SXM", (2_039 * G, "GPU Memory Bandwidth 2,039GB/s"), **_A100),
    _device("a100-40gb", "NVIDIA A100 Tensor Core GPU datasheet (the edition listing the 40GB parts), technical "
            "specifications table, column A100 40GB SXM: the arithmetic as the 80GB's",
            (1_555 * G, "GPU Memory Bandwidth 1,555GB/s"), **_A100),
    _device("v100-sxm2", "NVIDIA Tesla V100 GPU datasheet, specifications table, column V100 SXM2 (Volta: no TF32)",
            (900 * G, "Memory Bandwidth 900GB/sec"),
            float64=(7_800 * G, "Double-Precision Performance 7.8 TFLOPS"),
            float32=(15_700 * G, "Single-Precision Performance 15.7 TFLOPS"),
            float16=(125 * T, "Tensor Performance 125 TFLOPS")),
    _device("t4", "NVIDIA T4 Tensor Core GPU datasheet, specifications table (Turing: no TF32)",
            (320 * G, "GPU Memory Bandwidth 320+ GB/s"),
            float32=(8_100 * G, "Single-Precision 8.1 TFLOPS"),
            float16=(65 * T, "Mixed-Precision (FP16/FP32) 65 TFLOPS"),
            int8=(130 * T, "INT8 130 TOPS")),
    _device("l4", "NVIDIA L4 Tensor Core GPU datasheet, specifications table (figures marked * are with sparsity: "
            "half of them dense)", (300 * G, "GPU memory bandwidth 300GB/s"),
            float32=(30_300 * G, "FP32 30.3 teraFLOPs"),
            tf32=(60 * T, "TF32 Tensor Core 120 teraFLOPs*, so 60 dense"),
            float16=(121 * T, "FP16 Tensor Core 242 teraFLOPs*, so 121 dense"),
            bfloat16=(121 * T, "BFLOAT16 Tensor Core 242 teraFLOPs*, so 121 dense"),
            int8=(242_500 * G, "INT8 Tensor Core 485 TOPs*, so 242.5 dense")),
    _device("rtx-4090", "NVIDIA Ada GPU architecture whitepaper, the table of GeForce RTX 4090 specifications "
            "(dense figures, sparse ones after a slash)", (1008 * G, "Memory Bandwidth 1008 GB/sec"),
            float32=(82_600 * G, "Peak FP32 TFLOPS (non-Tensor) 82.6"),
            tf32=(82_600 * G, "Peak TF32 Tensor TFLOPS 82.6/165.2"),
            float16=(165_200 * G, "Peak FP16 Tensor TFLOPS with FP32 Accumulate 165.2/330.4"),
            bfloat16=(165_200 * G, "Peak BF16 Tensor TFLOPS with FP32 Accumulate 165.2/330.4")),
    _device("rtx-3090", "NVIDIA Ampere GA102 GPU architecture whitepaper, the table of GeForce RTX 3090 "
            "specifications (dense figures, sparse ones after a slash)", (936 * G, "Memory Bandwidth 936 GB/sec"),
            float32=(35_600 * G, "Peak FP32 TFLOPS (non-Tensor) 35.6"),
            tf32=(35_600 * G, "Peak TF32 Tensor TFLOPS 35.6/71"),
            float16=(71 * T, "Peak FP16 Tensor TFLOPS with FP32 Accumulate 71/142"),
            bfloat16=(71 * T, "Peak BF16 Tensor TFLOPS with FP32 Accumulate 71/142")),
    _device("tpu-v4", "Google Cloud TPU v4 documentation, system architecture: TPU v4 chip (no float32 or TF32 "
            "figure)", (1200 * G, "HBM2 bandwidth 1200 GBps"),
            bfloat16=(275 * T, "Peak compute per chip (bf16) 275 teraflops"),
            int8=(275 * T, "Peak compute per chip (int8) 275 teraops")),
    _device("xeon-8380", "Intel Xeon Platinum 8380 product page (ark.intel.com), specifications: cores, base "
            "frequency, number of AVX-512 FMA units, memory types and channels (no TF32)",
            (8 * 25_600_000_000, "8 channels of DDR4-3200: 8 x 25.6 = 204.8 GB/s"),
            float64=(40 * 23 * G // 10 * 32, ("40 cores x 2.30 GHz x 32 float64 FLOPs per cycle (two AVX-512 FMA "
                     "units) = 2,944 GFLOPS")),
            float32=(40 * 23 * G // 10 * 64, ("40 cores x 2.30 GHz x 64 float32 FLOPs per cycle (two AVX-512 FMA "
                     "units) = 5,888 GFLOPS"))),
    _device("epyc-7763", "AMD EPYC 7763 product page (amd.com), specifications: cores, base clock, memory channels "
            "and type; two 256-bit FMA pipes per Zen 3 core (no TF32)",
            (8 * 25_600_000_000, "8 channels of DDR4-3200: 8 x 25.6 = 204.8 GB/s"),
            float64=(64 * 245 * G // 100 * 16, "64 cores x 2.45 GHz x 16 float64 FLOPs per cycle = 2,508.8 GFLOPS"),
            float32=(64 * 245 * G // 100 * 32, "64 cores x 2.45 GHz x 32 float32 FLOPs per cycle = 5,017.6 GFLOPS")),
)}
