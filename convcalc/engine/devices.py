"""Devices for the roofline bound: published peak arithmetic throughput per dtype and
memory bandwidth.

Each figure is the vendor's published one for dense arithmetic (no structured
sparsity), from the document named beside it. float32 is the vector (CUDA
core) rate; float16 and bfloat16 are the tensor-core rates with float32
accumulation where the vendor gives both; int8 is in operations per second.
A dtype a device has no published figure for is left out, and asking for it
is an error that says to give ``--peak``. The CPU figures are the vendor's
core count, base clock and vector units (FLOPs per cycle per core) and its
memory channels times their transfer rate, as the vendor's product page lists
them; a CPU's real clock under load differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

T, G = 10**12, 10**9


@dataclass(frozen=True)
class Device:
    """A device's peak arithmetic throughput (FLOP/s per dtype) and memory bandwidth (bytes/s)."""

    name: str
    peak: dict[str, int] = field(hash=False)
    bandwidth: int
    source: str = ""

    def peak_for(self, dtype: str) -> int | None:
        return self.peak.get(dtype)


_A100 = {"float64": 19_500 * G, "float32": 19_500 * G, "float16": 312 * T, "bfloat16": 312 * T, "int8": 624 * T}

DEVICES = {device.name: device for device in (
    Device("h100-sxm", {"float64": 67 * T, "float32": 67 * T, "float16": 989_400 * G, "bfloat16": 989_400 * G,
                        "int8": 1_978_900 * G}, 3_350 * G,
           "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM: FP64 Tensor Core 67, FP32 67, BF16/FP16 Tensor Core "
           "1,979 with sparsity, so 989.4 dense, INT8 3,958 with sparsity; GPU memory bandwidth 3.35 TB/s)"),
    Device("a100-80gb", _A100, 2_039 * G,
           "NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM: FP64 Tensor Core 19.5, FP32 19.5, BF16/FP16 "
           "Tensor Core 312, INT8 624 TOPS; GPU memory bandwidth 2,039 GB/s)"),
    Device("a100-40gb", _A100, 1_555 * G,
           "NVIDIA A100 Tensor Core GPU datasheet (A100 40GB SXM: as the 80GB, GPU memory bandwidth 1,555 GB/s)"),
    Device("v100-sxm2", {"float64": 7_800 * G, "float32": 15_700 * G, "float16": 125 * T}, 900 * G,
           "NVIDIA Tesla V100 GPU datasheet (V100 SXM2: double precision 7.8, single precision 15.7, Tensor "
           "Performance 125 TFLOPS; memory bandwidth 900 GB/s)"),
    Device("t4", {"float32": 8_100 * G, "float16": 65 * T, "int8": 130 * T}, 320 * G,
           "NVIDIA T4 Tensor Core GPU datasheet (single precision 8.1, mixed precision FP16/FP32 65 TFLOPS, "
           "INT8 130 TOPS; GPU memory bandwidth 320 GB/s)"),
    Device("l4", {"float32": 30_300 * G, "float16": 121 * T, "bfloat16": 121 * T, "int8": 242_500 * G}, 300 * G,
           "NVIDIA L4 Tensor Core GPU datasheet (FP32 30.3, FP16/BF16 Tensor Core 242 with sparsity, so 121 dense, "
           "INT8 485 TOPS with sparsity; GPU memory bandwidth 300 GB/s)"),
    Device("rtx-4090", {"float32": 82_600 * G, "float16": 165_200 * G, "bfloat16": 165_200 * G}, 1008 * G,
           "NVIDIA Ada GPU architecture whitepaper (GeForce RTX 4090: peak FP32 82.6 TFLOPS, peak FP16/BF16 Tensor "
           "TFLOPS with FP32 accumulate 165.2; memory bandwidth 1,008 GB/s)"),
    Device("rtx-3090", {"float32": 35_600 * G, "float16": 71 * T, "bfloat16": 71 * T}, 936 * G,
           "NVIDIA Ampere GA102 GPU architecture whitepaper (GeForce RTX 3090: peak FP32 35.6 TFLOPS, peak "
           "FP16/BF16 Tensor TFLOPS with FP32 accumulate 71; memory bandwidth 936 GB/s)"),
    Device("tpu-v4", {"bfloat16": 275 * T, "int8": 275 * T}, 1200 * G,
           "Google Cloud TPU v4 documentation (peak compute per chip 275 TFLOPS bf16 or int8; HBM2 bandwidth "
           "1,200 GBps)"),
    Device("xeon-8380", {"float64": 40 * 23 * G // 10 * 32, "float32": 40 * 23 * G // 10 * 64}, 8 * 25_600_000_000,
           "Intel Xeon Platinum 8380 product page: 40 cores, 2.30 GHz base, two AVX-512 FMA units (64 float32 "
           "FLOPs per cycle per core); 8 channels of DDR4-3200 (25.6 GB/s each)"),
    Device("epyc-7763", {"float64": 64 * 245 * G // 100 * 16, "float32": 64 * 245 * G // 100 * 32}, 8 * 25_600_000_000,
           "AMD EPYC 7763 product page: 64 cores, 2.45 GHz base, two 256-bit FMA pipes (32 float32 FLOPs per "
           "cycle per core); 8 channels of DDR4-3200 (25.6 GB/s each)"),
)}
