"""Which experiments ``nnictl stop`` and id-less commands pick, over a registry list."""
from __future__ import annotations

import pytest

from nni.tools.nnictl.errors import NnictlError
from nni.tools.nnictl.experiments import ExperimentRef, find, select_stop_targets


def ref(eid, port=None, alive=True, status=None):
    return ExperimentRef(id=eid, name=None, status=status or ("RUNNING" if alive else "STOPPED"), port=port, pid=1 if alive else None,
                         platform="local", start_time=None, end_time=None, workdir=None, alive=alive)


REFS = [ref("abc12345", 8080), ref("abd99999", 8081), ref("xyz00001", 8082), ref("old00001", alive=False)]


def ids(refs):
    return [r.id for r in refs]


def test_rule1_no_id_single_running():
    assert ids(select_stop_targets([REFS[0], REFS[3]])) == ["abc12345"]


def test_rule1_no_id_errors():
    with pytest.raises(NnictlError, match="no experiment is running"):
        select_stop_targets([REFS[3]])
    with pytest.raises(NnictlError, match="3 experiments are running: abc12345 \\(port 8080\\)"):
        select_stop_targets(REFS)


def test_rule2_exact_id():
    assert ids(select_stop_targets(REFS, "xyz00001")) == ["xyz00001"]
    with pytest.raises(NnictlError, match="experiment old00001 is not running \\(status STOPPED\\)"):
        select_stop_targets(REFS, "old00001")


def test_rule3_port():
    assert ids(select_stop_targets(REFS, port=8081)) == ["abd99999"]
    with pytest.raises(NnictlError, match="no running experiment on port 9999"):
        select_stop_targets(REFS, port=9999)


def test_rule4_all():
    assert ids(select_stop_targets(REFS, all_=True)) == ["abc12345", "abd99999", "xyz00001"]
    with pytest.raises(NnictlError, match="no experiment is running"):
        select_stop_targets([REFS[3]], all_=True)


def test_rule5_trailing_star():
    assert ids(select_stop_targets(REFS, "ab*")) == ["abc12345", "abd99999"]
    assert ids(select_stop_targets(REFS, "?yz*")) == ["xyz00001"]
    with pytest.raises(NnictlError, match="no running experiment matches 'old\\*'"):
        select_stop_targets(REFS, "old*")  # only a stopped experiment matches


def test_rule6_unique_prefix():
    assert ids(select_stop_targets(REFS, "abc")) == ["abc12345"]
    assert ids(select_stop_targets(REFS, "x")) == ["xyz00001"]


def test_rule7_ambiguous_prefix_lists_candidates():
    with pytest.raises(NnictlError) as err:
        select_stop_targets(REFS, "ab")
    assert "abc12345 (port 8080)" in str(err.value) and "abd99999 (port 8081)" in str(err.value)


def test_unknown_id():
    with pytest.raises(NnictlError, match="experiment 'nope' not found"):
        select_stop_targets(REFS, "nope")


def test_find_for_other_commands():
    assert find("old", REFS).id == "old00001"  # stopped experiments are found (read from their store)
    assert find(None, [REFS[0], REFS[3]]).id == "abc12345"
    with pytest.raises(NnictlError, match="is not running"):
        find("old", REFS, need_alive=True)
    with pytest.raises(NnictlError, match="matches several experiments"):
        find("ab", REFS)
    with pytest.raises(NnictlError, match="not found"):
        find("zzz", REFS)
