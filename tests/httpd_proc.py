"""What the tests that drive a real mpg-httpd process share: starting one on a model, and the
one test case per model (a TestCase mixes in EachModel and defines run_model(model))."""

import subprocess


def start_httpd(binary: str, model: str) -> tuple[subprocess.Popen, int]:
    """mpg-httpd --model MODEL on a free loopback port; returns the process (stdout and stderr
    piped, text) and the port it printed ("listening <port>")."""
    p = subprocess.Popen([binary, "--model", model, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("listening "):
        p.kill()
        _, err = p.communicate()
        raise RuntimeError(f"mpg-httpd --model {model} did not start: {line!r} {err}")
    return p, int(line.split()[1])


class EachModel:
    """One test per concurrency model; the TestCase provides run_model(model)."""

    def test_goroutine(self):
        self.run_model("goroutine")

    def test_reactor(self):
        self.run_model("reactor")

    def test_hybrid(self):
        self.run_model("hybrid")
