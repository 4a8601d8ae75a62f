"""The whole ``nnictl`` command tree (argparse), as the NNI v2.5 reference lists it.

Handlers are named ``module:function`` inside this package and imported only when their
command runs, so ``nnictl --help`` and shell completion stay fast.
"""
from __future__ import annotations

import argparse
import importlib
from typing import Callable

_PKG = __name__.rpartition(".")[0]


def resolve_handler(spec: str) -> Callable[[argparse.Namespace], int | None]:
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(f"{_PKG}.{module}"), func)


def _cmd(sub, name: str, help_: str, handler: str | None, **kw) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_, **kw)
    p.set_defaults(handler=handler, level_parser=p)
    return p


def _id(p: argparse.ArgumentParser, required: bool = False) -> None:
    if required:
        p.add_argument("id", help="ID of the experiment")
    else:
        p.add_argument("id", nargs="?", help="ID of the experiment (default: the only running one)")


def _group(sub, name: str, help_: str) -> argparse._SubParsersAction:
    p = sub.add_parser(name, help=help_, description=help_)
    p.set_defaults(handler=None, level_parser=p)
    return p.add_subparsers(title="commands", metavar="COMMAND")


def _access_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0: every interface); the access token is always required there")
    p.add_argument("--no-token", dest="no_token", action="store_true",
                   help="serve without an access token (also NNI_NO_TOKEN=1), for old scripts; only with --host 127.0.0.1 / localhost / ::1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnictl", description="Control NNI experiments.")
    parser.add_argument("--version", "-v", action="store_true", help="print the versions of the installed nni distributions")
    parser.set_defaults(handler=None, level_parser=parser)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    # Manage an experiment.
    p = _cmd(sub, "create", "create and start a new experiment", "launcher:create")
    p.add_argument("--config", "-c", required=True, help="YAML configuration file of the experiment")
    p.add_argument("--port", "-p", type=int, default=8080, help="port of the REST server and web UI (default 8080)")
    p.add_argument("--debug", "-d", action="store_true", help="set debug mode")
    p.add_argument("--foreground", "-f", action="store_true", help="stay in the foreground and print the manager's log")
    p.add_argument("--url_prefix", "-u", help="URL prefix of the web UI and REST API")
    _access_options(p)
    for name, help_ in (("resume", "resume a stopped experiment"), ("view", "view a stopped experiment (read-only)")):
        p = _cmd(sub, name, help_, f"launcher:{name}")
        p.add_argument("id", nargs="?", help="ID of the experiment (may be left out with --experiment_dir)")
        p.add_argument("--port", "-p", type=int, default=8080, help="port of the REST server and web UI (default 8080)")
        p.add_argument("--debug", "-d", action="store_true", help="set debug mode")
        p.add_argument("--foreground", "-f", action="store_true", help="stay in the foreground and print the manager's log")
        p.add_argument("--experiment_dir", "-e", help="full path of the experiment folder, to use an experiment from another place")
        p.add_argument("--url_prefix", "-u", help="URL prefix of the web UI and REST API")
        _access_options(p)
    p = _cmd(sub, "stop", "stop experiments", "control:stop")
    _id(p)
    p.add_argument("--port", "-p", type=int, help="stop the experiment served on this port")
    p.add_argument("--all", "-a", action="store_true", help="stop every running experiment")

    upd = _group(sub, "update", "update a running experiment's search space, concurrency, duration or trial number")
    p = _cmd(upd, "searchspace", "update the search space", "control:update_searchspace")
    _id(p)
    p.add_argument("--filename", "-f", required=True, help="file of the new search space")
    p = _cmd(upd, "concurrency", "update trialConcurrency", "control:update_concurrency")
    _id(p)
    p.add_argument("--value", "-v", required=True, type=int, help="the new trial concurrency")
    p = _cmd(upd, "duration", "update maxExperimentDuration", "control:update_duration")
    _id(p)
    p.add_argument("--value", "-v", required=True, help="the new duration: a number with unit s, m, h or d, e.g. 2h")
    p = _cmd(upd, "trialnum", "update maxTrialNumber", "control:update_trialnum")
    _id(p)
    p.add_argument("--value", "-v", required=True, type=int, help="the new max trial number")

    trial = _group(sub, "trial", "list or kill trial jobs")
    p = _cmd(trial, "ls", "list trial jobs", "control:trial_ls")
    _id(p)
    p.add_argument("--head", type=int, help="list the N best finished trials by default metric")
    p.add_argument("--tail", type=int, help="list the N worst finished trials by default metric")
    p.add_argument("--table", "-t", action="store_true", help="print a table instead of the JSON list")
    p = _cmd(trial, "kill", "kill a trial job", "control:trial_kill")
    _id(p)
    p.add_argument("--trial_id", "-T", required=True, help="ID of the trial job to kill")

    p = _cmd(sub, "top", "monitor running experiments", "control:top")
    _id(p)
    p.add_argument("--time", "-t", type=float, default=3, help="refresh interval in seconds (default 3)")

    exp = _group(sub, "experiment", "show, list, delete, export, import, save and load experiments")
    for name, help_ in (("show", "show the experiment's information"), ("status", "show the experiment's status")):
        _id(_cmd(exp, name, help_, f"control:experiment_{name}"))
    p = _cmd(exp, "list", "list running experiments", "control:experiment_list")
    p.add_argument("--all", action="store_true", help="list every experiment, stopped ones too")
    p = _cmd(exp, "delete", "delete an experiment and its files", "control:experiment_delete")
    _id(p)
    p.add_argument("--all", action="store_true", help="delete every experiment that is not running")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p = _cmd(exp, "export", "export trials' parameters and results", "control:experiment_export")
    _id(p)
    p.add_argument("--filename", "-f", required=True, help="output file")
    p.add_argument("--type", required=True, choices=["json", "csv"], help="output format")
    p.add_argument("--intermediate", "-i", action="store_true", help="include intermediate results")
    p = _cmd(exp, "import", "import trial data into a running experiment", "control:experiment_import")
    _id(p)
    p.add_argument("--filename", "-f", required=True, help="JSON file of {parameter, value} records (or a CSV from 'experiment export --type csv')")
    p = _cmd(exp, "save", "pack an experiment into a file", "packing:experiment_save")
    _id(p, required=True)
    p.add_argument("--path", "-p", default=".", help="folder for the package (default: current folder)")
    p.add_argument("--saveCodeDir", "-s", action="store_true", help="include the trial code folder")
    p = _cmd(exp, "load", "unpack an experiment saved with 'experiment save'", "packing:experiment_load")
    p.add_argument("--path", "-p", required=True, help="the package file")
    p.add_argument("--codeDir", "-c", help="where to put the experiment's code (required when the package holds code)")
    p.add_argument("--logDir", "-l", help="experiments root folder to load into (default ~/nni-experiments)")
    p.add_argument("--searchSpacePath", "-s", help="where to write the search space (default $codeDir/search_space.json)")

    plat = _group(sub, "platform", "manage training platforms")
    p = _cmd(plat, "clean", "clean up the disk of a training platform", "control:platform_clean")
    p.add_argument("--config", required=True, help="experiment YAML whose training service to clean")

    cfg = _group(sub, "config", "show configuration")
    _id(_cmd(cfg, "show", "show the configuration of the current experiment", "control:config_show"))

    log = _group(sub, "log", "show logs")
    for name, help_ in (("stdout", "show the manager's stdout and log (nnimanager.log)"),
                        ("stderr", "show the manager's stderr and the dispatcher's output and log (dispatcher.log)")):
        p = _cmd(log, name, help_, f"control:log_{name}", conflict_handler="resolve")
        _id(p)
        # The docs spell --head / --tail as -h / -t, NNI's code as -H / -T: both work; --help still gives help.
        p.add_argument("--head", "-h", "-H", type=int, help="show the first N lines of each file")
        p.add_argument("--tail", "-t", "-T", type=int, help="show the last N lines of each file")
        p.add_argument("--path", "-p", action="store_true", help="show the paths of the log files")
    p = _cmd(log, "trial", "show the log paths of trials, or one trial's stdout and stderr", "control:log_trial",
             conflict_handler="resolve")
    _id(p)
    p.add_argument("--trial_id", "-T", help="ID of the trial whose stdout and stderr to show")
    p.add_argument("--head", "-h", "-H", type=int, help="show the first N lines of each file")
    p.add_argument("--tail", "-t", type=int, help="show the last N lines of each file")
    p.add_argument("--path", "-p", action="store_true", help="print only the paths")

    web = _group(sub, "webui", "web UI")
    _id(_cmd(web, "url", "print the web UI URLs", "control:webui_url"))

    tb = _group(sub, "tensorboard", "TensorBoard for trials")
    p = _cmd(tb, "start", "start TensorBoard for trials of an experiment", "control:tensorboard_start")
    _id(p)
    p.add_argument("--trial_id", "-T", action="append", help="trial to include (repeatable; default: all)")
    p.add_argument("--port", type=int, help="TensorBoard port wished for (the manager picks a free one)")
    p = _cmd(tb, "stop", "stop TensorBoard tasks of an experiment", "control:tensorboard_stop")
    _id(p)

    algo = _group(sub, "algo", "register, list and show algorithms")
    p = _cmd(algo, "register", "register a customized algorithm by a meta file", "algo:register")
    p.add_argument("--meta", "-m", required=True, help="meta YAML with algoType, builtinName, className, classArgsValidator")
    p = _cmd(algo, "unregister", "unregister a customized algorithm", "algo:unregister")
    p.add_argument("name", help="builtinName of the algorithm")
    p = _cmd(algo, "show", "show an algorithm's details", "algo:show")
    p.add_argument("name", help="builtinName of the algorithm")
    _cmd(algo, "list", "list tuners, assessors and advisors", "algo:list_algorithms")

    p = _cmd(sub, "ss_gen", "generate a search space from annotated trial code", "ss_gen:ss_gen")
    p.add_argument("--trial_command", required=True, help="the command of the trial, e.g. 'python3 mnist.py'")
    p.add_argument("--trial_dir", default="./", help="folder of the trial code (default ./)")
    p.add_argument("--file", default="nni_auto_gen_search_space.json", help="output file")

    p = _cmd(sub, "completion", "print a shell completion script (bash or zsh)", "completion:print_script")
    p.add_argument("shell", nargs="?", default="bash", choices=["bash", "zsh"])

    return parser
