"""The comparison harness: arms x workloads x seeds, paired statistics, reports and plots.

    from gradmod.benchmark import compare
    results = compare("quick", out="runs/quick")

See ``gradmod compare --help`` for the command line.
"""

from gradmod.benchmark.arms import ARMS, Arm
from gradmod.benchmark.compare import compare, render
from gradmod.benchmark.presets import PRESETS, Preset, WorkloadSetting
from gradmod.benchmark.stats import Interval, mean_interval, paired_difference, paired_ratio

__all__ = [
    "ARMS",
    "Arm",
    "PRESETS",
    "Preset",
    "WorkloadSetting",
    "compare",
    "render",
    "Interval",
    "mean_interval",
    "paired_difference",
    "paired_ratio",
]
