"""Building blocks of v2 pruners (data collectors, metrics calculators, sparsity allocators) and the
task generators of iterative pruning."""
from .data_collector import (ActivationDataCollector, DataCollector, SlimDataCollector, TaylorFODataCollector,
                             TrainerBasedDataCollector, WeightDataCollector)
from .metrics_calculator import (APoZRankMetricsCalculator, DistMetricsCalculator, MeanRankMetricsCalculator,
                                 MetricsCalculator, NormMetricsCalculator)
from .sparsity_allocator import DependencyAwareAllocator, GlobalSparsityAllocator, SparsityAllocator
from .task_generator import (AGPTaskGenerator, FunctionBasedTaskGenerator, LinearTaskGenerator,
                             LotteryTicketTaskGenerator, SimulatedAnnealingTaskGenerator, Task, TaskGenerator,
                             TaskResult)

__all__ = [
    'DataCollector', 'WeightDataCollector', 'TrainerBasedDataCollector', 'SlimDataCollector',
    'ActivationDataCollector', 'TaylorFODataCollector',
    'MetricsCalculator', 'NormMetricsCalculator', 'DistMetricsCalculator', 'APoZRankMetricsCalculator',
    'MeanRankMetricsCalculator',
    'SparsityAllocator', 'GlobalSparsityAllocator', 'DependencyAwareAllocator',
    'Task', 'TaskResult', 'TaskGenerator', 'FunctionBasedTaskGenerator', 'AGPTaskGenerator', 'LinearTaskGenerator',
    'LotteryTicketTaskGenerator', 'SimulatedAnnealingTaskGenerator',
]
