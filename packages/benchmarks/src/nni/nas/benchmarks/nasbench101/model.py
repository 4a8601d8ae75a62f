"""The peewee models (tables) of the NAS-Bench-101 database."""
from peewee import CharField, FloatField, IntegerField

from ..utils import BenchmarkDatabase, JSONField, config_link, table_base, trial_link

__all__ = ["Nb101TrialConfig", "Nb101TrialStats", "Nb101IntermediateStats", "DATABASE"]

DATABASE = BenchmarkDatabase("nasbench101.db", "NAS-Bench-101",
                             "python -m nni.nas.benchmarks.nasbench101.db_gen nasbench_full.tfrecord")
_Table = table_base(DATABASE)


class Nb101TrialConfig(_Table):
    """Trial config for NAS-Bench-101.

    Attributes:
        arch (dict): keys ``op1, op2, …`` and ``input1, input2, …``; vertices are numbered from 0
            (the input, which has no key). Each op is ``conv3x3-bn-relu``, ``conv1x1-bn-relu`` or
            ``maxpool3x3``; each input is the list of earlier vertices feeding it, e.g.
            ``'input5': [0, 1, 3]``. The last vertex is the output.
        num_vertices (int): vertices of the cell (at most 7 in the default setup).
        hash (str): graph-invariant MD5 of the cell (:func:`.graph_util.hash_module`).
        num_epochs (int): epochs planned for this trial, one of 4, 12, 36, 108.
    """
    arch = JSONField(index=True)
    num_vertices = IntegerField()
    hash = CharField(max_length=32, index=True)
    num_epochs = IntegerField(index=True)


class Nb101TrialStats(_Table):
    """Statistics of one NAS-Bench-101 trial on CIFAR-10 (40k train / 10k valid / the 10k test set).

    Accuracies range over 0-100, ``parameters`` is in millions, ``training_time`` in seconds. The
    per-trial seed is not in the release.
    """
    config = config_link(Nb101TrialConfig)
    train_acc = FloatField()
    valid_acc = FloatField()
    test_acc = FloatField()
    parameters = FloatField()
    training_time = FloatField()


class Nb101IntermediateStats(_Table):
    """The metrics of one NAS-Bench-101 trial after ``current_epoch`` epochs (``training_time``: elapsed seconds)."""
    trial = trial_link(Nb101TrialStats)
    current_epoch = IntegerField()
    train_acc = FloatField()
    valid_acc = FloatField()
    test_acc = FloatField()
    training_time = FloatField()


MODELS = [Nb101TrialConfig, Nb101TrialStats, Nb101IntermediateStats]
