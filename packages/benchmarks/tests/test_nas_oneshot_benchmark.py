"""The one-shot NAS benchmark runs and reports a sane DARTS / plain-epoch ratio (tiny settings)."""
import torch

from nni.nas_oneshot_benchmark.bench import LARGEST, DigitsSpace, bench_darts_overhead
from nni.retiarii import fixed_arch


def test_largest_candidate_is_the_biggest_network():
    with fixed_arch(LARGEST, verbose=False):
        largest = DigitsSpace(8)
    sizes = []
    for op in ('conv3x3', 'maxpool', 'identity'):
        with fixed_arch({'layer1': op, 'layer2': op, 'skip': [1]}, verbose=False):
            sizes.append(sum(p.numel() for p in DigitsSpace(8).parameters()))
    assert sum(p.numel() for p in largest.parameters()) > max(sizes)
    assert largest(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_bench_darts_overhead_reports_a_ratio():
    result = bench_darts_overhead(repeats=1, batch_size=32, channels=4, samples=128)
    assert result['samples'] == 128 and result['darts_epoch_s'] > 0 and result['plain_largest_epoch_s'] > 0
    # the super-net runs every candidate: never cheaper than the largest one alone, never absurdly dearer
    assert 0.5 < result['ratio'] < 20
