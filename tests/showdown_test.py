#!/usr/bin/env python3
"""Tests of the showdown's driver (bench/showdown.py) and harness (bench/http/http_load.py):
parsing wrk's output and /proc on recorded samples, and the summary, claims and charts of a
small fake run. (The end-to-end smoke run is a separate CTest test: showdown --smoke.)"""

import io
import os
import shutil
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "bench", "http"))
import http_load as hl  # noqa: E402
import showdown  # noqa: E402

WRK_SAMPLE = """Running 2s test @ http://127.0.0.1:40123/plaintext
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.21ms  310.00us   9.80ms   91.00%
  Latency Distribution
     50%    1.10ms
  120000 requests in 2.00s, 15.00MB read
  Non-2xx or 3xx responses: 7
Requests/sec:  60000.00
WRK_JSON {"duration_us":2000000,"requests":120000,"bytes":15360000,"errors":{"connect":0,"read":2,"write":0,"status":7,"timeout":1},"latency_us":{"min":80,"mean":1210.0,"stdev":310.0,"max":9800,"p50":1100,"p90":1500,"p99":2900,"p99_9":6100}}
"""

STAT_SAMPLE = ("4242 (mpg httpd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 5 0 123 "
               "1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")

STATUS_SAMPLE = "Name:\tmpg-httpd\nVmHWM:\t   20480 kB\nVmRSS:\t   12345 kB\nThreads:\t5\n"


class Parsing(unittest.TestCase):
    def test_wrk(self):
        r = hl.parse_wrk(WRK_SAMPLE)
        self.assertEqual(r["requests"], 120000)
        self.assertAlmostEqual(r["rps"], 60000.0)
        self.assertEqual(r["p50_us"], 1100)
        self.assertEqual(r["p99_us"], 2900)
        self.assertEqual(r["p99_9_us"], 6100)
        self.assertEqual(r["errors"]["non_2xx"], 7)
        self.assertEqual(r["errors_total"], 2 + 7 + 1 + 7)
        self.assertAlmostEqual(r["bytes_per_response"], 128.0)

    def test_wrk_corrupt_percentiles_are_dropped(self):
        bad = WRK_SAMPLE.replace('"p99":2900', '"p99":0')
        r = hl.parse_wrk(bad)
        self.assertIsNone(r["p99_us"])
        self.assertIsNone(r["p50_us"])

    def test_wrk_without_json_line(self):
        with self.assertRaises(ValueError):
            hl.parse_wrk("Requests/sec: 1\n")

    def test_proc_stat_with_space_in_name(self):
        self.assertAlmostEqual(hl.parse_proc_stat(STAT_SAMPLE), (250 + 150) / hl.CLK_TCK)

    def test_proc_status(self):
        self.assertEqual(hl.parse_status_kb(STATUS_SAMPLE, "VmRSS"), 12345)
        self.assertEqual(hl.parse_status_kb(STATUS_SAMPLE, "VmHWM"), 20480)


def fake_run(server, conns, mode, rps, cpu, p50, rss_kb):
    return {"server": server, "conns": conns, "mode": mode, "rps": rps, "p50_us": p50, "p99_us": p50 * 3,
            "p99_9_us": p50 * 5, "batch_mean_us": None, "cpu_us_per_req": cpu, "errors_total": 0,
            "server_errors": [], "rss_kb": rss_kb, "hwm_kb": rss_kb, "server_cpu_cores": 0.5,
            "wrk_cpu_cores": 0.5, "other_cpu_cores": 0.1}


def fake_idle(server, level, before_kb, per_conn):
    return {"server": server, "idle": level, "opened": level, "served": level, "closed_by_server": 0,
            "client_ok": True, "server_errors": [], "rss_before_kb": before_kb,
            "rss_held_kb": before_kb + level * per_conn / 1024, "bytes_per_conn": per_conn}


