"""Remote training service: runs trials on machines reached over SSH.

This release ships the SSH layer the service is built from: :class:`SshMachine` (connections,
commands, asyncio streams), :func:`preflight` and the code upload / download helpers.
"""
from .preflight import MachineInfo, preflight
from .ssh import ACCEPT_ENV, ChannelWriter, RemoteMachineError, SshError, SshMachine, known_hosts_path
from .upload import CodeDirError, collect_code_files, download, remove, upload_code

__all__ = [
    "ACCEPT_ENV", "ChannelWriter", "CodeDirError", "MachineInfo", "RemoteMachineError", "SshError", "SshMachine",
    "collect_code_files", "download", "known_hosts_path", "preflight", "remove", "upload_code",
]
