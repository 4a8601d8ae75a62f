"""What goes to sbatch and what comes back from squeue / scontrol (no cluster needed)."""
from __future__ import annotations

import asyncio
import subprocess

from nni.training_services.slurm.commands import (
    SlurmCommands,
    batch_script,
    format_time_limit,
    parse_scontrol_job,
    parse_squeue,
    sbatch_options,
    slurm_unavailable_reason,
)


def test_time_limit_format():
    assert format_time_limit(5400) == "0-01:30:00"
    assert format_time_limit(90061) == "1-01:01:01"
    assert format_time_limit(0.2) == "0-00:00:01"


def test_sbatch_options_carry_every_resource_field():
    opts = sbatch_options({"partition": "gpu", "account": "proj", "qos": "high", "timeLimit": 600, "gpusPerTrial": 2,
                           "cpusPerTrial": 4, "memoryPerTrial": 2048, "sbatchArgs": ["--constraint=v100"]})
    assert opts == ["--nodes=1", "--ntasks=1", "--cpus-per-task=4", "--partition=gpu", "--account=proj", "--qos=high",
                    "--time=0-00:10:00", "--gres=gpu:2", "--mem=2048M", "--constraint=v100"]
    assert sbatch_options({}) == ["--nodes=1", "--ntasks=1", "--cpus-per-task=1"]


def test_batch_script_runs_setup_then_execs_the_runner(tmp_path):
    script = batch_script(["/usr/bin/python3", "-m", "runner", "--connect", "h:1", "--runner-id", "r1"], "/code dir",
                          setup_script="echo setting up\nexport X=1", python_path="/opt/venv/bin", comment="runner r1")
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash" and "cd '/code dir'" in lines and "export PATH=/opt/venv/bin:\"$PATH\"" in lines
    assert lines.index("echo setting up") < lines.index("exec /usr/bin/python3 -m runner --connect h:1 --runner-id r1")
    # run it with bash: a failing setup line stops the script before the runner
    failing = batch_script(["echo", "runner-started"], str(tmp_path), setup_script="echo broken >&2; false")
    out = subprocess.run(["bash", "-c", failing], capture_output=True, text=True)
    assert out.returncode == 1 and "runner-started" not in out.stdout and "broken" in out.stderr
    ok = subprocess.run(["bash", "-c", batch_script(["echo", "runner-started"], str(tmp_path), setup_script="true")], capture_output=True, text=True)
    assert ok.stdout.strip() == "runner-started"


def test_parse_squeue_and_scontrol():
    jobs = parse_squeue("12|PENDING|Priority|\n13|RUNNING|None|node7\n\n14|CANCELLED|None|node7\n")
    assert jobs["12"].state == "PENDING" and jobs["12"].active and jobs["12"].describe() == "PENDING, Priority"
    assert jobs["13"].node == "node7" and jobs["13"].describe() == "RUNNING"
    assert not jobs["14"].active
    job = parse_scontrol_job("JobId=13 JobName=nni-abc-r1 UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) "
                             "ExitCode=0:15 NodeList=node7 BatchHost=node7")
    assert (job.job_id, job.state, job.reason, job.node, job.exit_code) == ("13", "TIMEOUT", "TimeLimit", "node7", "0:15")
    assert parse_scontrol_job("") is None


def test_missing_commands_are_named(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = slurm_unavailable_reason()
    assert "sbatch, squeue, scontrol, scancel not found" in reason and "login node" in reason


def test_commands_are_timed_and_failures_are_one_line(tmp_path):
    fake = tmp_path / "squeue"
    fake.write_text("#!/bin/sh\necho 'squeue: error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n")
    fake.chmod(0o755)
    commands = SlurmCommands(env={"PATH": str(tmp_path)})

    async def main():
        try:
            await commands.squeue(["3"])
        except Exception as err:  # noqa: BLE001
            return err

    err = asyncio.run(main())
    assert str(err) == "squeue failed: squeue: error: Unable to contact slurm controller (connect failure)"
    assert commands.stats.calls == {"squeue": 1} and commands.stats.seconds["squeue"] > 0


def test_leftover_jobs_are_found_by_name():
    from nni.training_services.slurm.service import _experiment_jobs

    out = "11|nni-abc12345-r1\n12|nni-abc12345-r2\n13|nni-my-exp-r1\n14|wrap\n15|nni-zzz99999-r3\n"
    assert _experiment_jobs(out, lambda e: e == "abc12345") == ["11", "12"]
    assert _experiment_jobs(out, lambda e: e not in {"abc12345"}) == ["13", "15"]
