"""The benchmark of the schedule: `python -m bench --size small` (see bench/README.md)."""
