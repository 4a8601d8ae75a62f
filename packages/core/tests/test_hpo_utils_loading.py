import json
from pathlib import Path

import pytest

from nni.common.hpo_utils import load_search_space, validate_search_space

SPACE = {'学习率': {'_type': 'loguniform', '_value': [1e-05, 0.1]},
         'größe': {'_type': 'choice', '_value': ['klein', 'groß']}}


def test_json_file_keeps_unicode(tmp_path):
    path = tmp_path / 'search_space.json'
    path.write_text(json.dumps(SPACE, ensure_ascii=False), encoding='utf-8')
    loaded = load_search_space(path)
    assert loaded == SPACE and list(loaded) == list(SPACE)
    assert load_search_space(str(path)) == SPACE


def test_json_file_with_bom(tmp_path):
    path = tmp_path / 'space.json'
    path.write_bytes(b'\xef\xbb\xbf' + json.dumps(SPACE).encode())
    assert load_search_space(path) == SPACE


def test_yaml_file_reads_scientific_notation(tmp_path):
    path = tmp_path / 'space.yml'
    path.write_text('学习率:\n  _type: loguniform\n  _value: [1e-5, 0.1]\nbatch:\n  _type: choice\n'
                    '  _value: [16, 32, 1E+3, "1e-3"]\n', encoding='utf-8')
    loaded = load_search_space(path)
    assert loaded['学习率']['_value'] == [1e-5, 0.1]
    assert loaded['batch']['_value'] == [16, 32, 1000.0, '1e-3']
    assert validate_search_space(loaded, raise_exception=True)


def test_json_file_that_is_yaml_falls_back(tmp_path):
    path = tmp_path / 'space.json'
    path.write_text('x: {_type: uniform, _value: [0, 1]}\n')
    assert load_search_space(path) == {'x': {'_type': 'uniform', '_value': [0, 1]}}


def test_text_and_dict():
    assert load_search_space('{"x": {"_type": "choice", "_value": [1, 2]}}') == {'x': {'_type': 'choice', '_value': [1, 2]}}
    assert load_search_space('x:\n  _type: uniform\n  _value: [0, 1e-3]\n') == {'x': {'_type': 'uniform', '_value': [0, 0.001]}}
    space = {'x': {'_type': 'choice', '_value': [1]}}
    assert load_search_space(space) is space


def test_missing_file_named(tmp_path):
    path = tmp_path / 'nope.json'
    with pytest.raises(ValueError) as info:
        load_search_space(str(path))
    assert str(info.value) == f'search space file {str(path)!r}: file not found'


def test_directory_named(tmp_path):
    with pytest.raises(ValueError, match='is a directory'):
        load_search_space(Path(tmp_path))


def test_invalid_json_names_file_and_position(tmp_path):
    path = tmp_path / 'bad.json'
    path.write_text('{\n  "x": {"_type": "choice", "_value": [1, 2]\n}\n')
    with pytest.raises(ValueError) as info:
        load_search_space(path)
    message = str(info.value)
    assert message.startswith(f'search space file {str(path)!r}: invalid JSON at line ')
    assert '\n' not in message


def test_invalid_yaml_names_file(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('x: [1, 2\ny: 3\n')
    with pytest.raises(ValueError, match=r"search space file '.*bad\.yaml': invalid YAML at line \d+ column \d+"):
        load_search_space(path)


def test_duplicate_json_key(tmp_path):
    path = tmp_path / 'dup.json'
    path.write_text('{"x": {"_type": "choice", "_value": [1]}, "x": {"_type": "choice", "_value": [2]}}')
    with pytest.raises(ValueError, match=r"dup\.json': invalid search space: duplicate key 'x'"):
        load_search_space(path)


@pytest.mark.parametrize('content, kind', [('[1, 2]', 'list'), ('', 'empty'), ('"x"', 'str')])
def test_top_level_must_be_mapping(tmp_path, content, kind):
    path = tmp_path / 'space.json'
    path.write_text(content)
    with pytest.raises(ValueError, match=f'top level must be a mapping .* got {kind}$'):
        load_search_space(path)


def test_not_utf8(tmp_path):
    path = tmp_path / 'latin.json'
    path.write_bytes('{"größe": 1}'.encode('latin-1'))
    with pytest.raises(ValueError, match=r"latin\.json': not UTF-8 text"):
        load_search_space(path)
