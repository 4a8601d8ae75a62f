"""The ``slurm`` training service: trials in SLURM jobs (``platform: slurm``).

See :mod:`.service` for how jobs are launched and followed, :class:`SlurmConfig` for the
fields, and :mod:`.testing` for a real single-node cluster to test against.
"""
from .config import SlurmConfig
from .service import SlurmTrainingService

__all__ = ["SlurmConfig", "SlurmTrainingService"]
