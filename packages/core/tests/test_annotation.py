import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nni.smartparam as smartparam
from nni.common.hpo_utils import deformat_parameters, format_search_space, validate_search_space
from nni.tools.annotation import convert_source, expand_annotations, generate_search_space
from nni.tools.annotation.parsing import parse_module

TRIAL = Path(__file__).parent / 'annotation_trial'

EXPECTED_SPACE = {
    'helpers.model/self.width/choice': {'_type': 'choice', '_value': [32, 64, 128]},
    'main/learning_rate/choice': {'_type': 'choice', '_value': [0.1, 0.01, 0.001]},
    'main/activation/choice': {'_type': 'choice', '_value': ['relu', 'tanh']},
    'main/layers/randint': {'_type': 'randint', '_value': [2, 5]},
    'main/dropout/uniform': {'_type': 'uniform', '_value': [0.1, 0.5]},
    'main/epochs/quniform': {'_type': 'quniform', '_value': [1, 10, 1]},
    'main/weight_decay/loguniform': {'_type': 'loguniform', '_value': [1e-05, 0.1]},
    'main/batch_size/qloguniform': {'_type': 'qloguniform', '_value': [16, 256, 16]},
    'main/shift/normal': {'_type': 'normal', '_value': [0, 1]},
    'main/qshift/qnormal': {'_type': 'qnormal', '_value': [0, 1, 0.5]},
    'main/scale/lognormal': {'_type': 'lognormal', '_value': [0, 1]},
    'main/qscale/qlognormal': {'_type': 'qlognormal', '_value': [0, 1, 1]},
    'main/mixed/choice': {'_type': 'choice', '_value': [
        {'_name': 'nni.uniform(0, 1)', 'value': {'_type': 'uniform', '_value': [0, 1]}}, 7]},
    'main/max_pool/function_choice': {'_type': 'choice', '_value': ['max_pool(values, 2)', 'avg_pool(values, 2)']},
    # no name=: v2.5 names it by the annotation's line
    'main/__line54/function_choice': {'_type': 'choice', '_value': ['max_pool(values, 3)', 'avg_pool(values, 3)']},
}

DEFAULTS = {'accuracy': 0.6, 'activation': 'relu', 'batch_size': 32, 'dropout': 0.5, 'epochs': 2, 'layers': 3,
            'learning_rate': 0.1, 'mixed': 7, 'pooled': 30.0, 'pooled3': 3.0, 'qscale': 1.0, 'qshift': 0.5, 'scale': 1.0,
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
    assert ("learning_rate = nni.choice({0.1: 0.1, 0.01: 0.01, 0.001: 0.001}, name='learning_rate', "
            "key='main/learning_rate/choice', default=(0.1))" in converted)
    assert "    nni.get_next_parameter()\n" in converted
    assert "nni.training_update(tf=None, session=model)" in converted
    assert "nni.report_final_result(accuracy)" in converted
    assert converted.splitlines()[1] == 'from __future__ import annotations; import nni.smartparam'
    model = (dst / 'helpers' / 'model.py').read_text()
    assert ("self.width = nni.choice({32: 32, 64: 64, 128: 128}, name='self.width', "
            "key='helpers.model/self.width/choice', default=(32))") in model
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
        ('helpers.model/self.width/choice',): 2, ('main/learning_rate/choice',): 1, ('main/activation/choice',): 1,
        ('main/layers/randint',): 2, ('main/dropout/uniform',): 0.25, ('main/epochs/quniform',): 3.2,
        ('main/weight_decay/loguniform',): math.log(1e-3), ('main/batch_size/qloguniform',): math.log(70),
        ('main/shift/normal',): -1.5, ('main/qshift/qnormal',): 0.8, ('main/scale/lognormal',): 0.0,
        ('main/qscale/qlognormal',): math.log(3.2), ('main/mixed/choice',): 0, ('main/mixed/choice', 0, 'value'): 0.75,
        ('main/max_pool/function_choice',): 1, ('main/__line54/function_choice',): 1,
    }
    parameters = deformat_parameters(internal, space)
    assert parameters['main/mixed/choice'] == {'_name': 'nni.uniform(0, 1)', 'value': 0.75}
    assert parameters['main/__line54/function_choice'] == 'avg_pool(values, 3)'
    sys_dir = tmp_path / 'trial'
    sys_dir.mkdir()
    record = {'parameter_id': 0, 'parameter_source': 'algorithm', 'parameters': parameters, 'parameter_index': 0}
    (sys_dir / 'parameter.cfg').write_text(json.dumps(record) + '\n')
    env = _clean_env()
    env.update(NNI_PLATFORM='local', NNI_SYS_DIR=str(sys_dir), NNI_OUTPUT_DIR=str(sys_dir), NNI_EXP_ID='exp',
               NNI_TRIAL_JOB_ID='abcde', NNI_TRIAL_SEQ_ID='0')
    values, _ = _run(dst, env)
    assert values == {'accuracy': 0.7, 'activation': 'tanh', 'batch_size': 64.0, 'dropout': 0.25, 'epochs': 3.0,
                      'layers': 4, 'learning_rate': 0.01, 'mixed': 0.75, 'pooled': 20.0, 'pooled3': 2.0, 'qscale': 3.0,
                      'qshift': 1.0, 'scale': 1.0, 'shift': -1.5, 'weight_decay': pytest.approx(1e-3), 'width': 128}
    records = decode_metric_records((sys_dir / '.nni' / 'metrics').read_bytes())
    assert [r['type'] for r in records] == ['PERIODICAL'] * 3 + ['FINAL']


