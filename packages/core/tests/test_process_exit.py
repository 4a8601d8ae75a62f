"""exit_now: atexit handlers and flushed streams, the exit code, and live threads."""
import subprocess
import sys
import textwrap


def _run(body: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent("""
        import atexit, sys, threading, time
        from nni.runtime.process_exit import exit_now
        atexit.register(lambda: print("atexit ran", flush=True))
        def late():
            time.sleep(0.3)
            print("thread done", flush=True)
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_exit_code_atexit_and_buffered_output():
    out = _run('sys.stdout.write("buffered"); exit_now(3)')
    assert out.returncode == 3 and "buffered" in out.stdout and "atexit ran" in out.stdout


def test_live_thread_is_joined_either_way():
    for flag in ("False", "True"):
        out = _run(f'threading.Thread(target=late).start(); exit_now(4, join_threads={flag})')
        assert out.returncode == 4, out.stderr
        assert out.stdout.index("thread done") < out.stdout.index("atexit ran")
