"""Shell completion generated from the argparse tree, so it never drifts from the commands."""
from __future__ import annotations

import argparse

from .parser import build_parser


def _walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...], table: dict[str, list[str]]) -> None:
    words: list[str] = []
    for action in parser._actions:
        words.extend(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words.append(name)
                _walk(child, prefix + (name,), table)
    table[" ".join(prefix)] = sorted(set(words))


def completion_table() -> dict[str, list[str]]:
    """Map each command path (``''``, ``'experiment'``, ``'experiment export'``) to its words."""
    table: dict[str, list[str]] = {}
    _walk(build_parser(), (), table)
    return table


def bash_script() -> str:
    cases = "\n".join(f'        "{path}") words="{" ".join(words)}" ;;' for path, words in completion_table().items())
    return f"""# nnictl bash completion: eval "$(nnictl completion bash)"
_nnictl_complete() {{
    local cur path="" w words
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$w" in -*) ;; *) if [ -z "$path" ]; then cand="$w"; else cand="$path $w"; fi
            case "$cand" in
{chr(10).join(f'                "{p}") path="$cand" ;;' for p in completion_table() if p)}
            esac ;;
        esac
    done
    case "$path" in
{cases}
    esac
    COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}}
complete -F _nnictl_complete nnictl
"""


def print_script(args) -> int:
    script = bash_script()
    if args.shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    print(script)
    return 0
