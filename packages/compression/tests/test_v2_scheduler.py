"""Pruning scheduler, task generators and the v2 iterative pruners."""
import json

import pytest
import torch
from torch import nn

from nni.algorithms.compression.v2.pytorch.pruning import (AGPPruner, L1NormPruner, LinearPruner,
                                                           LotteryTicketPruner, PruningScheduler,
                                                           SimulatedAnnealingPruner)
from nni.algorithms.compression.v2.pytorch.pruning.tools import (AGPTaskGenerator, LinearTaskGenerator,
                                                                 LotteryTicketTaskGenerator, Task, TaskGenerator,
                                                                 TaskResult)
from nni.retiarii.models import DigitsCNN, digits_cnn


def net() -> DigitsCNN:
    """conv1(1->8) -> conv2(8->20) -> fc(320->10), 8x8 inputs (the model zoo's digits CNN)."""
    return digits_cnn(10, widths=(8, 20), hidden=None, padding=0, pool=False)


def make_model():
    torch.manual_seed(0)
    return net()


def sparsity(module):
    return float((module.weight == 0).sum()) / module.weight.numel()


@pytest.mark.parametrize('generator_cls, expected', [
    (AGPTaskGenerator, [0.8 * (1 - (1 - k / 5) ** 3) for k in range(1, 6)]),
    (LinearTaskGenerator, [0.1, 0.2, 0.3, 0.4, 0.5]),  # the docs' example: final 0.5 over 5 iterations
    (LotteryTicketTaskGenerator, [1 - 0.2 ** (k / 5) for k in range(1, 6)]),
])
def test_function_based_generators_schedule(tmp_path, generator_cls, expected):
    final = 0.5 if generator_cls is LinearTaskGenerator else 0.8
    gen = generator_cls(5, make_model(), [{'sparsity': final, 'op_types': ['Conv2d']}], log_dir=str(tmp_path))
    got = [gen.config_list_for(k)[0]['sparsity'] for k in range(1, 6)]
    assert got == pytest.approx(expected)
    assert got[-1] == pytest.approx(final)


def test_agp_pruner_follows_schedule_and_keeps_masks(tmp_path):
    model = make_model()
    seen = []

    def evaluator(m):
        seen.append((sparsity(m.conv1.module if hasattr(m.conv1, 'module') else m.conv1),
                     sparsity(m.conv2.module if hasattr(m.conv2, 'module') else m.conv2),
                     (m.conv2.module.weight if hasattr(m.conv2, 'module') else m.conv2.weight).detach().clone()))
        return 0.0

    pruner = AGPPruner(model, [{'sparsity': 0.8, 'op_types': ['Conv2d']}], 'level', total_iteration=4,
                       log_dir=str(tmp_path), evaluator=evaluator)
    pruner.compress()
    for k, (s1, s2, _) in enumerate(seen, start=1):
        target = 0.8 * (1 - (1 - k / 4) ** 3)
        assert s1 == int(72 * target + 1e-6) / 72 and s2 == int(1440 * target + 1e-6) / 1440
    for (_, _, before), (_, _, after) in zip(seen, seen[1:]):
        assert torch.all(after[before == 0] == 0)  # a later iteration never revives pruned weights
    task_id, best_model, masks, score, config_list = pruner.get_best_result()
    # equal scores: the latest result is the best
    assert task_id == 3 and score == 0.0 and config_list[0]['sparsity'] == pytest.approx(0.8)
    assert isinstance(best_model.conv2, nn.Conv2d)  # unwrapped
    assert sparsity(best_model.conv2) == int(1440 * 0.8 + 1e-6) / 1440
    assert torch.equal((best_model.conv2.weight != 0).float(), masks['conv2']['weight'] * (best_model.conv2.weight != 0))
    best_dirs = list(tmp_path.glob('*/best_result'))
    assert len(best_dirs) == 1 and {p.name for p in best_dirs[0].iterdir()} >= {'model.pth', 'masks.pth', 'config_list.json'}
    assert json.loads((best_dirs[0] / 'config_list.json').read_text()) == config_list
    assert not list(tmp_path.glob('*/0'))  # intermediate results are removed by default


def test_linear_pruner_l1_with_finetuner_and_best_result(tmp_path):
    model = make_model()
    calls = []
    scores = iter([0.9, 0.5, 0.7])
    pruner = LinearPruner(model, [{'sparsity': 0.6, 'op_types': ['Conv2d']}], 'l1', total_iteration=3,
                          log_dir=str(tmp_path), keep_intermediate_result=True,
                          finetuner=lambda m: calls.append(type(m.conv2).__name__), evaluator=lambda m: next(scores))
    pruner.compress()
    assert calls == ['PrunerModuleWrapper'] * 3  # fine-tuned with masks in force
    task_id, best_model, masks, score, config_list = pruner.get_best_result()
    assert (task_id, score) == (0, 0.9)
    assert config_list[0]['sparsity'] == pytest.approx(0.2)
    assert int((masks['conv2']['weight'].reshape(20, -1).sum(1) == 0).sum()) == 4
    assert {p.name for p in next(tmp_path.iterdir()).iterdir()} >= {'origin', '0', '1', '2', 'best_result'}


