"""The gate every action passes: the policy guard of agent calls, and the gated agent every caller is handed."""