def test_files_without_annotations_are_copied_unchanged(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'trial.py').write_text('"""@nni.report_final_result(1)"""\n')
    (src / 'py2.py').write_text('print "not python 3"\n')
    (src / 'ok.py').write_text('x = 1  # @nni.variable in a comment\n')
    (src / 'run.sh').write_text('#!/bin/sh\necho hi\n')
    os.chmod(src / 'run.sh', 0o755)
    (src / 'out').mkdir()
    # the destination inside the source is not copied into itself
    assert expand_annotations(src, src / 'out') == str((src / 'out').resolve())
    assert sorted(p.name for p in (src / 'out').iterdir()) == ['ok.py', 'py2.py', 'run.sh', 'trial.py']
    for name in ('py2.py', 'ok.py', 'run.sh'):
        assert (src / 'out' / name).read_bytes() == (src / name).read_bytes()
    assert os.access(src / 'out' / 'run.sh', os.X_OK)
    assert generate_search_space(src) == {}


def test_folder_without_annotations_is_used_as_it_is(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'py2.py').write_text('print "not python 3"\n')
    (src / 'ok.py').write_text('x = 1  # @nni.variable in a comment\n')
    assert expand_annotations(src, tmp_path / 'out') == str(src.resolve())
    assert not (tmp_path / 'out').exists()
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
        "y = relu(nni.function_choice({'conv(x, 3)': lambda: conv(x, 3), 'pool(x)': lambda: pool(x)}, name='conv', "
        "key='net/conv/function_choice', default=lambda: (conv(x, 3)))) + 1")


