"""The peewee models (tables) of the NAS-Bench-201 database."""
from peewee import CharField, FloatField, IntegerField

from ..utils import BenchmarkDatabase, JSONField, config_link, table_base, trial_link

__all__ = ["Nb201TrialConfig", "Nb201TrialStats", "Nb201IntermediateStats", "DATABASE"]

DATABASE = BenchmarkDatabase("nasbench201.db", "NAS-Bench-201",
                             "python -m nni.nas.benchmarks.nasbench201.db_gen NAS-Bench-201-v1_1-096897.pth")
_Table = table_base(DATABASE)


class Nb201TrialConfig(_Table):
    """Trial config for NAS-Bench-201.

    Attributes:
        arch (dict): keys ``0_1, 0_2, 0_3, 1_2, 1_3, 2_3`` (edge from node i to node j), each an
            operator of :mod:`.constants` (``none``, ``skip_connect``, ``conv_1x1``, ``conv_3x3``,
            ``avg_pool_3x3``).
        num_epochs (int): epochs planned for this trial, 12 or 200.
        num_channels (int): channels of the initial convolution (16 by default).
        num_cells (int): cells per stage (5 by default).
        dataset (str): ``cifar10-valid``, ``cifar10``, ``cifar100`` or ``imagenet16-120``.
    """
    arch = JSONField(index=True)
    num_epochs = IntegerField(index=True)
    num_channels = IntegerField()
    num_cells = IntegerField()
    dataset = CharField(max_length=20, index=True)


class Nb201TrialStats(_Table):
    """Statistics of one NAS-Bench-201 trial (one config trained with one seed).

    Accuracies range over 0-100; losses are cross entropy, None where the raw data has NaN;
    ``parameters`` and ``flops`` are in millions, times in seconds. ``ori_test_*`` is measured on
    the original validation set (10k images for CIFAR, 12k for ImageNet16-120).
    """
    config = config_link(Nb201TrialConfig)
    seed = IntegerField()
    train_acc = FloatField()
    valid_acc = FloatField(null=True)
    test_acc = FloatField(null=True)
    ori_test_acc = FloatField(null=True)
    train_loss = FloatField(null=True)
    valid_loss = FloatField(null=True)
    test_loss = FloatField(null=True)
    ori_test_loss = FloatField(null=True)
    parameters = FloatField()
    latency = FloatField(null=True)
    flops = FloatField()
    training_time = FloatField()
    valid_evaluation_time = FloatField(null=True)
    test_evaluation_time = FloatField(null=True)
    ori_test_evaluation_time = FloatField(null=True)


class Nb201IntermediateStats(_Table):
    """The metrics of one NAS-Bench-201 trial after ``current_epoch`` epochs (same units as the stats)."""
    trial = trial_link(Nb201TrialStats)
    current_epoch = IntegerField()
    train_acc = FloatField(null=True)
    valid_acc = FloatField(null=True)
    test_acc = FloatField(null=True)
    ori_test_acc = FloatField(null=True)
    train_loss = FloatField(null=True)
    valid_loss = FloatField(null=True)
    test_loss = FloatField(null=True)
    ori_test_loss = FloatField(null=True)


MODELS = [Nb201TrialConfig, Nb201TrialStats, Nb201IntermediateStats]
