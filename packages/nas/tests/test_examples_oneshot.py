"""examples/nas/oneshot: search (DARTS, SPOS) then retrain the exported architecture, as subprocesses at tiny size."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / 'examples' / 'nas' / 'oneshot'

pytest.importorskip('nni.nas_oneshot_benchmark')  # the example's space lives in nni-benchmarks
pytest.importorskip('sklearn')


@pytest.mark.slow  # two interpreters with torch per algorithm: ~10-40 s on a shared machine
@pytest.mark.parametrize('algo', ['darts', 'spos'])
def test_search_then_retrain(algo, tmp_path):
    arch_file = tmp_path / 'arch.json'
    run = dict(cwd=EXAMPLE, capture_output=True, text=True, timeout=300)
    r = subprocess.run([sys.executable, 'search.py', '--algo', algo, '--search-epochs', '1', '--samples', '160',
                        '--channels', '4', '--out', str(arch_file)], **run)
    assert r.returncode == 0, r.stderr
    found = json.loads(arch_file.read_text())
    arch = found['architecture']
    assert found['algo'] == algo and set(arch) == {'layer1', 'layer2', 'skip'}
    assert {arch['layer1'], arch['layer2']} <= {'conv3x3', 'conv5x5', 'maxpool', 'identity'} and arch['skip'] in ([0], [1])
    onnx = tmp_path / 'subnet.onnx'
    r = subprocess.run([sys.executable, 'retrain.py', str(arch_file), '--epochs', '1', '--onnx', str(onnx)], **run)
    assert r.returncode == 0, r.stderr
    accuracy = float(r.stdout.split('test accuracy ')[1].split()[0])
    assert 0.0 <= accuracy <= 1.0 and onnx.stat().st_size > 0
