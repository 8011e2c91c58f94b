"""turnout's bundled benchmark (`turnout bench`): turnout, nginx and HAProxy making the same split
under wrk (or a built-in generator), side by side, on loopback only, with bounded runs.

What lives here: starting and stopping the targets and backends (processes.py, targets.py,
baselines.py, backends.py), the load (load.py, loadgen.py, scenarios.py, shifter.py), measuring
and reporting (measure.py, report.py, chart.py), and the micro-benchmarks (router_bench.py,
idle_bench.py, health_bench.py). Nothing in the product imports it; `proxy.cli` loads it only
when `bench` runs.
"""
