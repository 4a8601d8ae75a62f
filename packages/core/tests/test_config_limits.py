"""Absurd budget values (issue 11 item 2): one-line errors naming the field and the limit, the
same on every path (config load, the manager's update, nnictl)."""
from __future__ import annotations

import pytest

from nni.experiment.config import ConfigError, ExperimentConfig, parse_duration
from nni.experiment.config.limits import (
    MAX_DURATION_SECONDS,
    MAX_TRIAL_CONCURRENCY,
    MAX_TRIAL_NUMBER,
    check_duration,
    check_max_trial_number,
    check_trial_concurrency,
)


def _canonical(**fields) -> dict:
    data = {
        "searchSpace": {"x": {"_type": "choice", "_value": [1, 2]}},
        "trialCommand": "python3 t.py",
        "trialConcurrency": 1,
        "tuner": {"name": "TPE"},
        "trainingService": {"platform": "local"},
    }
    data.update(fields)
    return ExperimentConfig(**data).to_canonical_dict(check_algorithms=False, check_files=False)


def test_large_but_sane_values_are_accepted():
    c = _canonical(trialConcurrency=10**9, maxTrialNumber=MAX_TRIAL_NUMBER, maxExperimentDuration="36500d")
    assert c["trialConcurrency"] == 10**9
    assert c["maxTrialNumber"] == MAX_TRIAL_NUMBER
    assert c["maxExperimentDuration"] == 36500 * 86400 == MAX_DURATION_SECONDS
    assert _canonical(maxTrialNumber=5.0)["maxTrialNumber"] == 5  # YAML may write 5.0


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"trialConcurrency": 10**10}, f"trialConcurrency: expected an integer >= 1 and <= {MAX_TRIAL_CONCURRENCY}, got 10000000000"),
        ({"maxTrialNumber": 1e30}, f"maxTrialNumber: expected an integer >= 1 and <= {MAX_TRIAL_NUMBER}, got float 1e+30"),
        ({"maxTrialNumber": 2**63}, f"maxTrialNumber: expected an integer >= 1 and <= {MAX_TRIAL_NUMBER}, got {2**63}"),
        ({"maxTrialNumber": 2.5}, "maxTrialNumber: expected an integer >= 1 and <= 2147483647, got float 2.5"),
        ({"maxExperimentDuration": "1000000d"}, "maxExperimentDuration: expected at most 36500d (100 years), got '1000000d'"),
        ({"maxTrialDuration": 1e300}, "maxTrialDuration: expected at most 36500d (100 years), got 1e+300"),
        ({"maxExperimentDuration": float("inf")}, "maxExperimentDuration: expected a duration"),
    ],
)
def test_absurd_values_name_field_and_limit(fields, fragment):
    with pytest.raises(ConfigError) as info:
        _canonical(**fields)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(fragment), msg


def test_update_checks_share_the_limits():
    assert check_trial_concurrency(10**9) == 10**9
    assert check_max_trial_number(None) is None
    assert check_duration("2h") == 7200
    with pytest.raises(ConfigError, match=r"^trialConcurrency: expected an integer >= 1 and <= 2147483647, got 10000000000$"):
        check_trial_concurrency(10**10)
    with pytest.raises(ConfigError, match=r"^--value: expected an integer >= 1 and <= 2147483647, got float 1e\+30$"):
        check_max_trial_number(1e30, "--value")
    with pytest.raises(ConfigError, match=r"^maxTrialNumber: expected an integer >= 1 and <= 2147483647, got bool True$"):
        check_max_trial_number(True)
    with pytest.raises(ConfigError, match=r"^maxExperimentDuration: expected at most 36500d \(100 years\), got 1e\+20$"):
        check_duration(1e20)
    with pytest.raises(ValueError, match="at most 36500d"):
        parse_duration("36501d")
