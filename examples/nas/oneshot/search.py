"""One-shot NAS on scikit-learn's 8x8 digits: DARTS, SPOS (single-path one-shot + evolution) or FBNet, then write
the chosen architecture as JSON for ``retrain.py``.

    python search.py --algo darts --out darts_arch.json [--search-epochs 10] [--channels 16] [--seed 0]
    python retrain.py darts_arch.json [--epochs 15]

The space is the one-shot benchmark's ``DigitsSpace`` (nni-benchmarks: ``nni.nas_oneshot_benchmark.bench``): a stem
conv, two LayerChoices over conv3x3 / conv5x5 (conv-BN-ReLU) / maxpool / identity and an InputChoice skip, so the
figures in packages/benchmarks/README.md apply to this example. The search uses 75 % of the data (the split of
``retrain.py``, same seed); the remaining 25 % is only used to test the retrained network.
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from nni.nas_oneshot_benchmark.bench import DigitsSpace, accuracy, digits_dataset
from nni.retiarii.oneshot.pytorch import DartsTrainer, FBNetTrainer, FlopsLatencyPredictor, SinglePathTrainer


def split(data: TensorDataset, seed: int):
    """75 % / 25 % of ``data``, shuffled with ``seed`` (search and retraining use the same split)."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    cut = len(data) * 3 // 4
    x, y = data.tensors
    return TensorDataset(x[order[:cut]], y[order[:cut]]), TensorDataset(x[order[cut:]], y[order[cut:]])


def search(algo: str, epochs: int, channels: int, seed: int, samples=None) -> dict:
    train, _ = split(digits_dataset(samples), seed)
    torch.manual_seed(seed)
    model = DigitsSpace(channels)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    common = dict(batch_size=64, workers=0, device=torch.device('cpu'))
    if algo == 'darts':
        trainer = DartsTrainer(model, F.cross_entropy, accuracy, optimizer, num_epochs=epochs, dataset=train,
                               arc_learning_rate=3e-3, **common)
        trainer.fit()
        return trainer.export()
    if algo == 'fbnet':
        # the latency table in MFLOPs: the search trades accuracy for cheaper blocks
        trainer = FBNetTrainer(model, F.cross_entropy, accuracy, optimizer, num_epochs=epochs, dataset=train,
                               warmup_epochs=max(1, epochs // 4), latency_predictor=FlopsLatencyPredictor(), **common)
        trainer.fit()
        return trainer.export()
    # SPOS: train the super-net on uniformly sampled paths, then evolve architectures on held-out data with its weights
    half = len(train) // 2
    x, y = train.tensors
    trainer = SinglePathTrainer(model, F.cross_entropy, accuracy, optimizer, num_epochs=epochs,
                                dataset_train=TensorDataset(x[:half], y[:half]), dataset_valid=TensorDataset(x[half:], y[half:]),
                                seed=seed, **common)
    trainer.fit()
    return trainer.export(population_size=8, cycles=24, sample_size=3, metric='acc')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--algo', choices=['darts', 'spos', 'fbnet'], default='darts')
    parser.add_argument('--search-epochs', type=int, default=10)
    parser.add_argument('--channels', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--samples', type=int, default=None, help='use only the first N digits (quick runs)')
    parser.add_argument('--out', default='arch.json')
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    arch = search(args.algo, args.search_epochs, args.channels, args.seed, args.samples)
    with open(args.out, 'w') as f:
        json.dump({'algo': args.algo, 'channels': args.channels, 'seed': args.seed, 'samples': args.samples,
                   'architecture': arch}, f, indent=2)
    print(f'{args.algo} architecture: {arch} (written to {args.out})')


if __name__ == '__main__':
    main()
