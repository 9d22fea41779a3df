"""The planning domain: plans, tasks, metrics, rollup, the store. Knows nothing of Teams or vendors."""
