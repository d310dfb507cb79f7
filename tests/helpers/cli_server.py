"""`python -m dreamrun ARGS` for the tests, without paying for Python's and torch's start-up each time.

A server process imports torch, Hydra and dreamrun once, then forks a child for every command line the tests
run (conftest.run_cli): the child takes the test's working directory, environment and argv, writes stdout and
stderr to the files it is given, runs dreamrun's `__main__` as `python -m` does, shuts down as an interpreter
does (non-daemon threads joined, atexit handlers run) and reports its exit status. Only the interpreter's own
start is shared: each command runs in a process of its own, from the state right after the imports.

Forking after `import torch` is safe while no torch operation has run in the server (its thread pools start
at the first one), and the server runs none. Commands whose environment changes what happens at import time
(PYTHONPATH, thread counts) still start a fresh interpreter (CliServer.forkable), as does every command with
DREAMRUN_TESTS_FRESH=1.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional

IMPORT_TIME_ENV = ("PYTHON", "OMP_", "MKL_", "KMP_", "TORCH", "CUDA", "LD_")  # read as the interpreter starts


def _send(conn: socket.socket, data: dict) -> None:
    body = json.dumps(data).encode()
    conn.sendall(struct.pack(">I", len(body)) + body)


def _receive(conn: socket.socket) -> Optional[dict]:
    header = _read(conn, 4)
    if header is None:
        return None
    body = _read(conn, struct.unpack(">I", header)[0])
    return None if body is None else json.loads(body)


def _read(conn: socket.socket, count: int) -> Optional[bytes]:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# the server side


def serve(path: str) -> None:
    import torch  # noqa: F401  what every command pays for: imported once, here
    import dreamrun.cli  # noqa: F401
    import dreamrun.jobs.kinds  # noqa: F401
    import dreamrun.sweeps.batched  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the system: their status comes by socket
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        if os.fork() == 0:
            server.close()
            _child(conn)  # never returns
        conn.close()


def _child(conn: socket.socket) -> None:
    exit_now = os._exit

    def report_and_exit(code: int) -> None:  # the CLI ends with os._exit (cli._exit): report its status first
        try:
            _send(conn, {"returncode": code})
        finally:
            exit_now(code)

    os._exit = report_and_exit
    code = 1
    try:
        request = _receive(conn)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # as in a fresh interpreter: subprocess waits for its own
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]  # where `python -m` looks first: the working directory, not this script's
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY),
                                (2, request["stderr"], os.O_WRONLY)):
            opened = os.open(path, flags)
            os.dup2(opened, fd)
            os.close(opened)
        _send(conn, {"pid": os.getpid()})
        code = _run_main(request["argv"])
    finally:
        os._exit(code)


def _run_main(argv: list[str]) -> int:
    import atexit
    import runpy
    import traceback

    sys.argv = ["dreamrun", *argv]  # run_module puts __main__.py's path first, as `python -m` does
    code = 0
    try:
        runpy.run_module("dreamrun", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:  # what the interpreter would print before exiting 1
        traceback.print_exc()
        code = 1
    finally:
        threading._shutdown()  # joins non-daemon threads, as the interpreter does at exit
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    return code


# the tests' side


class CliServer:
    def __init__(self):
        self.env = dict(os.environ)  # what the server's interpreter started with
        self.directory = Path(tempfile.mkdtemp(prefix="dreamrun-cli-"))
        self.socket = self.directory / "server.sock"
        self.process = subprocess.Popen([sys.executable, __file__, str(self.socket)], stdout=subprocess.PIPE,
                                        cwd=Path(__file__).resolve().parents[2], text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the CLI server did not start")

    def run(self, argv: list[str], *, cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
        out, err = (Path(tempfile.mkstemp(dir=self.directory, suffix=suffix)[1]) for suffix in (".out", ".err"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(self.socket))
            _send(conn, {"argv": argv, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err)})
            pid = (_receive(conn) or {}).get("pid")
            try:
                reply = _receive(conn)
            except socket.timeout:
                if pid:
                    os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(["dreamrun", *argv], timeout) from None
        returncode = reply["returncode"] if reply else -signal.SIGKILL  # no reply: the child died by a signal
        try:
            return subprocess.CompletedProcess(["dreamrun", *argv], returncode,
                                               out.read_text(errors="replace"), err.read_text(errors="replace"))
        finally:
            out.unlink()
            err.unlink()

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        for path in self.directory.iterdir():
            path.unlink()
        self.directory.rmdir()


    def forkable(self, env: dict) -> bool:
        """Whether a command with this environment runs in a child of the server as in a new interpreter: no
        variable read as an interpreter starts differs from the server's."""
        changed = {key for key in env.keys() | self.env.keys() if env.get(key) != self.env.get(key)}
        return not any(key.startswith(IMPORT_TIME_ENV) for key in changed)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    serve(sys.argv[1])
