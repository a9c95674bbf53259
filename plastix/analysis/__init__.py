"""Analysis of run directories: statistics, THC, reports, figures and representation probes. It reads
runs; agents and envs come only through `plastix.run.load`."""
