"""Tables of one experiment's store (``<experiment dir>/db/nni.sqlite``).

The model classes are created per database by :func:`make_models`, so one process can open
several stores (a running experiment and a viewed one) without peewee's global binding.
"""
from __future__ import annotations

from types import SimpleNamespace

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    IntegerField,
    SQL,
    Model,
    SqliteDatabase,
    TextField,
)

SCHEMA_VERSION = 1


def make_models(db: SqliteDatabase) -> SimpleNamespace:
    class Base(Model):
        class Meta:
            database = db

    class Experiment(Base):
        """The experiment profile: one row."""

        id = CharField(primary_key=True)
        # Stores written before the config_row table held the config here; now "" (see below).
        config = TextField()
        status = CharField()
        errors = TextField(default="[]")  # JSON list of messages (check-status)
        start_time = BigIntegerField()  # epoch ms
        end_time = BigIntegerField(null=True)
        revision = IntegerField(default=0)
        exec_duration = IntegerField(default=0)  # seconds spent RUNNING, as the profile reports
        next_sequence_id = IntegerField(default=0)
        next_parameter_id = IntegerField(default=0)
        log_dir = TextField()
        resume_count = IntegerField(default=0)
        schema_version = IntegerField(default=SCHEMA_VERSION)

        class Meta:
            table_name = "experiment"

    class ConfigRow(Base):
        """The canonical config JSON (camelCase), updated by PUT /experiment: one row.

        Its own table because SQLite rewrites a whole row on every UPDATE: with a 50 MB search
        space in the experiment row, each status or exec-duration update rewrote 50 MB."""

        id = CharField(primary_key=True)
        config = TextField()

        class Meta:
            table_name = "experiment_config"

    class Trial(Base):
        trial_id = CharField(primary_key=True)
        sequence_id = IntegerField(index=True)
        status = CharField(index=True)
        parameter = TextField()  # the dispatcher's TR string (hyperParameters)
        parameter_id = CharField(null=True)
        submit_time = BigIntegerField()
        start_time = BigIntegerField(null=True)
        end_time = BigIntegerField(null=True)
        message = TextField(default="")  # why WAITING / stderr tail of FAILED
        exit_code = IntegerField(null=True)
        working_directory = TextField(default="")
        gpu_indices = CharField(null=True)
        pid = IntegerField(null=True)
        counted = BooleanField(default=True)  # counts toward maxTrialNumber
        generation = IntegerField(default=0)  # dispatcher generation (0, then +1 per resume)
        source = CharField(default="algorithm")  # algorithm / customized / requeued
        # The platform that ran the trial (local, remote ...; several in a hybrid experiment).
        # Added after the first release: see ExperimentStore._upgrade for older stores.
        platform = CharField(default="", constraints=[SQL("DEFAULT ''")])  # raw INSERTs leave it out
        # What the web UI's trial list shows of the trial's metrics, kept by triggers on ``metric``
        # (see ExperimentStore.TRIGGERS), so that the list is one scan of this table: the data of
        # its last FINAL record and of its last PERIODICAL record, as JSON ready to embed (the
        # record's text when it is JSON, else that text as a JSON string), and that record's
        # sequence. Added after the first release, like ``platform``.
        final_json = TextField(null=True)
        latest_json = TextField(null=True)
        latest_sequence = IntegerField(null=True)

        class Meta:
            table_name = "trial"

    class Metric(Base):
        trial_id = CharField(index=True)
        parameter_id = CharField(null=True)
        type = CharField()
        sequence = IntegerField()
        data = TextField()  # the metric as a JSON string (the record's "value")
        timestamp = BigIntegerField()

        class Meta:
            table_name = "metric"
            # (trial_id, type) answers "latest intermediate of each trial" with one seek per
            # trial; (type) lists the final results: the REST reads of a 1M-row table stay fast.
            indexes = ((("trial_id", "type"), False), (("type",), False))

    class TrialEvent(Base):
        trial_id = CharField(index=True)
        event = CharField()  # a TrialJobStatus or USER_TO_CANCEL / ADD_CUSTOMIZED ...
        timestamp = BigIntegerField()
        message = TextField(default="")

        class Meta:
            table_name = "trial_event"

    class ImportedData(Base):
        data = TextField()  # JSON list of {parameter, value}
        timestamp = BigIntegerField()

        class Meta:
            table_name = "imported_data"

    return SimpleNamespace(
        Experiment=Experiment,
        Trial=Trial,
        Metric=Metric,
        TrialEvent=TrialEvent,
        ImportedData=ImportedData,
        ConfigRow=ConfigRow,
        all=[Experiment, ConfigRow, Trial, Metric, TrialEvent, ImportedData],
    )
