"""What the tests that drive a server process share: starting one that prints "listening <port>"
(mpg-httpd on a model, or any such binary), stopping it, and the one test case per model (a
TestCase mixes in EachModel and defines run_model(model))."""

import selectors
import subprocess


def start_listening(argv: list[str], stderr=subprocess.PIPE,
                    timeout: float | None = None) -> tuple[subprocess.Popen, int]:
    """Runs argv (text, stdout piped) until it prints "listening <port>"; returns the process and
    the port. Raises RuntimeError, with the process killed, if another line comes first or none
    within `timeout` seconds (None: no limit)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
    line = ""
    if timeout is None or _readable_within(p.stdout, timeout):
        line = p.stdout.readline()
    if not line.startswith("listening "):
        p.kill()
        _, err = p.communicate()
        raise RuntimeError(f"{' '.join(argv)} did not start: {line!r} {err or ''}")
    return p, int(line.split()[1])


def _readable_within(f, timeout: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(f, selectors.EVENT_READ)
        return bool(sel.select(timeout=timeout))


def stop(p: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    p.terminate()
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def start_httpd(binary: str, model: str) -> tuple[subprocess.Popen, int]:
    """mpg-httpd --model MODEL on a free loopback port; returns the process (stdout and stderr
    piped, text) and the port it printed ("listening <port>")."""
    return start_listening([binary, "--model", model, "--listen", "127.0.0.1:0"])


class EachModel:
    """One test per concurrency model; the TestCase provides run_model(model)."""

    def test_goroutine(self):
        self.run_model("goroutine")

    def test_reactor(self):
        self.run_model("reactor")

    def test_hybrid(self):
        self.run_model("hybrid")
