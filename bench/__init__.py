"""The benchmark harness: ``python -m bench [--quick]`` (or ``gateway bench``).

It starts the agency simulators and the gateway on loopback, runs each scenario, prints every
figure and ratio, and writes them as JSON (``bench/results/``) and, for a full run, as the
Markdown of ``BENCHMARKS.md``. Figures that are compared are measured side by side in the
same run. Benchmarks print figures; nothing here asserts how big they are.
"""
