import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nni.smartparam as smartparam
from nni.common.hpo_utils import deformat_parameters, format_search_space, validate_search_space
from nni.tools.annotation import convert_source, expand_annotations, generate_search_space

TRIAL = Path(__file__).parent / 'annotation_trial'

EXPECTED_SPACE = {
    'helpers.model/self.width': {'_type': 'choice', '_value': [32, 64, 128]},
    'main/learning_rate': {'_type': 'choice', '_value': [0.1, 0.01, 0.001]},
    'main/activation': {'_type': 'choice', '_value': ['relu', 'tanh']},
    'main/layers': {'_type': 'randint', '_value': [2, 5]},
    'main/dropout': {'_type': 'uniform', '_value': [0.1, 0.5]},
    'main/epochs': {'_type': 'quniform', '_value': [1, 10, 1]},
    'main/weight_decay': {'_type': 'loguniform', '_value': [1e-05, 0.1]},
    'main/batch_size': {'_type': 'qloguniform', '_value': [16, 256, 16]},
    'main/shift': {'_type': 'normal', '_value': [0, 1]},
    'main/qshift': {'_type': 'qnormal', '_value': [0, 1, 0.5]},
    'main/scale': {'_type': 'lognormal', '_value': [0, 1]},
    'main/qscale': {'_type': 'qlognormal', '_value': [0, 1, 1]},
    'main/mixed': {'_type': 'choice', '_value': [
        {'_name': 'nni.uniform(0, 1)', 'value': {'_type': 'uniform', '_value': [0, 1]}}, 7]},
    'main/max_pool': {'_type': 'choice', '_value': ['max_pool(values, 2)', 'avg_pool(values, 2)']},
}

DEFAULTS = {'accuracy': 0.6, 'activation': 'relu', 'batch_size': 32, 'dropout': 0.5, 'epochs': 2, 'layers': 3,
            'learning_rate': 0.1, 'mixed': 7, 'pooled': 30.0, 'qscale': 1.0, 'qshift': 0.5, 'scale': 1.0,
            'shift': 0.0, 'weight_decay': 0.0001, 'width': 32}


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith('NNI_') and k != 'MULTI_PHASE'}
    env['PYTHONDONTWRITEBYTECODE'] = '1'  # keep the fixture folder clean
    return env


