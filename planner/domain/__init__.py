"""The planner's rules and values: plans, tasks and their windows, KPIs and rollup, derivation, the governance
vocabulary, secrets in configs. Pure: no SQLAlchemy, no I/O, no clock reads (a test runs it bare)."""
