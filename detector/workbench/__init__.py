"""The training workbench: ``detector train``, ``evaluate``, ``review`` and ``bench``.

It needs the ``train`` extra (scikit-learn, numpy, scipy, pandas, threadpoolctl); cleaning never imports it.
Importing it pins what makes training reproducible across machines of one kind, before numpy loads its BLAS: one
thread for BLAS and OpenMP (parallel sums add up in a different order from run to run), and OpenBLAS's
Haswell kernels (by default OpenBLAS picks kernels by the CPU it finds, and each adds up differently), and
numpy without its AVX-512 loops (numpy too picks loops by the CPU: with the same versions and BLAS pinned, the
fixture model came out different on a CPU without AVX-512 than on the AVX-512 machines before it, and numpy's
AVX-512 ``exp`` and ``log``, which round differently from the C library's, are the likely cause).
``detector.workbench.train`` checks that the pins took effect and records them with the model.
"""

from __future__ import annotations

import os
import platform
import sys

PINNED_CORETYPE = "Haswell"  # AVX2 and FMA: every x86-64 server CPU since 2013


def _pinned_environment() -> dict[str, str]:
    pins = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if platform.machine() in ("x86_64", "AMD64"):
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
                flags = set(next((line for line in cpuinfo if line.startswith("flags")), "").split())
        except OSError:
            flags = set()
        if {"avx2", "fma"} <= flags:  # forcing kernels the CPU lacks would crash
            pins["OPENBLAS_CORETYPE"] = PINNED_CORETYPE
        pins["NPY_DISABLE_CPU_FEATURES"] = _numpy_avx512_targets()
    return pins


def _numpy_avx512_targets() -> str:
    """numpy's names for its AVX-512 dispatch targets (renamed in numpy 2.3), read without importing numpy."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(part) for part in version("numpy").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        major, minor = 0, 0
    if (major, minor) >= (2, 3):
        return "X86_V4 AVX512_ICL AVX512_SPR"
    # numpy 2.0 to 2.2 dispatch AVX512_SPR only where the wheel's compiler knew it (not numpy 2.2.6's for
    # Python 3.10), and refuse a name they do not dispatch
    return "AVX512F AVX512_SKX AVX512_ICL"


PINNED_ENVIRONMENT = _pinned_environment()
os.environ.update(PINNED_ENVIRONMENT)


TRAIN_EXTRA = ("sklearn", "numpy", "scipy", "pandas", "threadpoolctl")
COMPARE_EXTRA = ("matplotlib", "trafilatura", "justext", "boilerpy3")


def main() -> None:
    """Entry point of the ``detector`` command: a clear message when the ``train`` extra is missing."""
    from detector.workbench.admin import admin_main

    try:
        code = admin_main()
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in TRAIN_EXTRA + COMPARE_EXTRA:
            raise
        extra = "train" if top in TRAIN_EXTRA else "compare"
        from detector.batch import extra_hint

        sys.stderr.write(
            f"error: the detector command needs the {extra} extra ({exc.name} is not installed): "
            f"{extra_hint(extra)}\n"
        )
        code = 1
    sys.exit(code)
