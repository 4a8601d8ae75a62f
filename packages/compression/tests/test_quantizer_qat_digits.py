"""QAT on scikit-learn's digits: 8-bit weights + activations (BN folded) stay within two points of
the float model, and the exported model (quantized weights, BN restored) computes the simulation."""
import pytest
import torch
from torch import nn

from nni.algorithms.compression.pytorch.quantization import QAT_Quantizer

datasets = pytest.importorskip("sklearn.datasets")


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 3 * 3, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool(self.relu2(self.conv2(x)))
        return self.fc1(x.flatten(1))


def load_digits():
    digits = datasets.load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    split = int(0.75 * len(y))
    return (x[:split], y[:split]), (x[split:], y[split:])


def train(model, optimizer, data, epochs):
    x, y = data
    model.train()
    for _ in range(epochs):
        for i in range(0, len(y), 32):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
            optimizer.step()


def accuracy(model, data):
    x, y = data
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_qat_on_digits_within_two_points_of_float(tmp_path):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    train_data, test_data = load_digits()
    model = DigitsCNN()
    train(model, torch.optim.Adam(model.parameters(), lr=3e-3), train_data, epochs=8)
    float_acc = accuracy(model, test_data)
    assert float_acc > 0.93

    config = [{"quant_types": ["weight", "input"], "quant_bits": 8, "op_types": ["Conv2d", "Linear"]},
              {"quant_types": ["output"], "quant_bits": 8, "op_types": ["ReLU"]}]
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    quantizer = QAT_Quantizer(model, config, optimizer, dummy_input=torch.zeros(1, 1, 8, 8))
    quantizer.compress()
    assert quantizer.conv_bn_patterns == {"conv1": "bn1"}
    train(model, optimizer, train_data, epochs=2)
    qat_acc = accuracy(model, test_data)
    assert qat_acc >= float_acc - 0.02, (float_acc, qat_acc)
    with torch.no_grad():
        simulated = model(test_data[0])

    calibration = quantizer.export_model(str(tmp_path / "model.pth"), str(tmp_path / "calibration.pth"))
    assert set(calibration) == {"conv1", "conv2", "fc1", "relu1", "relu2"}
    assert calibration["relu2"]["tracked_min_output"] == 0.0 and calibration["relu2"]["tracked_max_output"] > 0
    assert calibration["conv2"]["tracked_min_input"] == 0.0  # fed by ReLU
    # the exported float model (quantized weights, BN back in place) keeps the weight quantization;
    # it differs from the simulation only by the activation quantization it no longer does
    with torch.no_grad():
        exported = model(test_data[0])
    assert isinstance(model.bn1, nn.BatchNorm2d)
    assert (exported.argmax(1) == simulated.argmax(1)).float().mean() > 0.97
    assert all(row.unique().numel() <= 256 for row in model.conv2.weight.detach())
