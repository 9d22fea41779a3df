"""The Teams surface and the process: wires planner, adapters, scheduler and HTTP."""
