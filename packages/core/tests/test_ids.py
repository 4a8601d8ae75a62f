"""Experiment and trial ids do not repeat when user code seeds ``random``."""
import random

from nni.experiment.experiment import _new_id
from nni.runtime.ids import EXPERIMENT_ID_CHARS, random_id


def test_ids_ignore_the_seed_of_the_random_module():
    random.seed(0)
    first = [_new_id() for _ in range(3)]
    random.seed(0)
    second = [_new_id() for _ in range(3)]
    assert not set(first) & set(second)


def test_random_id_length_and_alphabet():
    ids = {random_id(5, "ab") for _ in range(200)}
    assert all(len(i) == 5 and set(i) <= {"a", "b"} for i in ids) and len(ids) > 16
    assert set(random_id(64)) <= set(EXPERIMENT_ID_CHARS)
