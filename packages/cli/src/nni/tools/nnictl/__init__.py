"""``nnictl``: the command-line tool that creates, watches and controls NNI experiments."""
