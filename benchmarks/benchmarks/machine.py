"""Which machine a benchmark result comes from, as a name asv files it under.

    python benchmarks/benchmarks/machine.py       # prints e.g. amd-f25m17-avx512_bf16-2c

A ratio of two engines depends on the CPU: a Zen 5 runs AVX-512 at full
width, a Zen 4 at half, a Zen 1 has AVX2 alone, and the same commit's
ratio against torch moved from 2.2 to 1.1 between two of them.  So the
name is derived from the CPU itself -- vendor, family and model as the
kernel reports them (Intel and AMD: ``cpu family``/``model``; Arm:
``CPU implementer``/``CPU part``), the SIMD level cattn runs at (forced
levels included: a ``CATTN_ISA=avx2`` series is its own) and the core
count -- and two different machines never share a series, while a VM
that comes back on the same kind of host finds its own history.
"""
import os
import platform
import re

import cattn

_VENDORS = {"AuthenticAMD": "amd", "GenuineIntel": "intel",
            "HygonGenuine": "hygon"}
# Arm's "CPU implementer" codes of the vendors we have met.
_IMPLEMENTERS = {"0x41": "arm", "0x61": "apple", "0xc0": "ampere"}


def _cpuinfo():
    """The first processor's fields of /proc/cpuinfo ({} off Linux)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model(info=None):
    """'amd-f25m17', 'intel-f6m143', 'arm-0xd0c', or the platform's
    machine name when the kernel says nothing more."""
    info = _cpuinfo() if info is None else info
    if "vendor_id" in info:
        vendor = _VENDORS.get(info["vendor_id"], info["vendor_id"].lower())
        return f"{vendor}-f{info.get('cpu family', '?')}m{info.get('model', '?')}"
    if "CPU implementer" in info:
        code = info["CPU implementer"]
        return f"{_IMPLEMENTERS.get(code, code)}-{info.get('CPU part', '?')}"
    return platform.machine().lower() or "unknown"


def machine_name(info=None):
    """The asv machine name of this process's results: CPU model, cattn's
    active SIMD level, core count."""
    level = cattn.show_config(mode="dicts")["simd"]["active"]
    name = f"{cpu_model(info)}-{level}-{os.cpu_count()}c"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def cpu_description(info=None):
    """A line for a table's heading: model name and the name above."""
    info = _cpuinfo() if info is None else info
    return (f"{info.get('model name', platform.processor() or '?')} "
            f"({machine_name(info)})")


if __name__ == "__main__":
    print(machine_name())
