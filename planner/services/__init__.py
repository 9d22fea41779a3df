"""The planner's use cases: each opens a transaction (or a read), loads through `planner.store`, applies a rule of
`planner.domain`, saves, records the event and queues the messages it leads to. No SQL here."""