@pytest.mark.parametrize('source, message', [
    ("'''@nni.variable(nni.choice(1, 2), name=x)'''\ny = 1\n",
     'a.py:1: @nni.variable(name=x) must be followed by an assignment to x'),
    ("'''@nni.variable(nni.choice(1, 2), name=x)'''\n",
     'a.py:1: @nni.variable(name=x) must be followed by an assignment to x'),
    ("x = 0\n'''@nni.variable(nni.gaussian(1, 2), name=x)'''\nx = 1\n",
     "a.py:2: @nni.variable needs a sampling function nni.<type>(...) with type one of choice, randint"),
    ("'''@nni.variable(nni.uniform(2, 1), name=x)'''\nx = 1\n",
     "a.py:1: search space 'a/x/uniform': uniform low must be <= high, got low=2 high=1"),
    ("'''@nni.variable(nni.uniform(lo, 1), name=x)'''\nx = 1\n",
     "a.py:1: arguments of nni.uniform must be literal numbers, got 'lo'"),
    ("'''@nni.variable(nni.quniform(0, 1), name=x)'''\nx = 1\n",
     'a.py:1: nni.quniform takes 3 arguments, got 2'),
    ("'''@nni.variable(nni.randint(0, 2.5), name=x)'''\nx = 1\n",
     "a.py:1: search space 'a/x/randint': randint upper must be an integer, got 2.5"),
    ("'''@nni.variable(nni.choice(), name=x)'''\nx = 1\n",
     'a.py:1: nni.choice needs at least one option'),
    ("'''@nni.variable(nni.choice(1, 2))'''\nx = 1\n",
     'a.py:1: @nni.variable needs name=<the assigned variable>'),
    ("'''@nni.variable(nni.choice(1, 2), name='x')'''\nx = 1\n",
     "a.py:1: @nni.variable name must be an identifier, got \"'x'\""),
    ("'''@nni.variable(nni.choice(1, 2), name=x, other=1)'''\nx = 1\n",
     "a.py:1: @nni.variable got an unexpected keyword 'other'"),
    ("'''@nni.varible(nni.choice(1, 2), name=x)'''\nx = 1\n",
     "a.py:1: unknown annotation '@nni.varible'; supported: @nni.variable, @nni.function_choice, "
     "@nni.mutable_layers, @nni.get_next_parameter, @nni.report_intermediate_result, @nni.report_final_result, "
     "@nni.training_update"),
    ("'''@nni.variable(nni.choice(1, 2, name=x)'''\nx = 1\n",
     "a.py:1: invalid annotation"),
    ("'''@nni.report_final_result(a, b)'''\n",
     'a.py:1: @nni.report_final_result takes exactly one argument (the metric)'),
    ("'''@nni.get_next_parameter(1)'''\n", 'a.py:1: @nni.get_next_parameter takes no arguments'),
    ("'''@nni.variable(nni.choice(1, True), name=x)'''\nx = 1\n",
     "a.py:1: nni.choice options must be distinct, 'True' repeats an option"),
    ("'''@nni.function_choice(f(1), f(1), name=f)'''\ny = f(1)\n",
     'a.py:1: @nni.function_choice options must be distinct'),
    ("'''@nni.mutable_layers()'''\n", 'a.py:1: @nni.mutable_layers takes one dict per layer'),
    ("'''@nni.mutable_layers([conv(x)])'''\n", 'a.py:1: @nni.mutable_layers layer 0: must be a dict'),
    ("'''@nni.mutable_layers({layer_choice: [f()], layer_output: y, inputs: [x]})'''\n",
     "a.py:1: @nni.mutable_layers layer 0: unknown field 'inputs'; allowed: layer_choice, fixed_inputs"),
    ("'''@nni.mutable_layers({layer_choice: [f()], layer_output: y}, {layer_choice: [f()]})'''\n",
     'a.py:1: @nni.mutable_layers layer 1: layer_output is required'),
    ("'''@nni.mutable_layers({layer_choice: [], layer_output: y})'''\n",
     'a.py:1: @nni.mutable_layers layer 0: layer_choice must list at least one function call'),
    ("'''@nni.mutable_layers({layer_choice: [f], layer_output: y})'''\n",
     "a.py:1: @nni.mutable_layers layer 0: layer_choice items must be function calls such as conv(size=3), got 'f'"),
    ("'''@nni.mutable_layers({layer_choice: [f(1, k=2)], layer_output: y})'''\n",
     "a.py:1: @nni.mutable_layers layer 0: layer_choice call 'f(1, k=2)' must take positional arguments only"),
    ("'''@nni.mutable_layers({layer_choice: [f()], optional_inputs: x, layer_output: y})'''\n",
     "a.py:1: @nni.mutable_layers layer 0: optional_inputs must be a list [...], got 'x'"),
    ("'''@nni.mutable_layers({layer_choice: [f()], optional_inputs: [a], optional_input_size: 2, layer_output: y})'''\n",
     'a.py:1: @nni.mutable_layers layer 0: optional_input_size must be an integer or [min, max] between 0 and the '
     "number of optional_inputs (1), got '2'"),
    ("'''@nni.mutable_layers({layer_choice: [f()], layer_output: g()})'''\n",
     "a.py:1: @nni.mutable_layers layer 0: layer_output must be a variable, got 'g()'"),
    ("'''@nni.function_choice(f, g(1), name=f)'''\ny = f(1)\n",
     "a.py:1: @nni.function_choice options must be complete function calls such as max_pool(x, 2), got 'f'"),
    ("'''@nni.function_choice(f(1), g(1), name=f)'''\ny = h(1)\n",
     'a.py:1: @nni.function_choice(name=f) must be followed by a statement that calls f(...)'),
    ("'''@nni.variable(nni.choice(1, 2), name=x)'''\nx = 1\n'''@nni.variable(nni.choice(1, 3), name=x)'''\nx = 1\n",
     "a.py:3: parameter 'a/x/choice' is already annotated at line 1 with a different search space; use another name"),
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
    assert generate_search_space(tmp_path) == {'a/x/choice': {'_type': 'choice', '_value': [1, 2]}}


def test_every_form_expands_to_code_that_compiles():
    source = textwrap.dedent('''\
        import nni
        def train(h, x, y, z, sess, tf):
            """@nni.get_next_parameter()"""
            """@nni.variable(nni.choice(50, 250, 500), name=batch_size)"""
            batch_size = 128
            """@nni.variable(nni.choice(relu, 'x', nni.choice(1, 2)), name=act)"""
            act = relu
            """@nni.function_choice(max_pool(h, 2), avg_pool(h, 2), name=max_pool)"""
            y = max_pool(h, 2)
            """@nni.training_update(tf=tf, session=sess)"""
            """@nni.mutable_layers(
            {
                layer_choice: [conv(size=3), pool(3)],
                fixed_inputs: [x],
                optional_inputs: [y, z],
                optional_input_size: [0, 1],
                layer_output: out1
            },
            {layer_choice: [ident()], fixed_inputs: [out1], layer_output: out2})"""
            """@nni.report_intermediate_result(out2)"""
            """@nni.report_final_result(out2)"""
            return out2
        ''')
    converted = convert_source(source, 'mnist')
    compile(converted, 'mnist.py', 'exec')
    assert len(converted.splitlines()) == len(source.splitlines())
    lines = converted.splitlines()
    assert lines[0] == 'import nni.smartparam; import nni'
    assert lines[2] == '    nni.get_next_parameter()'
    assert lines[4] == ("    batch_size = nni.choice({50: 50, 250: 250, 500: 500}, name='batch_size', "
                        "key='mnist/batch_size/choice', default=(128))")
    assert lines[6] == ("    act = nni.choice({'relu': relu, 'x': 'x', 'nni.choice(1, 2)': nni.smartparam.nested_sample("
                        "'choice', {1: 1, 2: 2})}, name='act', key='mnist/act/choice', default=(relu))")
    assert lines[8] == ("    y = nni.function_choice({'max_pool(h, 2)': lambda: max_pool(h, 2), 'avg_pool(h, 2)': "
                        "lambda: avg_pool(h, 2)}, name='max_pool', key='mnist/max_pool/function_choice', "
                        "default=lambda: (max_pool(h, 2)))")
    assert lines[9] == '    nni.training_update(tf=tf, session=sess)'
    assert lines[10] == (
        "    out1 = nni.mutable_layer('mnist/mutable_block_11', 'mutable_layer_0', {'conv(size=3)': conv, "
        "'pool(3)': pool}, {'conv(size=3)': {'size': 3}, 'pool(3)': [3]}, [x], {'y': y, 'z': z}, [0, 1]); "
        "out2 = nni.mutable_layer('mnist/mutable_block_11', 'mutable_layer_1', {'ident()': ident}, "
        "{'ident()': []}, [out1], {}, 0")
    assert lines[18] == ')'
    assert lines[19:21] == ['    nni.report_intermediate_result(out2)', '    nni.report_final_result(out2)']
    assert parse_module(source, 'mnist', 'mnist.py').search_space == {
        'mnist/batch_size/choice': {'_type': 'choice', '_value': [50, 250, 500]},
        'mnist/act/choice': {'_type': 'choice', '_value': [
            'relu', 'x', {'_name': 'nni.choice(1, 2)', 'value': {'_type': 'choice', '_value': [1, 2]}}]},
        'mnist/max_pool/function_choice': {'_type': 'choice', '_value': ['max_pool(h, 2)', 'avg_pool(h, 2)']},
        'mnist/mutable_block_11': {'_type': 'mutable_layer', '_value': {
            'mutable_layer_0': {'layer_choice': ['conv(size=3)', 'pool(3)'], 'optional_inputs': ['y', 'z'],
                                'optional_input_size': [0, 1]},
            'mutable_layer_1': {'layer_choice': ['ident()'], 'optional_inputs': [], 'optional_input_size': 0}}},
    }


NAS_TRIAL = '''\
import json
import nni


def conv(inputs, size):
    return 'conv%d(%s)' % (size, '+'.join(inputs))


def pool(inputs, size=2):
    return 'pool%d(%s)' % (size, '+'.join(inputs))


def identity(inputs):
    return '+'.join(inputs)


def main():
    """@nni.get_next_parameter()"""
    x, y, z = 'x', 'y', 'z'
    """@nni.mutable_layers(
    {
        layer_choice: [conv(size=3), pool(5), identity()],
        fixed_inputs: [x],
        optional_inputs: [y, z],
        optional_input_size: [0, 2],
        layer_output: out1
    },
    {
        layer_choice: [identity(), pool()],
        fixed_inputs: [out1],
        optional_inputs: [x, z],
        optional_input_size: 1,
        layer_output: out2
    })"""
    """@nni.training_update(tf=None, session=None)"""
    print(json.dumps([out1, out2]))


main()
'''


def _trial_env(tmp_path, parameters):
    sys_dir = tmp_path / 'trial'
    sys_dir.mkdir()
    record = {'parameter_id': 0, 'parameter_source': 'algorithm', 'parameters': parameters, 'parameter_index': 0}
    (sys_dir / 'parameter.cfg').write_text(json.dumps(record) + '\n')
    env = _clean_env()
    env.update(NNI_PLATFORM='local', NNI_SYS_DIR=str(sys_dir), NNI_OUTPUT_DIR=str(sys_dir), NNI_EXP_ID='exp',
               NNI_TRIAL_JOB_ID='abcde', NNI_TRIAL_SEQ_ID='0')
    return env


def test_mutable_layers_space_and_expanded_trial_agree(tmp_path):
    code = tmp_path / 'code'
    code.mkdir()
    (code / 'main.py').write_text(NAS_TRIAL)
    space = generate_search_space(code)
    assert space == {'main/mutable_block_20': {'_type': 'mutable_layer', '_value': {
        'mutable_layer_0': {'layer_choice': ['conv(size=3)', 'pool(5)', 'identity()'], 'optional_inputs': ['y', 'z'],
                            'optional_input_size': [0, 2]},
        'mutable_layer_1': {'layer_choice': ['identity()', 'pool()'], 'optional_inputs': ['x', 'z'],
                            'optional_input_size': 1}}}}
    dst = expand_annotations(code, tmp_path / 'converted')
    # standalone: the first layer choice on the fixed inputs and the first optional_input_size inputs
    values, _ = _run(dst, _clean_env())
    assert values == ['conv3(x)', 'conv3(x)+x']
    # what a NAS tuner sends for the block: a choice per layer, named by the space's source texts
    block = space['main/mutable_block_20']['_value']
    parameters = {'main/mutable_block_20': {
        'mutable_layer_0': {'chosen_layer': block['mutable_layer_0']['layer_choice'][1],
                            'chosen_inputs': block['mutable_layer_0']['optional_inputs'][::-1]},
        'mutable_layer_1': {'chosen_layer': block['mutable_layer_1']['layer_choice'][1], 'chosen_inputs': ['z']}}}
    values, _ = _run(dst, _trial_env(tmp_path, parameters))
    assert values == ['pool5(x+z+y)', 'pool2(pool5(x+z+y)+z)']


def test_mutable_layer_rejects_values_outside_the_space(tmp_path, received):
    funcs, args = {'f()': lambda inputs: inputs}, {'f()': []}
    received['m/b'] = {'mutable_layer_0': {'chosen_layer': 'g()', 'chosen_inputs': []}}
    with pytest.raises(ValueError, match=r"m/b/mutable_layer_0: chosen_layer 'g\(\)' is not one of \['f\(\)'\]"):
        smartparam.mutable_layer('m/b', 'mutable_layer_0', funcs, args, [1], {'y': 2}, 1)
    received['m/b'] = {'mutable_layer_0': {'chosen_layer': 'f()', 'chosen_inputs': ['y', 'y']}}
    with pytest.raises(ValueError, match=r'2 chosen_inputs, but optional_input_size is 1'):
        smartparam.mutable_layer('m/b', 'mutable_layer_0', funcs, args, [1], {'y': 2}, 1)
    received['m/b'] = {'mutable_layer_0': {'chosen_layer': 'f()', 'chosen_inputs': ['q']}}
    with pytest.raises(ValueError, match=r"chosen_inputs \['q'\] are not among the optional inputs \['y'\]"):
        smartparam.mutable_layer('m/b', 'mutable_layer_0', funcs, args, [1], {'y': 2}, 1)
    received['m/b'] = {'other': {}}
    with pytest.raises(ValueError, match='has no'):
        smartparam.mutable_layer('m/b', 'mutable_layer_0', funcs, args, [1], {'y': 2}, 1)
    received['m/b'] = {'mutable_layer_0': {'chosen_layer': 'f()', 'chosen_inputs': ['y']}}
    assert smartparam.mutable_layer('m/b', 'mutable_layer_0', funcs, args, [1], {'y': 2}, 1) == [1, 2]
    with pytest.raises(ValueError, match=r"mode must be 'classic_mode'"):
        smartparam.mutable_layer('m/b', 'mutable_layer_0', funcs, args, [1], {'y': 2}, 1, mode='enas_mode')
    for size in (True, [2, 1], [0], -1):
        with pytest.raises(ValueError, match=r'm/b/mutable_layer_0: optional_input_size must'):
            smartparam.mutable_layer('m/b', 'mutable_layer_0', funcs, args, [1], {'y': 2}, size)


def test_runtime_is_top_level_and_lazy(tmp_path):
    code = ('import sys, nni\n'
            'assert "nni.smartparam" not in sys.modules\n'
            'names = ["choice", "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal",\n'
            '         "lognormal", "qlognormal", "function_choice", "mutable_layer", "training_update"]\n'
            'import nni.smartparam\n'
            'assert all(getattr(nni, n) is getattr(nni.smartparam, n) for n in names)\n'
            'assert nni.training_update(1, tf=None, session=object()) is None\n'
            'print(nni.choice({1: "a", 2: "b"}, name="x", key="m/x/choice"), nni.uniform(0.1, 0.5, name="d"))\n')
    proc = subprocess.run([sys.executable, '-c', code], env=_clean_env(), capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ['a', '0.1']


# --- nni.smartparam at run time -------------------------------------------------------------

@pytest.fixture
def received(monkeypatch):
    import nni

    params = {}
    monkeypatch.setattr(nni, 'get_current_parameter', lambda tag=None: params, raising=False)
    return params


def test_smartparam_reads_received_values(received):
    received.update({'m/lr/choice': 0.01, 'm/act/choice': 'tanh', 'm/n/randint': 4, 'm/u/uniform': 0.3,
                     'm/mix/choice': {'_name': 'nni.choice(2, 3)', 'value': 3}, 'm/f/function_choice': 'g(1)',
                     'plain': 'b'})
    assert smartparam.choice({0.1: 0.1, 0.01: 0.01}, name='lr', key='m/lr/choice', default=0.1) == 0.01
    assert smartparam.choice({'relu': len, 'tanh': abs}, name='act', key='m/act/choice', default=len) is abs
    assert smartparam.randint(2, 5, name='n', key='m/n/randint', default=3) == 4
    assert smartparam.uniform(0, 1, name='u', key='m/u/uniform', default=0.5) == 0.3
    mix = smartparam.choice({'nni.uniform(0, 1)': smartparam.nested_sample('uniform', 0, 1),
                             'nni.choice(2, 3)': smartparam.nested_sample('choice', {2: 2, 3: 3})},
                            name='mix', key='m/mix/choice', default=0)
    assert mix == 3
    calls = []
    result = smartparam.function_choice({'f(1)': lambda: calls.append('f') or 'F', 'g(1)': lambda: calls.append('g') or 'G'},
                                        name='f', key='m/f/function_choice', default=lambda: 'D')
    assert (result, calls) == ('G', ['g'])
    # without key, the name is looked up; options may also be given one by one
    assert smartparam.choice('a', 'b', name='plain') == 'b'


def test_smartparam_rejects_unknown_choice(received):
    received['m/lr'] = 0.5
    with pytest.raises(ValueError, match=r"parameter 'm/lr': received 0.5, which is not one of \[0.1, 0.01\]"):
        smartparam.choice({0.1: 0.1, 0.01: 0.01}, name='lr', key='m/lr')
    received['m/b'] = 1
    with pytest.raises(ValueError, match='not one of'):
        smartparam.choice({True: True, False: False}, key='m/b')  # 1 is not True
    received['m/c'] = [1]
    with pytest.raises(ValueError, match='not one of'):
        smartparam.choice({1: 1}, key='m/c')
    with pytest.raises(ValueError, match='key .or name. must be a non-empty string'):
        smartparam.uniform(0, 1)


def test_smartparam_defaults_when_not_received(received):
    assert smartparam.choice({0.1: 0.1, 0.01: 0.01}, name='lr', key='m/lr', default=0.5) == 0.5
    assert smartparam.choice({0.1: 0.1, 0.01: 0.01}, key='m/lr') == 0.1
    assert smartparam.choice({'a': smartparam.nested_sample('normal', 3, 1), 5: 5}, key='m/x') == 3
    assert smartparam.choice({'a': smartparam.nested_sample('choice', {'p': 'q'}), 5: 5}, key='m/x') == 'q'
    assert smartparam.function_choice({'f()': lambda: 'F', 'g()': lambda: 'G'}, key='m/f') == 'F'
    assert smartparam.function_choice({'f()': lambda: 'F'}, key='m/f', default=lambda: 'D') == 'D'
    assert smartparam.randint(2, 5, key='m/n') == 2
    assert smartparam.quniform(1, 5, 1, key='m/q') == 1
    assert smartparam.qnormal(4, 1, 1, key='m/q') == 4
    assert smartparam.lognormal(0, 1, key='m/q') == 1.0
    assert smartparam.qlognormal(1, 1, 1, key='m/q') == pytest.approx(math.e)
