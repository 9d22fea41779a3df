"""Vendor agent adapters, implementing the agent interface the planner declares."""
