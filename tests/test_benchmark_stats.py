import math

import pytest

from gradmod.benchmark.report import format_interval
from gradmod.benchmark.stats import mean_interval, paired_difference, paired_ratio, t_critical_95


def test_t_critical_values():
    assert t_critical_95(1) == 12.706
    assert t_critical_95(4) == 2.776
    assert t_critical_95(100) == 1.96
    with pytest.raises(ValueError, match="degrees_of_freedom must be >= 1, got 0"):
        t_critical_95(0)


def test_mean_interval_by_hand():
    # mean 2, sample sd 1, n 3: half width = 4.303 * 1 / sqrt(3)
    interval = mean_interval([1.0, 2.0, 3.0], neutral=0.0)

    half = 4.303 / math.sqrt(3)
    assert interval.mean == pytest.approx(2.0)
    assert interval.low == pytest.approx(2.0 - half)
    assert interval.high == pytest.approx(2.0 + half)
    assert interval.within_noise  # 2 - 2.48 < 0
    assert interval.n == 3


def test_mean_interval_excludes_neutral():
    interval = mean_interval([1.20, 1.22, 1.21, 1.19], neutral=1.0)

    assert not interval.within_noise


def test_mean_interval_small_samples():
    assert mean_interval([], 1.0).mean is None
    single = mean_interval([1.5], 1.0)
    assert single.mean == 1.5
    assert single.low is None
    assert single.within_noise


def test_paired_ratio_skips_unreached():
    interval = paired_ratio([100, 120, None, 90], [50, 60, 40, None])

    assert interval.mean == pytest.approx(2.0)
    assert interval.n == 2


def test_paired_difference_and_length_check():
    assert paired_difference([0.5, 0.6], [0.55, 0.7]).mean == pytest.approx(0.075)
    with pytest.raises(ValueError, match="equal lengths, got 2 and 1"):
        paired_difference([0.5, 0.6], [0.5])


def test_format_interval_marks_each_case():
    assert format_interval(paired_ratio([100.0, 120.0], [50.0, 60.0]).to_dict(), suffix="x") == "2.00x [2.00, 2.00]"
    assert format_interval(paired_difference([0.5, 0.6], [0.6, 0.5]).to_dict(), percent=True) == "+0.00 pt [-127.06, +127.06] ~"  # t(1) = 12.706, se 0.1
    assert format_interval(paired_difference([0.5], [0.6]).to_dict(), percent=True) == "+10.00 pt (1 pair)"
    assert format_interval(paired_ratio([None], [10.0]).to_dict()) == "n/a"
