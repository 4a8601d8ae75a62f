import json
import os
import queue
import subprocess
import sys
import textwrap
import threading

import pytest

from nni.__main__ import encode_exp_params
from nni.assessor import AssessResult, Assessor
from nni.runtime import protocol
from nni.runtime.msg_dispatcher import MsgDispatcher
from nni.runtime.msg_dispatcher_base import MsgDispatcherBase
from nni.runtime.protocol import CommandType as C
from nni.testing import ReferenceRandomTuner, drive_dispatcher
from nni.testing.scenario import NaturalsTuner, SumModAssessor, expected_kill_step, trial_values
from nni.tuner import Tuner

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "k": {"_type": "choice", "_value": ["a", "b"]}}


def me(pid, tid, kind, seq, value):
    return (C.ReportMetricData, json.dumps({"parameter_id": pid, "trial_job_id": tid, "type": kind, "sequence": seq, "value": json.dumps(value)}))


def en(tid, event, pid):
    return (C.TrialEnd, json.dumps({"trial_job_id": tid, "event": event, "hyper_params": protocol.pack_parameter(pid, {})}))


class RecordingTuner(Tuner):
    def __init__(self, n=None, accept=None):
        self.calls = []
        self.n = n
        self.count = 0
        if accept is not None:
            self._accept_customized_trials(accept)

    def update_search_space(self, search_space):
        self.calls.append(("ss", search_space))

    def generate_parameters(self, parameter_id, **kwargs):
        from nni import NoMoreTrialError

        if self.n is not None and self.count >= self.n:
            raise NoMoreTrialError()
        self.count += 1
        return {"x": parameter_id}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.calls.append(("result", parameter_id, parameters, value, kwargs.get("customized")))

    def trial_end(self, parameter_id, success, **kwargs):
        self.calls.append(("end", parameter_id, success))

    def import_data(self, data):
        self.calls.append(("import", data))

    def _on_exit(self):
        self.calls.append(("exit",))


