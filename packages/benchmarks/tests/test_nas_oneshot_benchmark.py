"""The one-shot NAS benchmark runs and reports a sane DARTS / plain-epoch ratio (tiny settings)."""
import pytest
import torch

from nni.nas_oneshot_benchmark.bench import LARGEST, DigitsSpace, bench_darts_overhead
from nni.retiarii import fixed_arch


@pytest.fixture(autouse=True)
def one_thread():
    # tiny convolutions: a second intra-op thread only adds contention (4-8x slower on a loaded 2-core machine)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def test_bench_darts_quality_compares_darts_with_random_architectures():
    from nni.nas_oneshot_benchmark.bench import bench_darts_quality, candidates

    result = bench_darts_quality(seeds=[7], search_epochs=1, retrain_epochs=2, random_archs=3, channels=4, samples=160)
    assert result['samples'] == 160 and result['seconds'] > 0
    (row,) = result['runs']
    ops = set(candidates(1))
    for arch in [row['darts_arch']] + row['random_archs']:
        assert arch['layer1'] in ops and arch['layer2'] in ops and arch['skip'] in ([0], [1])
    assert len(row['random_accs']) == 3 and all(0 <= a <= 1 for a in row['random_accs'] + [row['darts_acc']])
    assert row['random_median_acc'] == sorted(row['random_accs'])[1]
    assert row['darts_beats_median'] == (row['darts_acc'] > row['random_median_acc'])
    assert result['wins'] == int(row['darts_beats_median'])


def test_retraining_is_reproducible_and_learns():
    from nni.nas_oneshot_benchmark.bench import _retrain, _split, digits_dataset

    train, test = _split(digits_dataset(400), 0)
    arch = {'layer1': 'conv5x5', 'layer2': 'identity', 'skip': [1]}
    # the DARTS pick and the random architectures are scored alike: same seed, same arch -> same score
    assert _retrain(arch, train, test, 2, 8, seed=1) == _retrain(arch, train, test, 2, 8, seed=1)
    assert _retrain(arch, train, test, 12, 8, seed=1) > 0.4  # 10 classes: far above chance