def test_lottery_ticket_resets_weights(tmp_path):
    model = make_model()
    origin = {k: v.clone() for k, v in model.state_dict().items()}
    received = []

    def finetuner(m):
        received.append({n: p.detach().clone() for n, p in m.named_parameters()})
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.5)  # "training" changes every weight

    pruner = LotteryTicketPruner(model, [{'sparsity': 0.8, 'op_types': ['Conv2d']}], 'level', total_iteration=3,
                                 log_dir=str(tmp_path), finetuner=finetuner)
    pruner.compress()
    assert len(received) == 3
    for params in received:
        w = params['conv2.module.weight']
        kept = w != 0
        assert torch.equal(w[kept], origin['conv2.weight'][kept])  # survivors rewound to their initial values
        assert torch.equal(params['fc.weight'], origin['fc.weight'])  # unpruned layers rewound too
    ratios = [float((p['conv2.module.weight'] == 0).float().mean()) for p in received]
    assert ratios == pytest.approx([int(1440 * (1 - 0.2 ** (k / 3)) + 1e-6) / 1440 for k in (1, 2, 3)])


def test_simulated_annealing_keeps_overall_sparsity(tmp_path):
    model = make_model()
    scores = iter([0.1, 0.5, 0.3])
    pruner = SimulatedAnnealingPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d', 'Linear']}], 'level',
                                      evaluator=lambda m: next(scores), cool_down_rate=0.5, log_dir=str(tmp_path))
    pruner.compress()  # temperature 100 → 50 → 25 → 12.5 (< 20): three tasks
    task_id, best_model, masks, score, config_list = pruner.get_best_result()
    assert (task_id, score) == (1, 0.5)
    sizes = {'conv1': 72, 'conv2': 1440, 'fc': 3200}
    per_layer = {c['op_names'][0]: c['sparsity_per_layer'] for c in config_list}
    assert sum(per_layer[n] * s for n, s in sizes.items()) / sum(sizes.values()) == pytest.approx(0.5)
    assert per_layer['fc'] >= per_layer['conv2'] >= per_layer['conv1']  # larger layers are pruned more
    pruned = sum(int((masks[n]['weight'] == 0).sum()) for n in sizes)
    assert abs(pruned - 0.5 * sum(sizes.values())) <= 3


class TwoStepGenerator(TaskGenerator):
    """The docs' extension point: init_pending_tasks() and generate_tasks()."""

    def init_pending_tasks(self):
        return [self.new_task(self.origin_model, {}, [{'sparsity': 0.25, 'op_names': ['conv2']}])]

    def generate_tasks(self, task_result):
        if task_result.task_id == 0:
            return [self.new_task(task_result.compact_model, task_result.compact_model_masks,
                                  [{'sparsity': 0.5, 'op_names': ['conv2']}])]
        return []


def test_scheduler_with_custom_generator_and_reset_weight(tmp_path):
    model = make_model()
    origin = model.conv2.weight.detach().clone()
    pruner = L1NormPruner(None, None)
    gen = TwoStepGenerator(model, log_dir=str(tmp_path))
    scheduler = PruningScheduler(pruner, gen, evaluator=lambda m: 1.0, reset_weight=True)
    scheduler.compress()
    task_id, best, masks, score, _ = scheduler.get_best_result()
    assert task_id == 1 and score == 1.0
    kept = masks['conv2']['weight'].reshape(20, -1).sum(1) != 0
    assert int(kept.sum()) == 10
    assert torch.equal(best.conv2.weight[kept], origin[kept])


def test_task_result_and_task_fields(tmp_path):
    gen = TwoStepGenerator(make_model(), log_dir=str(tmp_path))
    task = gen.next()
    assert isinstance(task, Task) and task.status == 'Running' and task.task_id == 0
    model, masks, config_list = task.load_data()
    assert isinstance(model, DigitsCNN) and masks == {} and config_list == [{'sparsity': 0.25, 'op_names': ['conv2']}]
    gen.receive_task_result(TaskResult(0, model, {}, {}, None))
    assert task.status == 'Finished' and gen.next().task_id == 1


def test_iterative_pruner_errors(tmp_path):
    model = make_model()
    with pytest.raises(ValueError, match="^pruning_algorithm: 'l3' is not supported; allowed: level, l1"):
        AGPPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}], 'l3', 3, log_dir=str(tmp_path))
    with pytest.raises(ValueError, match='^pruning_params: wrong parameters for SlimPruner'):
        AGPPruner(model, [{'sparsity': 0.5, 'op_types': ['BatchNorm2d']}], 'slim', 3, log_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r'^config_list\[0\]\.sparsity: must be a number'):
        LinearPruner(model, [{'sparsity': 2, 'op_types': ['Conv2d']}], 'l1', 3, log_dir=str(tmp_path))
    with pytest.raises(ValueError, match='^total_iteration: must be a positive integer'):
        LinearPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}], 'l1', 0, log_dir=str(tmp_path))
    with pytest.raises(ValueError, match='^dummy_input: required when speed_up=True'):
        AGPPruner(model, [{'sparsity': 0.5, 'op_types': ['Conv2d']}], 'l1', 2, log_dir=str(tmp_path), speed_up=True)
    assert isinstance(model.conv1, nn.Conv2d)  # validation left the model unwrapped


def test_simulated_annealing_with_filter_pruner_and_default_op_types(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    pruner = SimulatedAnnealingPruner(model, [{'sparsity': 0.5, 'op_types': ['default']}], 'l1',
                                      evaluator=lambda m: 1.0, cool_down_rate=0.3, log_dir=str(tmp_path))
    pruner.compress()  # 100 → 30 → 9: two tasks
    task_id, _, masks, _, config_list = pruner.get_best_result()
    assert task_id == 1 and set(masks) == {'0', '3'}  # BatchNorm2d is not in L1NormPruner's default set
    assert {c['op_names'][0] for c in config_list} == {'0', '3'}
