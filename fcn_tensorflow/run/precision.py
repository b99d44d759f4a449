"""What --mixed_precision computes in on this machine: float16 on a GPU, bfloat16 on a CPU with bfloat16 dot
products, float32 elsewhere. No TensorFlow here: the CPU's flags are read from /proc/cpuinfo.
"""
import os

CPUINFO = "/proc/cpuinfo"
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # AMD Zen 4 and Intel Cooper Lake+; Sapphire Rapids+
FLOAT16, BFLOAT16, FLOAT32 = "float16", "bfloat16", "float32"


def cpu_flags(cpuinfo=None):
    """The feature flags of the first CPU listed in `cpuinfo` (default CPUINFO, Linux's format); None where there
    is no such file."""
    flags = _first_cpu_field("flags", cpuinfo)
    return flags if flags is None else set(flags.split())


def cpu_model(cpuinfo=None):
    """The model name of the first CPU listed in `cpuinfo` (default CPUINFO); None where there is no such file."""
    return _first_cpu_field("model name", cpuinfo)


def _first_cpu_field(field, cpuinfo):
    cpuinfo = cpuinfo or CPUINFO
    if not os.path.exists(cpuinfo):
        return None
    with open(cpuinfo, errors="replace") as info:
        for line in info:
            name, _, value = line.partition(":")
            if name.strip() == field:
                return value.strip()
    return ""


def mixed_precision_type(gpu_present, cpuinfo=None):
    """(precision, note): FLOAT16 on a GPU; BFLOAT16 on a CPU with one of BFLOAT16_CPU_FLAGS, and a line saying
    so; else FLOAT32 and a line saying why."""
    if gpu_present:
        return FLOAT16, None
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return FLOAT32, ("--mixed_precision: cannot read the CPU's flags (no %s), so it runs in float32"
                         % (cpuinfo or CPUINFO))
    found = [flag for flag in BFLOAT16_CPU_FLAGS if flag in flags]
    if found:
        return BFLOAT16, ("--mixed_precision: this CPU has %s, so convolutions and matmuls run in bfloat16 (the "
                          "loss, softmax and scores in float32)" % " and ".join(found))
    return FLOAT32, ("--mixed_precision: this CPU has neither %s, so it runs in float32"
                     % " nor ".join(BFLOAT16_CPU_FLAGS))
