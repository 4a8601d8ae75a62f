"""The peewee models (tables) of the NDS database."""
from peewee import CharField, FloatField, IntegerField

from ..utils import BenchmarkDatabase, JSONField, config_link, table_base, trial_link

__all__ = ["NdsTrialConfig", "NdsTrialStats", "NdsIntermediateStats", "DATABASE"]

DATABASE = BenchmarkDatabase("nds.db", "NDS", "python -m nni.nas.benchmarks.nds.db_gen <folder of the NDS json files>")
_Table = table_base(DATABASE)


class NdsTrialConfig(_Table):
    """Trial config for NDS (On Network Design Spaces for Visual Recognition).

    Attributes:
        model_family (str): ``nas_cell``, ``residual_bottleneck``, ``residual_basic`` or ``vanilla``.
        model_spec (dict): nas_cell: ``num_nodes_normal, num_nodes_reduce, depth, width, aux,
            drop_prob``; residual_bottleneck: ``bot_muls, ds, num_gs, ss, ws``; residual_basic and
            vanilla: ``ds, ss, ws`` (depths, strides, widths per stage).
        cell_spec (dict): ``{}`` unless nas_cell; else ``<normal/reduce>_<i>_<op/input>_<x/y>`` for
            each node i (ops from :mod:`.constants`, inputs 0 … i + 1) and ``normal_concat``,
            ``reduce_concat`` (the nodes concatenated into the output).
        dataset (str): ``cifar10`` or ``imagenet``.
        generator (str): ``random``, ``fix_w_d`` (width and depth fixed; nas_cell only) or
            ``tune_lr_wd`` (learning rate and weight decay sampled too).
        proposer (str): ``nasnet, darts, enas, pnas, amoeba, vanilla, resnext-a, resnext-b, resnet, resnet-b``.
        base_lr (float): initial learning rate.
        weight_decay (float): L2 weight decay.
        num_epochs (int): epochs scheduled (the learning rate follows a cosine to 0).
    """
    model_family = CharField(max_length=20, index=True)
    model_spec = JSONField(index=True)
    cell_spec = JSONField(index=True)
    dataset = CharField(max_length=15, index=True)
    generator = CharField(max_length=15, index=True)
    proposer = CharField(max_length=15, index=True)
    base_lr = FloatField()
    weight_decay = FloatField()
    num_epochs = IntegerField(index=True)


class NdsTrialStats(_Table):
    """Statistics of one NDS trial: accuracies 0-100, losses cross entropy (None for NaN),
    ``parameters`` and ``flops`` in millions, ``iter_time`` seconds per iteration."""
    config = config_link(NdsTrialConfig)
    seed = IntegerField()
    final_train_acc = FloatField()
    final_train_loss = FloatField(null=True)
    final_test_acc = FloatField()
    best_train_acc = FloatField()
    best_train_loss = FloatField(null=True)
    best_test_acc = FloatField()
    parameters = FloatField()
    flops = FloatField()
    iter_time = FloatField(null=True)


class NdsIntermediateStats(_Table):
    """The metrics of one NDS trial after ``current_epoch`` epochs."""
    trial = trial_link(NdsTrialStats)
    current_epoch = IntegerField()
    train_loss = FloatField(null=True)
    train_acc = FloatField()
    test_acc = FloatField()


MODELS = [NdsTrialConfig, NdsTrialStats, NdsIntermediateStats]