def test_initialize_generate_result_end():
    tuner = RecordingTuner()
    replies = drive_dispatcher(MsgDispatcher(tuner), [
        (C.Initialize, json.dumps(SPACE)), (C.RequestTrialJobs, "3"),
        me(1, "abcde", "FINAL", 0, {"default": 0.5, "x": 1}), en("abcde", "SUCCEEDED", 1),
        en("fghij", "FAILED", 2), (C.Ping, ""), (C.Terminate, ""),
    ])
    assert replies[0] == (C.Initialized, "")
    assert replies[1:] == [(C.NewTrialJob, protocol.pack_parameter(i, {"x": i})) for i in range(3)]
    assert json.loads(replies[1][1]) == {"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"x": 0}, "parameter_index": 0}
    assert tuner.calls == [("ss", SPACE), ("result", 1, {"x": 1}, {"default": 0.5, "x": 1}, False), ("end", 1, True), ("end", 2, False), ("exit",)]


def test_no_more_trials_sends_no_and_reuses_ids():
    tuner = RecordingTuner(n=2)
    replies = drive_dispatcher(MsgDispatcher(tuner), [(C.Initialize, "{}"), (C.RequestTrialJobs, "3"), (C.RequestTrialJobs, "1")])
    assert [c for c, _ in replies] == [C.Initialized, C.NewTrialJob, C.NewTrialJob, C.NoMoreTrialJobs, C.NoMoreTrialJobs]


def test_assessor_bad_sends_ki_once_and_histories_in_sequence_order():
    seen = []

    class Killer(Assessor):
        def assess_trial(self, trial_job_id, trial_history):
            seen.append((trial_job_id, list(trial_history)))
            return AssessResult.Bad if len(trial_history) >= 2 else AssessResult.Good

    replies = drive_dispatcher(MsgDispatcher(RecordingTuner(), Killer()), [
        (C.Initialize, "{}"), (C.RequestTrialJobs, "1"),
        me(0, "T1", "PERIODICAL", 0, 1.0), me(0, "T1", "PERIODICAL", 2, 3.0), me(0, "T1", "PERIODICAL", 1, 2.0),
        me(0, "T1", "PERIODICAL", 3, 4.0),
    ])
    assert seen == [("T1", [1.0]), ("T1", [1.0, 2.0, 3.0])]
    assert [d for c, d in replies if c is C.KillTrialJob] == ['"T1"']


def test_include_intermediate_results_for_early_stopped_trial():
    tuner = RecordingTuner()
    drive_dispatcher(MsgDispatcher(tuner, SumModAssessor(), include_intermediate_results=True), [
        (C.Initialize, "{}"), (C.RequestTrialJobs, "1"), me(0, "T1", "PERIODICAL", 0, 5), me(0, "T1", "PERIODICAL", 1, 7),
        en("T1", "EARLY_STOPPED", 0),
    ])
    assert ("result", 0, {"x": 0}, 7, False) in tuner.calls and tuner.calls[-1] == ("end", 0, False)


def test_without_include_intermediate_results_nothing_is_sent():
    tuner = RecordingTuner()
    drive_dispatcher(MsgDispatcher(tuner, SumModAssessor()), [
        (C.Initialize, "{}"), (C.RequestTrialJobs, "1"), me(0, "T1", "PERIODICAL", 0, 5), en("T1", "EARLY_STOPPED", 0)])
    assert not [c for c in tuner.calls if c[0] == "result"]


def test_second_final_and_unknown_ids_ignored():
    tuner = RecordingTuner()
    drive_dispatcher(MsgDispatcher(tuner), [(C.Initialize, "{}"), (C.RequestTrialJobs, "1"),
                                            me(0, "T", "FINAL", 0, 1), me(0, "T", "FINAL", 0, 2), me(99, "U", "FINAL", 0, 3)])
    assert [c for c in tuner.calls if c[0] == "result"] == [("result", 0, {"x": 0}, 1, False)]


def test_customized_trial_and_import_data():
    tuner = RecordingTuner(accept=True)
    replies = drive_dispatcher(MsgDispatcher(tuner), [
        (C.Initialize, "{}"),
        (C.ImportData, json.dumps([{"parameter": {"x": 1}, "value": "0.5", "parameter_id": 0}, {"parameter": {"x": 2}, "value": 0.7}])),
        (C.AddCustomizedTrialJob, json.dumps({"x": 42})), (C.RequestTrialJobs, "1"),
        me(1, "C1", "FINAL", 0, 0.9),
    ])
    assert ("import", [{"parameter": {"x": 1}, "value": 0.5, "parameter_id": 0}, {"parameter": {"x": 2}, "value": 0.7}]) in tuner.calls
    trs = [json.loads(d) for c, d in replies if c is C.NewTrialJob]
    assert trs[0] == {"parameter_id": 1, "parameter_source": "customized", "parameters": {"x": 42}, "parameter_index": 0}
    assert trs[1]["parameter_id"] == 2  # id 0 was used by imported data
    assert ("result", 1, {"x": 42}, 0.9, True) in tuner.calls
    opted_out = RecordingTuner(accept=False)
    drive_dispatcher(MsgDispatcher(opted_out), [(C.AddCustomizedTrialJob, "{}"), me(0, "C1", "FINAL", 0, 0.9)])
    assert not [c for c in opted_out.calls if c[0] == "result"]


def test_request_parameter_multiphase():
    tuner = RecordingTuner(n=1)
    replies = drive_dispatcher(MsgDispatcher(tuner), [
        (C.ReportMetricData, json.dumps({"parameter_id": None, "trial_job_id": "M", "type": "REQUEST_PARAMETER", "sequence": 0, "value": "", "parameter_index": 1})),
        (C.ReportMetricData, json.dumps({"parameter_id": None, "trial_job_id": "M", "type": "REQUEST_PARAMETER", "sequence": 0, "value": "", "parameter_index": 2})),
    ])
    assert [json.loads(d) for _, d in replies] == [
        {"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"x": 0}, "parameter_index": 1, "trial_job_id": "M"},
        {"parameter_id": None, "parameter_source": "algorithm", "parameters": None, "parameter_index": 2, "trial_job_id": "M"},
    ]
    assert all(c is C.SendTrialJobParameter for c, _ in replies)


def test_handler_error_sends_er_and_raises():
    class Broken(RecordingTuner):
        def generate_parameters(self, parameter_id, **kwargs):
            raise ZeroDivisionError("division by zero\nsecond line")

    with pytest.raises(ZeroDivisionError):
        drive_dispatcher(MsgDispatcher(Broken()), [(C.Initialize, "{}"), (C.RequestTrialJobs, "1")])
    replies = drive_dispatcher(MsgDispatcher(Broken()), [(C.Initialize, "{}"), (C.RequestTrialJobs, "1"), (C.Terminate, "")],
                               expect_error=True)
    assert replies[0] == (C.Initialized, "") and [c for c, _ in replies] == [C.Initialized, C.Error]
    first, blank, *trace = replies[1][1].splitlines()
    assert (first, blank) == ("ZeroDivisionError: division by zero second line", "")
    assert trace[0] == "Traceback (most recent call last):" and "in generate_parameters" in replies[1][1]
    assert trace[-2:] == ["ZeroDivisionError: division by zero", "second line"]


def test_docs_protocol_scenario_in_process():
    tuner = NaturalsTuner()
    dispatcher = MsgDispatcher(tuner, SumModAssessor())
    commands = [(C.Initialize, "{}"), (C.RequestTrialJobs, "8")]
    for pid in range(8):
        x = pid + 1
        tid = f"t{x}"
        kill_at = expected_kill_step(x)
        values = trial_values(x)[: kill_at or None]
        commands += [me(pid, tid, "PERIODICAL", i, v) for i, v in enumerate(values)]
        if kill_at is None:
            commands += [me(pid, tid, "FINAL", 0, values[-1]), en(tid, "SUCCEEDED", pid)]
        else:
            commands.append(en(tid, "EARLY_STOPPED", pid))
    replies = drive_dispatcher(dispatcher, commands)
    kills = [json.loads(d) for c, d in replies if c is C.KillTrialJob]
    assert kills == [f"t{x}" for x in range(1, 9) if expected_kill_step(x) is not None] == ["t1", "t2", "t3", "t5", "t7", "t8"]
    assert sorted(tuner.results) == [3, 5]  # x = 4 and 6 finish
    assert tuner.results[3] == 4**10


# --- the dispatcher process, driven over pipes ----------------------------------------------------

class DispatcherProcess:
    def __init__(self, params, tmp_path, extra_env=None):
        env = dict(os.environ, NNI_LOG_DIRECTORY=str(tmp_path / "log"))
        env.update(extra_env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "nni", "--exp_params", encode_exp_params(params)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
        self.frames = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            header = out.read(16)
            if len(header) < 16:
                self.frames.put(None)
                return
            command, length = protocol.decode_header(header)
            self.frames.put((command, out.read(length).decode("utf-8")))

    def send(self, command, data=""):
        self.proc.stdin.write(protocol.encode(command, data))
        self.proc.stdin.flush()

    def recv(self, timeout=15):
        return self.frames.get(timeout=timeout)

    def finish(self, timeout=15):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = self.proc.wait(timeout=timeout)
        return rc, self.proc.stderr.read().decode()


TUNER_REF = {"className": "nni.testing.reference_tuner.ReferenceRandomTuner", "classArgs": {"seed": 1}}


def test_process_full_cycle_with_custom_assessor(tmp_path):
    code = tmp_path / "algos"
    code.mkdir()
    (code / "my_assessor.py").write_text(textwrap.dedent("""
        from nni.assessor import Assessor, AssessResult
        class KillAtThree(Assessor):
            def __init__(self, limit):
                self.limit = limit
            def assess_trial(self, trial_job_id, trial_history):
                print("noise on stdout must not break the protocol")
                return AssessResult.Bad if len(trial_history) >= self.limit else AssessResult.Good
    """))
    params = {"tuner": TUNER_REF, "assessor": {"className": "my_assessor.KillAtThree", "codeDirectory": str(code), "classArgs": {"limit": 3}},
              "searchSpace": SPACE}
    d = DispatcherProcess(params, tmp_path)
    d.send(C.Initialize, json.dumps(SPACE))
    assert d.recv() == (C.Initialized, "")
    d.send(C.RequestTrialJobs, "3")
    trs = [d.recv() for _ in range(3)]
    assert all(c is C.NewTrialJob for c, _ in trs)
    first = json.loads(trs[0][1])
    assert first["parameter_source"] == "algorithm" and set(first["parameters"]) == {"x", "k"}
    for seq in range(3):
        d.send(*me(first["parameter_id"], "AAAAA", "PERIODICAL", seq, 0.1 * seq))
    assert d.recv() == (C.KillTrialJob, '"AAAAA"')
    d.send(*me(1, "BBBBB", "FINAL", 0, 0.5))
    d.send(*en("BBBBB", "SUCCEEDED", 1))
    d.send(C.Terminate)
    assert d.recv() is None
    rc, stderr = d.finish()
    assert rc == 0, stderr
    assert "noise on stdout" in stderr
    log = (tmp_path / "log" / "dispatcher.log").read_text()
    assert "INFO (nni.dispatcher/MainThread) START" in log


def test_process_algorithm_error_sends_er_and_exits_nonzero(tmp_path):
    code = tmp_path / "algos"
    code.mkdir()
    (code / "bad_tuner.py").write_text(textwrap.dedent("""
        from nni.tuner import Tuner
        class BadTuner(Tuner):
            def update_search_space(self, search_space):
                pass
            def generate_parameters(self, parameter_id, **kwargs):
                raise RuntimeError("cannot sample\\nat all")
            def receive_trial_result(self, *args, **kwargs):
                pass
    """))
    d = DispatcherProcess({"tuner": {"className": "BadTuner", "classFileName": "bad_tuner.py", "codeDir": str(code)}}, tmp_path)
    d.send(C.Initialize, "{}")
    assert d.recv() == (C.Initialized, "")
    d.send(C.RequestTrialJobs, "1")
    command, message = d.recv()
    assert command is C.Error and message.splitlines()[0] == "RuntimeError: cannot sample at all"
    assert 'bad_tuner.py", line 7, in generate_parameters' in message
    rc, _ = d.finish()
    assert rc == 1
    assert "Traceback" in (tmp_path / "log" / "dispatcher.log").read_text()


def test_process_constructor_error_like_docs(tmp_path):
    code = tmp_path / "algos"
    code.mkdir()
    (code / "needs_mode.py").write_text("from nni.tuner import Tuner\nclass T(Tuner):\n    def __init__(self, optimize_mode):\n        pass\n")
    d = DispatcherProcess({"tuner": {"className": "needs_mode.T", "codeDirectory": str(code), "classArgs": {}}}, tmp_path)
    command, message = d.recv()
    assert command is C.Error and "missing 1 required positional argument: 'optimize_mode'" in message
    assert d.finish()[0] == 1


def test_process_class_args_validation_error(tmp_path):
    params = {"tuner": {"className": "nni.testing.reference_tuner.ReferenceRandomTuner", "classArgs": {"optimize_mode": "best"}}}
    d = DispatcherProcess(params, tmp_path)
    assert d.recv() == (C.Error, "tuner.classArgs.optimize_mode must be one of 'maximize', 'minimize', got 'best'")
    assert d.finish()[0] == 1
    log = (tmp_path / "log" / "dispatcher.log").read_text()
    assert "Traceback" not in log


def test_process_unknown_builtin_name(tmp_path):
    d = DispatcherProcess({"tuner": {"name": "NoSuchTunerXyz"}}, tmp_path)
    command, message = d.recv()
    assert command is C.Error and "Unknown tuner 'NoSuchTunerXyz'" in message
    assert d.finish()[0] == 1


def test_process_command_fds(tmp_path):
    r_cmd, w_cmd = os.pipe()
    r_out, w_out = os.pipe()
    params = encode_exp_params({"tuner": TUNER_REF})
    proc = subprocess.Popen([sys.executable, "-m", "nni", "--exp_params", params, "--command_fds", f"{r_cmd},{w_out}"],
                            pass_fds=(r_cmd, w_out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(r_cmd)
    os.close(w_out)
    with os.fdopen(w_cmd, "wb") as cmd, os.fdopen(r_out, "rb") as out:
        cmd.write(protocol.encode(C.Initialize, json.dumps(SPACE)) + protocol.encode(C.Terminate, ""))
        cmd.flush()
        assert out.read() == b"ID00000000000000"
    assert proc.wait(timeout=15) == 0


def test_process_advisor(tmp_path):
    code = tmp_path / "algos"
    code.mkdir()
    (code / "my_advisor.py").write_text(textwrap.dedent("""
        import json
        from nni.runtime.msg_dispatcher_base import MsgDispatcherBase
        from nni.runtime.protocol import CommandType, pack_parameter
        from nni.utils import ClassArgsValidator

        class V(ClassArgsValidator):
            def validate_class_args(self, **kwargs):
                self.check(kwargs, required={"R": self.range("R", int, 1, 100)})

        class Adv(MsgDispatcherBase):
            class_args_validator = V
            def __init__(self, R):
                super().__init__()
                self.R = R
            def handle_initialize(self, data):
                self.send(CommandType.Initialized, "")
            def handle_request_trial_jobs(self, data):
                for i in range(data):
                    self.send(CommandType.NewTrialJob, pack_parameter(f"0_{i}", {"TRIAL_BUDGET": self.R}))
            def handle_update_search_space(self, data): pass
            def handle_import_data(self, data): pass
            def handle_add_customized_trial(self, data): pass
            def handle_report_metric_data(self, data): pass
            def handle_trial_end(self, data): pass
    """))
    spec = {"className": "my_advisor.Adv", "codeDirectory": str(code), "classArgs": {"R": 5}}
    d = DispatcherProcess({"advisor": spec}, tmp_path)
    d.send(C.Initialize, "{}")
    d.send(C.RequestTrialJobs, "1")
    d.send(C.Terminate)
    assert d.recv() == (C.Initialized, "")
    assert json.loads(d.recv()[1])["parameters"] == {"TRIAL_BUDGET": 5}
    assert d.finish()[0] == 0
    bad = DispatcherProcess({"advisor": dict(spec, classArgs={"R": 0})}, tmp_path)
    assert bad.recv() == (C.Error, "advisor.classArgs.R must be an int in [1, 100], got 0")
    assert bad.finish()[0] == 1
    both = DispatcherProcess({"advisor": spec, "tuner": TUNER_REF}, tmp_path)
    assert both.recv() == (C.Error, "advisor cannot be used together with tuner or assessor")
    assert both.finish()[0] == 1


def test_build_dispatcher_options(monkeypatch):
    from nni.__main__ import DispatcherConfigError, build_dispatcher, parse_exp_params

    monkeypatch.delenv("NNI_INCLUDE_INTERMEDIATE_RESULTS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert parse_exp_params('{"a": 1}') == {"a": 1} == parse_exp_params(encode_exp_params({"a": 1}))
    with pytest.raises(DispatcherConfigError, match="neither base64 nor JSON"):
        parse_exp_params("%%%")
    d = build_dispatcher({"tuner": dict(TUNER_REF, includeIntermediateResults=True), "tunerGpuIndices": [0, 2],
                          "assessor": {"className": "nni.testing.scenario.SumModAssessor", "classArgs": {"modulus": 7}}})
    assert d.include_intermediate_results and d.assessor.modulus == 7 and os.environ["CUDA_VISIBLE_DEVICES"] == "0,2"
    assert not build_dispatcher({"tuner": TUNER_REF}).include_intermediate_results
    with pytest.raises(ValueError, match=r"^assessor.classArgs.modulus must be an int in \[2, inf\], got 1$"):
        build_dispatcher({"tuner": TUNER_REF, "assessor": {"className": "nni.testing.scenario.SumModAssessor", "classArgs": {"modulus": 1}}})
    with pytest.raises(DispatcherConfigError, match="neither tuner nor advisor"):
        build_dispatcher({})


# ----- trials added by hand, failures that must not crash, advisor-only dispatchers -----

CUSTOM_RUN = [
    (C.Initialize, "{}"), (C.RequestTrialJobs, "1"), (C.AddCustomizedTrialJob, json.dumps({"x": 42})),
    me(0, "A0", "FINAL", 0, 0.1), en("A0", "SUCCEEDED", 0),
    me(1, "C1", "PERIODICAL", 0, 0.5), me(1, "C1", "FINAL", 0, 0.9), en("C1", "SUCCEEDED", 1),
]


def test_customized_trials_reach_only_a_tuner_that_opts_in():
    class V25Tuner(RecordingTuner):  # the v2.5 spelling: call it in __init__
        def __init__(self):
            super().__init__()
            self._accept_customized_trials()

    default = RecordingTuner()
    assert default.accept_customized_trials is False
    replies = drive_dispatcher(MsgDispatcher(default), CUSTOM_RUN)
    assert json.loads(replies[-1][1])["parameter_source"] == "customized"  # the trial itself still runs
    assert [c for c in default.calls if c[0] in ("result", "end")] == [("result", 0, {"x": 0}, 0.1, False), ("end", 0, True)]

    opted_in = V25Tuner()
    drive_dispatcher(MsgDispatcher(opted_in), CUSTOM_RUN)
    assert [c for c in opted_in.calls if c[0] in ("result", "end")] == [
        ("result", 0, {"x": 0}, 0.1, False), ("end", 0, True), ("result", 1, {"x": 42}, 0.9, True), ("end", 1, True)]
    opted_in._accept_customized_trials(False)
    assert opted_in.accept_customized_trials is False


def test_intermediate_result_without_trial_id_is_ignored():
    seen = []

    class Recording(Assessor):
        def assess_trial(self, trial_job_id, trial_history):
            seen.append((trial_job_id, list(trial_history)))
            return AssessResult.Good

    no_id = json.dumps({"parameter_id": 0, "type": "PERIODICAL", "sequence": 0, "value": "1"})
    no_id_request = json.dumps({"parameter_id": None, "type": "REQUEST_PARAMETER", "sequence": 0, "value": ""})
    replies = drive_dispatcher(MsgDispatcher(RecordingTuner(), Recording()), [
        (C.Initialize, "{}"), (C.RequestTrialJobs, "1"), (C.ReportMetricData, no_id), (C.ReportMetricData, no_id_request),
        me(0, "T", "PERIODICAL", 0, 2.0), (C.Terminate, ""),
    ])
    assert seen == [("T", [2.0])]
    assert C.Error not in [c for c, _ in replies]


class MinimalAdvisor(MsgDispatcherBase):
    """Implements only the four required handlers, like a small advisor written for v2.5."""

    def __init__(self):  # no super().__init__(), as some v2.5 advisors do
        self.seen = []
        self.stopping = False

    def handle_initialize(self, data):
        self.send(C.Initialized, "")

    def handle_request_trial_jobs(self, data):
        for i in range(int(data)):
            self.send(C.NewTrialJob, protocol.pack_parameter(i, {"i": i}))

    def handle_report_metric_data(self, data):
        self.seen.append(("metric", data["parameter_id"], data["value"]))

    def handle_trial_end(self, data):
        self.seen.append(("end", data["trial_job_id"]))


def test_advisor_only_dispatcher_handles_every_command():
    advisor = MinimalAdvisor()
    replies = drive_dispatcher(advisor, [
        (C.Initialize, "{}"), (C.RequestTrialJobs, "1"), (C.UpdateSearchSpace, json.dumps(SPACE)),
        (C.ImportData, json.dumps([{"parameter": {"i": 5}, "value": 1}])), (C.AddCustomizedTrialJob, json.dumps({"i": 9})),
        me("customized_0", "C", "PERIODICAL", 0, 1), me("customized_0", "C", "FINAL", 0, 2), en("C", "SUCCEEDED", "customized_0"),
        me(0, "A", "FINAL", 0, 3), en("A", "SUCCEEDED", 0),
        (C.ReportMetricData, json.dumps({"parameter_id": 0, "type": "PERIODICAL", "sequence": 0, "value": "1"})),
        (C.Ping, ""), (C.Terminate, ""),
    ])
    assert [c for c, _ in replies] == [C.Initialized, C.NewTrialJob, C.NewTrialJob]
    assert json.loads(replies[2][1]) == {"parameter_id": "customized_0", "parameter_source": "customized",
                                         "parameters": {"i": 9}, "parameter_index": 0}
    assert advisor.seen == [("metric", 0, 3), ("end", "A")]  # the hand-added trial is not passed on
    assert advisor.stopping


def test_error_report_of_the_process_has_the_traceback(tmp_path):
    code = tmp_path / "algos"
    code.mkdir()
    (code / "raising.py").write_text(textwrap.dedent("""
        from nni.tuner import Tuner
        class T(Tuner):
            def __init__(self):
                raise RuntimeError("no GPU for the tuner")
    """))
    d = DispatcherProcess({"tuner": {"className": "raising.T", "codeDirectory": str(code)}}, tmp_path)
    command, message = d.recv()
    assert command is C.Error and message.splitlines()[0] == "RuntimeError: no GPU for the tuner"
    assert "Traceback (most recent call last):" in message and 'raising.py", line 5, in __init__' in message
    assert d.finish()[0] == 1
    assert 'raising.py", line 5, in __init__' in (tmp_path / "log" / "dispatcher.log").read_text()
