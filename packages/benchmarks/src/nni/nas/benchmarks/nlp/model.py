"""The peewee models (tables) of the NAS-Bench-NLP database."""
from peewee import CharField, FloatField, IntegerField

from ..utils import BenchmarkDatabase, JSONField, config_link, table_base, trial_link

__all__ = ["NlpTrialConfig", "NlpTrialStats", "NlpIntermediateStats", "DATABASE"]

DATABASE = BenchmarkDatabase("nlp.db", "NAS-Bench-NLP",
                             "python -m nni.nas.benchmarks.nlp.db_gen path/to/train_logs_single_run/")
_Table = table_base(DATABASE)


class NlpTrialConfig(_Table):
    """Trial config for NAS-Bench-NLP.

    Attributes:
        arch (dict): the flattened recipe (see :mod:`nni.nas.benchmarks.nlp`).
        dataset (str): ``ptb`` or ``wikitext-2``.
    """
    arch = JSONField(index=True)
    dataset = CharField(max_length=15, index=True)


class NlpTrialStats(_Table):
    """Final statistics of one NAS-Bench-NLP trial: the losses (log perplexity; None where the log has NaN) and the
    training time (seconds) of its last epoch."""
    config = config_link(NlpTrialConfig)
    train_loss = FloatField(null=True)
    val_loss = FloatField(null=True)
    test_loss = FloatField(null=True)
    training_time = FloatField(null=True)


class NlpIntermediateStats(_Table):
    """The losses and training time of one NAS-Bench-NLP trial at epoch ``current_epoch`` (1-based)."""
    trial = trial_link(NlpTrialStats)
    current_epoch = IntegerField()
    train_loss = FloatField(null=True)
    val_loss = FloatField(null=True)
    test_loss = FloatField(null=True)
    training_time = FloatField(null=True)


MODELS = [NlpTrialConfig, NlpTrialStats, NlpIntermediateStats]