class FakeRun(unittest.TestCase):
    def setUp(self):
        showdown.register_servers()
        self.o = hl.Options(reps=1, conns=(100, 1000), modes=("plain",), idle=(1000,))
        runs = []
        for s, rps, cpu in [("floor", 30000, 10.0), ("mpg-goroutine", 20000, 13.0), ("mpg-reactor", 40000, 11.0),
                            ("mpg-hybrid", 25000, 15.0), (showdown.PINNED, 30000, 11.0)]:
            for c in self.o.conns:
                runs.append(fake_run(s, c, "plain", rps, cpu, 1_000_000 / rps * c / 10, 10_000 if "goroutine" in s else 6000))
        idle = [fake_idle("mpg-goroutine", 1000, 4000, 6000), fake_idle("mpg-reactor", 1000, 4000, 700)]
        self.res = {"runs": runs, "idle": idle, "failures": [], "seconds": 1.0}
        self.summ = hl.summarize(self.res)

    def test_summary_medians(self):
        m = self.summ["load"][("mpg-reactor", 1000, "plain")]
        self.assertEqual(m["rps"]["median"], 40000)
        self.assertEqual(m["rps"]["n"], 1)

    def test_claims_ratios_and_verdicts(self):
        cl = showdown.claims(self.summ, self.res, self.o)
        qps = cl[0]
        self.assertAlmostEqual(qps["claimed_ratio"], 26500 / 8200)
        self.assertAlmostEqual(qps["measured_ratio"], 40000 / 20000)
        self.assertEqual(qps["verdict"], "holds")  # 2.0 >= sqrt(3.23)
        mem = cl[3]  # 100k extrapolation: goroutine 4000 KB + 100k x 6000 B vs reactor + 100k x 700 B
        g = (4000 + 100_000 * 6000 / 1024) / 1024
        r = (4000 + 100_000 * 700 / 1024) / 1024
        self.assertAlmostEqual(mem["measured_ratio"], g / r)
        pin = cl[5]
        self.assertAlmostEqual(pin["measured_ratio"], 30000 / 20000)
        self.assertEqual(showdown.judge(4.0, 1.5), "weaker")
        self.assertEqual(showdown.judge(4.0, 0.9), "does not hold")
        self.assertEqual(showdown.judge(4.0, None), "n/a")

    def test_targets_ratios_and_verdicts(self):
        # One-thread reactor at 10.4 us (1.04x the floor's 10.0: meets <= 1.05), the default one
        # at 11.0 (1.10x: does not); p99 against nginx-1's; idle bytes against nginx-1's.
        runs = list(self.res["runs"])
        for c in self.o.conns:
            runs.append(fake_run("mpg-reactor-1", c, "plain", 35000, 10.4, 1_000_000 / 35000 * c / 10, 6000))
            runs.append(fake_run("nginx-1", c, "plain", 30000, 12.0, 1_000_000 / 30000 * c / 10, 20000))
            runs.append(fake_run("nginx-2", c, "plain", 50000, 12.0, 1_000_000 / 50000 * c / 10, 30000))
        idle = self.res["idle"] + [fake_idle("nginx-1", 1000, 4000, 500), fake_idle("mpg-reactor-1", 1000, 4000, 450)]
        summ = hl.summarize({"runs": runs, "idle": idle, "failures": [], "seconds": 1.0})
        t = {(x["target"].split(",")[0], x["server"]): x for x in showdown.targets(summ, self.o)}
        cpu, cpu1 = t[("CPU per request", "mpg-reactor")], t[("CPU per request", "mpg-reactor-1")]
        self.assertAlmostEqual(cpu["ratio"], 1.10)
        self.assertFalse(cpu["met"])
        self.assertAlmostEqual(cpu1["ratio"], 1.04)
        self.assertTrue(cpu1["met"])
        p99 = t[("p99", "mpg-reactor-1")]  # p99 = 3 x p50 = 3 x 1e6 / rps x conns / 10
        self.assertAlmostEqual(p99["ratio"], 30000 / 35000)
        self.assertTrue(p99["met"])
        # The default-thread models also against nginx-2 (two workers); the one-thread ones not.
        p99_2 = t[("p99 against nginx-2 (two workers; the default threads: one per CPU", "mpg-reactor")]
        self.assertEqual(p99_2["peer"], "nginx-2")
        self.assertAlmostEqual(p99_2["ratio"], 50000 / 40000)  # p99 goes as 1 / rps here
        self.assertFalse(p99_2["met"])
        self.assertNotIn(("p99 against nginx-2 (two workers; the default threads: one per CPU", "mpg-reactor-1"), t)
        self.assertAlmostEqual(t[("RSS per idle connection", "mpg-reactor")]["ratio"], 700 / 500)
        self.assertFalse(t[("RSS per idle connection", "mpg-reactor")]["met"])
        self.assertTrue(t[("RSS per idle connection", "mpg-reactor-1")]["met"])
        g = t[("RSS per idle connection", "mpg-goroutine")]
        self.assertEqual((g["peer"], g["bound"], g["met"]), ("go-nethttp", "<= 0.4", None))  # no Go run: n/a
        self.assertIsNone(t[("CPU per request", "mpg-hybrid-1")]["ratio"])  # not run: n/a

    def test_targets_flag_a_noisy_peer_and_give_best_repetitions(self):
        # Three floor repetitions at 6, 7.5 and 9 us (spread 1.5: noisy), the reactor at 7, 7.2, 8:
        # medians 7.2 / 7.5 = 0.96 (met, but unsure), best reps 7 / 6 = 1.17.
        runs = []
        for cpu in (6.0, 7.5, 9.0):
            runs.append(fake_run("floor", 1000, "plain", 100000, cpu, 4000, 4000))
        for cpu in (7.0, 7.2, 8.0):
            runs.append(fake_run("mpg-reactor", 1000, "plain", 100000, cpu, 4000, 6000))
        for p50 in (3000, 3150, 3300):  # the p99 peer, steady: spread 1.1, no flag
            runs.append(fake_run("nginx-1", 1000, "plain", 100000, 10.0, p50, 20000))
        # Pipelined req/s, where more is better: the best repetitions are the maxima.
        for rps in (1_000_000, 1_100_000, 1_400_000):  # the floor: spread 1.4
            runs.append(fake_run("floor", 100, "pipelined", rps, 0.5, 1000, 4000))
        for rps in (800_000, 900_000, 1_000_000):
            runs.append(fake_run("mpg-reactor", 100, "pipelined", rps, 0.6, 1000, 6000))
        o = hl.Options(reps=3, conns=(100, 1000), modes=("plain", "pipelined"), idle=())
        summ = hl.summarize({"runs": runs, "idle": [], "failures": [], "seconds": 1.0})  # hybrid: not run
        t = {(x["target"].split(",")[0], x["server"]): x for x in showdown.targets(summ, o)}
        cpu = t[("CPU per request", "mpg-reactor")]
        self.assertAlmostEqual(cpu["ratio"], 7.2 / 7.5)
        self.assertTrue(cpu["met"])
        self.assertAlmostEqual(cpu["best_ratio"], 7.0 / 6.0)
        self.assertAlmostEqual(cpu["peer_spread"], 1.5)
        self.assertTrue(cpu["noisy"])
        p99 = t[("p99", "mpg-reactor")]
        self.assertAlmostEqual(p99["peer_spread"], 3300 / 3000)
        self.assertFalse(p99["noisy"])
        self.assertAlmostEqual(p99["best_ratio"], 12000 / 9000)  # p99 = 3 x p50 on each side
        pipe = t[("req/s pipelined 16 deep", "mpg-reactor")]
        self.assertAlmostEqual(pipe["ratio"], 900_000 / 1_100_000)
        self.assertAlmostEqual(pipe["best_ratio"], 1_000_000 / 1_400_000)
        self.assertTrue(pipe["met"])  # 0.82 >= 0.8
        self.assertTrue(pipe["noisy"])
        md = showdown.targets_md(summ, o)
        self.assertIn("| CPU per request, 1,000 conns, over the floor's | mpg-reactor | 0.96 | 1.17 | 1.50 | <= 1.05 | yes ? |", md)
        self.assertIn("| p99, 1,000 conns, over nginx-1's | mpg-reactor | 1.27 | 1.33 | 1.10 | <= 1 | **no** |", md)
        self.assertIn("| CPU per request, 1,000 conns, over the floor's | mpg-hybrid | n/a | n/a | 1.50 | <= 1.1 | n/a |", md)

    def test_tables_and_charts(self):
        out = io.StringIO()
        hl.print_tables(self.res, ["floor", "mpg-goroutine", "mpg-reactor", "mpg-hybrid"], self.o, out)
        text = out.getvalue()
        self.assertIn("mpg-reactor", text)
        self.assertIn("1.10", text)  # reactor CPU 11.0 over the floor's 10.0
        if shutil.which("gnuplot"):
            with tempfile.TemporaryDirectory() as d:
                made = showdown.chart(d, self.summ, self.o, ["floor", "mpg-reactor"])
                made += showdown.claims_chart(d, showdown.claims(self.summ, self.res, self.o))
                self.assertIn("rps_plain.svg", made)
                self.assertIn("claims.png", made)
                for f in made:
                    self.assertGreater(os.path.getsize(os.path.join(d, f)), 1000, f)

    def test_a_server_missing_from_one_chart_leaves_no_empty_chart(self):
        # The pinned server runs only plain at 1,000 connections: the pipelined chart once came
        # out as empty files (gnuplot refuses a column with no valid point), copied into docs/.
        if not shutil.which("gnuplot"):
            self.skipTest("no gnuplot")
        runs = [fake_run(s, 100, m, 100000, 1.0, 1000, 4000) for s in ("floor", "mpg-reactor")
                for m in ("plain", "pipelined")]
        runs.append(fake_run(showdown.PINNED, 100, "plain", 90000, 1.1, 1000, 4000))
        o = hl.Options(reps=1, conns=(100,), modes=("plain", "pipelined"), idle=())
        summ = hl.summarize({"runs": runs, "idle": [], "failures": [], "seconds": 1.0})
        with tempfile.TemporaryDirectory() as d:
            made = showdown.chart(d, summ, o, ["floor", "mpg-reactor", showdown.PINNED])
            self.assertIn("rps_pipelined.svg", made)
            self.assertIn("rps_plain.png", made)
            with open(os.path.join(d, "rps_pipelined.dat")) as f:
                self.assertNotIn(showdown.PINNED, f.readline())
            for f in os.listdir(d):
                self.assertGreater(os.path.getsize(os.path.join(d, f)), 0, f)


if __name__ == "__main__":
    unittest.main()
