"""``nnictl ss_gen``: write the search space that a trial's annotations declare."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import NnictlError


def ss_gen(args) -> int:
    """Write the search space of the annotations under ``--trial_dir`` to ``--file`` as JSON.

    Keys are ``<module>/<name>/<function>`` (``mnist/batch_size/choice``), as NNI v2.5 names them
    and as the converted trial code looks them up (see :mod:`nni.tools.annotation`).
    """
    trial_dir = Path(args.trial_dir)
    if not trial_dir.is_dir():
        raise NnictlError(f"--trial_dir: not a folder: {trial_dir}")
    from nni.tools.annotation import generate_search_space

    space = generate_search_space(str(trial_dir))
    if not space:
        raise NnictlError(f"--trial_dir: no search space annotation (@nni.variable, @nni.function_choice or "
                          f"@nni.mutable_layers) found in the Python files of {trial_dir} "
                          f"(trial command: {args.trial_command})")
    Path(args.file).write_text(json.dumps(space, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"Search space with {len(space)} parameters written to {args.file}")
    return 0
