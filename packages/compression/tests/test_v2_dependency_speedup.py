"""v2 pruners with C2's topology tools: dependency-aware mode and speed-up inside the pruning scheduler."""
import pytest
import torch
from torch import nn

from nni.algorithms.compression.v2.pytorch.pruning import AGPPruner, L1NormPruner

pytest.importorskip('nni.compression.pytorch.utils.shape_dependency')


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3, padding=1)
        self.conv2 = nn.Conv2d(10, 10, 3, padding=1)
        self.conv3 = nn.Conv2d(10, 6, 3, padding=1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        a = torch.relu(self.conv1(x))
        b = torch.relu(self.conv2(a)) + a  # conv1 and conv2 outputs are added: same channels must go
        c = torch.relu(self.conv3(b))
        return self.fc(c.mean(dim=(2, 3)))


def pruned_rows(mask):
    return set(torch.nonzero(mask.reshape(mask.shape[0], -1).sum(1) == 0).flatten().tolist())


def test_dependency_aware_prunes_common_channels():
    torch.manual_seed(0)
    model = Residual()
    _, masks = L1NormPruner(model, [{'sparsity': 0.3, 'op_names': ['conv1']}, {'sparsity': 0.2, 'op_names': ['conv2']},
                                    {'sparsity': 0.5, 'op_names': ['conv3']}],
                            mode='dependency_aware', dummy_input=torch.rand(2, 3, 8, 8)).compress()
    p1, p2 = pruned_rows(masks['conv1']['weight']), pruned_rows(masks['conv2']['weight'])
    assert len(p1) == 3 and len(p2) == 2 and p2 <= p1  # common 20 %, then 10 % more on conv1 (the docs' example)
    assert len(pruned_rows(masks['conv3']['weight'])) == 3
    # the normal mode ranks each layer alone and (on this seed) picks different channels
    torch.manual_seed(0)
    _, normal = L1NormPruner(Residual(), [{'sparsity': 0.2, 'op_names': ['conv1', 'conv2']}]).compress()
    assert pruned_rows(normal['conv1']['weight']) != pruned_rows(normal['conv2']['weight'])


def test_agp_with_speed_up_shrinks_the_model(tmp_path):
    pytest.importorskip('nni.compression.pytorch.speedup')
    torch.manual_seed(0)
    model = Residual()
    dummy = torch.rand(2, 3, 8, 8)
    pruner = AGPPruner(model, [{'sparsity': 0.5, 'op_names': ['conv3']}], 'l1', total_iteration=3,
                       log_dir=str(tmp_path), speed_up=True, dummy_input=dummy)
    pruner.compress()
    _, best, masks, _, _ = pruner.get_best_result()
    assert masks == {}  # the sped-up model carries no masks
    assert best.conv3.out_channels == 3 and best.fc.in_features == 3  # 6 filters → 3 kept, over three steps
    assert best(dummy).shape == (2, 4)
