"""Engine layer: jobs and their state machine, scheduler, executors, retry policy, event bus, runs and lifecycle."""