def _run(directory, env):
    proc = subprocess.run([sys.executable, 'main.py'], cwd=directory, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


def test_generate_search_space_exact():
    space = generate_search_space(TRIAL)
    assert space == EXPECTED_SPACE
    assert list(space) == list(EXPECTED_SPACE)
    assert json.loads(json.dumps(space)) == EXPECTED_SPACE
    assert validate_search_space(space, raise_exception=True)


def test_expand_copies_folder(tmp_path):
    dst = tmp_path / 'converted'
    assert expand_annotations(TRIAL, dst, exp_id='exp', trial_id='trial') == str(dst.resolve())
    for unchanged in ('plain.py', 'data.txt', 'helpers/__init__.py'):
        assert (dst / unchanged).read_bytes() == (TRIAL / unchanged).read_bytes()
    original = (TRIAL / 'main.py').read_text()
    converted = (dst / 'main.py').read_text()
    # line numbers are kept, so tracebacks point at the user's lines
    assert len(converted.splitlines()) == len(original.splitlines())
    assert "'''@nni.variable(nni.choice(0.1, 0.01, 0.001), name=learning_rate)'''" in converted
    assert ("learning_rate = nni.smartparam.choice(0.1, 0.01, 0.001, name='main/learning_rate', default=(0.1))"
            in converted)
    assert "nni.report_final_result(accuracy)" in converted
    assert converted.splitlines()[1] == 'from __future__ import annotations; import nni.smartparam'
    model = (dst / 'helpers' / 'model.py').read_text()
    assert "self.width = nni.smartparam.choice(32, 64, 128, name='helpers.model/self.width', default=(32))" in model
    assert not list(dst.rglob('__pycache__'))


def test_original_and_expanded_trial_run_standalone(tmp_path):
    dst = tmp_path / 'converted'
    expand_annotations(TRIAL, dst)
    original, _ = _run(TRIAL, _clean_env())
    expanded, proc = _run(dst, _clean_env())
    assert original == DEFAULTS
    assert expanded == DEFAULTS
    assert 'Final result: 0.6' in proc.stdout


def test_expanded_trial_receives_tuned_parameters(tmp_path):
    from nni.runtime.trial_metrics import decode_metric_records

    dst = tmp_path / 'converted'
    expand_annotations(TRIAL, dst)
    # the parameters a tuner working on the generated search space would send
    space = format_search_space(generate_search_space(TRIAL))
    internal = {
        ('helpers.model/self.width',): 2, ('main/learning_rate',): 1, ('main/activation',): 1, ('main/layers',): 2,
        ('main/dropout',): 0.25, ('main/epochs',): 3.2, ('main/weight_decay',): math.log(1e-3),
        ('main/batch_size',): math.log(70), ('main/shift',): -1.5, ('main/qshift',): 0.8, ('main/scale',): 0.0,
        ('main/qscale',): math.log(3.2), ('main/mixed',): 0, ('main/mixed', 0, 'value'): 0.75, ('main/max_pool',): 1,
    }
    parameters = deformat_parameters(internal, space)
    assert parameters['main/mixed'] == {'_name': 'nni.uniform(0, 1)', 'value': 0.75}
    sys_dir = tmp_path / 'trial'
    sys_dir.mkdir()
    record = {'parameter_id': 0, 'parameter_source': 'algorithm', 'parameters': parameters, 'parameter_index': 0}
    (sys_dir / 'parameter.cfg').write_text(json.dumps(record) + '\n')
    env = _clean_env()
    env.update(NNI_PLATFORM='local', NNI_SYS_DIR=str(sys_dir), NNI_OUTPUT_DIR=str(sys_dir), NNI_EXP_ID='exp',
               NNI_TRIAL_JOB_ID='abcde', NNI_TRIAL_SEQ_ID='0')
    values, _ = _run(dst, env)
    assert values == {'accuracy': 0.7, 'activation': 'tanh', 'batch_size': 64.0, 'dropout': 0.25, 'epochs': 3.0,
                      'layers': 4, 'learning_rate': 0.01, 'mixed': 0.75, 'pooled': 20.0, 'qscale': 3.0, 'qshift': 1.0,
                      'scale': 1.0, 'shift': -1.5, 'weight_decay': pytest.approx(1e-3), 'width': 128}
    records = decode_metric_records((sys_dir / '.nni' / 'metrics').read_bytes())
    assert [r['type'] for r in records] == ['PERIODICAL'] * 3 + ['FINAL']


def test_files_without_annotations_are_unchanged(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'py2.py').write_text('print "not python 3"\n')
    (src / 'ok.py').write_text('x = 1  # @nni.variable in a comment\n')
    (src / 'run.sh').write_text('#!/bin/sh\necho hi\n')
    os.chmod(src / 'run.sh', 0o755)
    (src / 'out').mkdir()
    expand_annotations(src, src / 'out')  # the destination inside the source is not copied into itself
    assert sorted(p.name for p in (src / 'out').iterdir()) == ['ok.py', 'py2.py', 'run.sh']
    for name in ('py2.py', 'ok.py', 'run.sh'):
        assert (src / 'out' / name).read_bytes() == (src / name).read_bytes()
    assert os.access(src / 'out' / 'run.sh', os.X_OK)
    assert generate_search_space(src) == {}


def test_import_added_before_first_statement():
    assert convert_source('x = 1\n"""@nni.report_final_result(x)"""\n', 'm') == (
        'import nni.smartparam; x = 1\nnni.report_final_result(x)\n')
    # a module starting with a compound statement gets an import line
    assert convert_source('def f():\n    """@nni.report_final_result(1)"""\n', 'm') == (
        'import nni.smartparam\ndef f():\n    nni.report_final_result(1)\n')


def test_function_choice_replaces_the_named_call_only():
    source = ('"""@nni.function_choice(conv(x, 3), pool(x), name=conv)"""\n'
              'y = relu(conv(x, 3)) + 1\n')
    converted = convert_source(source, 'net')
    assert converted.splitlines()[1] == (
        "y = relu(nni.smartparam.function_choice(lambda: conv(x, 3), lambda: pool(x), name='net/conv', "
        "keys=['conv(x, 3)', 'pool(x)'], default=lambda: (conv(x, 3)))) + 1")


@pytest.mark.parametrize('source, message', [
    ("'''@nni.variable(nni.choice(1, 2), name=x)'''\ny = 1\n",
     'a.py:1: @nni.variable(name=x) must be followed by an assignment to x'),
    ("'''@nni.variable(nni.choice(1, 2), name=x)'''\n",
     'a.py:1: @nni.variable(name=x) must be followed by an assignment to x'),
    ("x = 0\n'''@nni.variable(nni.gaussian(1, 2), name=x)'''\nx = 1\n",
     "a.py:2: @nni.variable needs a sampling function nni.<type>(...) with type one of choice, randint"),
    ("'''@nni.variable(nni.uniform(2, 1), name=x)'''\nx = 1\n",
     "a.py:1: search space 'a/x': uniform low must be < high, got low=2 high=1"),
    ("'''@nni.variable(nni.uniform(lo, 1), name=x)'''\nx = 1\n",
     "a.py:1: arguments of nni.uniform must be literal numbers, got 'lo'"),
    ("'''@nni.variable(nni.quniform(0, 1), name=x)'''\nx = 1\n",
     'a.py:1: nni.quniform takes 3 arguments, got 2'),
    ("'''@nni.variable(nni.randint(0, 2.5), name=x)'''\nx = 1\n",
     "a.py:1: search space 'a/x': randint upper must be an integer, got 2.5"),
    ("'''@nni.variable(nni.choice(), name=x)'''\nx = 1\n",
     'a.py:1: nni.choice needs at least one option'),
    ("'''@nni.variable(nni.choice(1, 2))'''\nx = 1\n",
     'a.py:1: @nni.variable needs name=<the assigned variable>'),
    ("'''@nni.variable(nni.choice(1, 2), name='x')'''\nx = 1\n",
     "a.py:1: @nni.variable name must be an identifier, got \"'x'\""),
    ("'''@nni.variable(nni.choice(1, 2), name=x, other=1)'''\nx = 1\n",
     "a.py:1: @nni.variable got an unexpected keyword 'other'"),
    ("'''@nni.varible(nni.choice(1, 2), name=x)'''\nx = 1\n",
     "a.py:1: unknown annotation '@nni.varible'; supported: @nni.variable, @nni.function_choice"),
    ("'''@nni.variable(nni.choice(1, 2, name=x)'''\nx = 1\n",
     "a.py:1: invalid annotation"),
    ("'''@nni.report_final_result(a, b)'''\n",
     'a.py:1: @nni.report_final_result takes exactly one argument (the metric)'),
    ("'''@nni.function_choice(f, g(1), name=f)'''\ny = f(1)\n",
     "a.py:1: @nni.function_choice options must be complete function calls such as max_pool(x, 2), got 'f'"),
    ("'''@nni.function_choice(f(1), g(1), name=f)'''\ny = h(1)\n",
     'a.py:1: @nni.function_choice(name=f) must be followed by a statement that calls f(...)'),
    ("'''@nni.variable(nni.choice(1, 2), name=x)'''\nx = 1\n'''@nni.variable(nni.choice(1, 3), name=x)'''\nx = 1\n",
     "a.py:3: parameter 'a/x' is already annotated at line 1 with a different search space; use another name"),
    ("'''@nni.report_final_result(1)'''\nx = = 1\n",
     'a.py:2: cannot parse Python source'),
])
def test_annotation_errors(tmp_path, source, message):
    (tmp_path / 'a.py').write_text(source)
    for action in (lambda: generate_search_space(tmp_path), lambda: expand_annotations(tmp_path, tmp_path / 'out')):
        with pytest.raises(ValueError) as info:
            action()
        assert str(info.value).startswith(message)
        assert '\n' not in str(info.value)


def test_same_annotation_twice_shares_the_parameter(tmp_path):
    (tmp_path / 'a.py').write_text("if True:\n    '''@nni.variable(nni.choice(1, 2), name=x)'''\n    x = 1\n"
                                   "else:\n    '''@nni.variable(nni.choice(1, 2), name=x)'''\n    x = 2\n")
    assert generate_search_space(tmp_path) == {'a/x': {'_type': 'choice', '_value': [1, 2]}}


# --- nni.smartparam at run time -------------------------------------------------------------

@pytest.fixture
def received(monkeypatch):
    import nni

    params = {}
    monkeypatch.setattr(nni, 'get_current_parameter', lambda tag=None: params, raising=False)
    return params


def test_smartparam_reads_received_values(received):
    received.update({'m/lr': 0.01, 'm/act': 'tanh', 'm/n': 4, 'm/u': 0.3,
                     'm/mix': {'_name': 'nni.choice(2, 3)', 'value': 3}, 'm/f': 'g(1)'})
    assert smartparam.choice(0.1, 0.01, name='m/lr', default=0.1) == 0.01
    assert smartparam.choice(len, abs, keys=['relu', 'tanh'], name='m/act', default=len) is abs
    assert smartparam.randint(2, 5, name='m/n', default=3) == 4
    assert smartparam.uniform(0, 1, name='m/u', default=0.5) == 0.3
    mix = smartparam.choice(smartparam.nested_sample('uniform', 0, 1), smartparam.nested_sample('choice', 2, 3),
                            keys=['nni.uniform(0, 1)', 'nni.choice(2, 3)'], name='m/mix', default=0)
    assert mix == 3
    calls = []
    result = smartparam.function_choice(lambda: calls.append('f') or 'F', lambda: calls.append('g') or 'G',
                                        name='m/f', keys=['f(1)', 'g(1)'], default=lambda: 'D')
    assert (result, calls) == ('G', ['g'])


def test_smartparam_rejects_unknown_choice(received):
    received['m/lr'] = 0.5
    with pytest.raises(ValueError, match=r"parameter 'm/lr': received 0.5, which is not one of \[0.1, 0.01\]"):
        smartparam.choice(0.1, 0.01, name='m/lr')
    received['m/b'] = 1
    with pytest.raises(ValueError, match='not one of'):
        smartparam.choice(True, False, name='m/b')  # 1 is not True


def test_smartparam_defaults_when_not_received(received):
    assert smartparam.choice(0.1, 0.01, name='m/lr', default=0.5) == 0.5
    assert smartparam.choice(0.1, 0.01, name='m/lr') == 0.1
    assert smartparam.choice(smartparam.nested_sample('normal', 3, 1), 5, keys=['a', 5], name='m/x') == 3
    assert smartparam.function_choice(lambda: 'F', lambda: 'G', name='m/f') == 'F'
    assert smartparam.function_choice(lambda: 'F', name='m/f', default=lambda: 'D') == 'D'
    assert smartparam.randint(2, 5, name='m/n') == 2
    assert smartparam.quniform(1, 5, 1, name='m/q') == 1
    assert smartparam.qnormal(4, 1, 1, name='m/q') == 4
    assert smartparam.lognormal(0, 1, name='m/q') == 1.0
    assert smartparam.qlognormal(1, 1, 1, name='m/q') == pytest.approx(math.e)
