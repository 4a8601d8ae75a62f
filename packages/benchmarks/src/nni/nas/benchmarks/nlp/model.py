"""The peewee models (tables) of the NAS-Bench-NLP database."""
from peewee import CharField, FloatField, ForeignKeyField, IntegerField, Model

from ..utils import BenchmarkDatabase, JSONField

__all__ = ["NlpTrialConfig", "NlpTrialStats", "NlpIntermediateStats", "DATABASE"]

DATABASE = BenchmarkDatabase("nlp.db", "NAS-Bench-NLP",
                             "python -m nni.nas.benchmarks.nlp.db_gen path/to/train_logs_single_run/")


class NlpTrialConfig(Model):
    """Trial config for NAS-Bench-NLP.

    Attributes:
        arch (dict): the flattened recipe (see :mod:`nni.nas.benchmarks.nlp`).
        dataset (str): ``ptb`` or ``wikitext-2``.
    """
    arch = JSONField(index=True)
    dataset = CharField(max_length=15, index=True)

    class Meta:
        database = DATABASE.db
        table_name = "nlptrialconfig"


class NlpTrialStats(Model):
    """Final statistics of one NAS-Bench-NLP trial: the losses (log perplexity; None where the log has NaN) and the
    training time (seconds) of its last epoch."""
    config = ForeignKeyField(NlpTrialConfig, backref="trial_stats", index=True)
    train_loss = FloatField(null=True)
    val_loss = FloatField(null=True)
    test_loss = FloatField(null=True)
    training_time = FloatField(null=True)

    class Meta:
        database = DATABASE.db
        table_name = "nlptrialstats"


class NlpIntermediateStats(Model):
    """The losses and training time of one NAS-Bench-NLP trial at epoch ``current_epoch`` (1-based)."""
    trial = ForeignKeyField(NlpTrialStats, backref="intermediates", index=True)
    current_epoch = IntegerField()
    train_loss = FloatField(null=True)
    val_loss = FloatField(null=True)
    test_loss = FloatField(null=True)
    training_time = FloatField(null=True)

    class Meta:
        database = DATABASE.db
        table_name = "nlpintermediatestats"


MODELS = [NlpTrialConfig, NlpTrialStats, NlpIntermediateStats]
