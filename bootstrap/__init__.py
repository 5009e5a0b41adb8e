"""Getting a fresh machine running: embedded Redis when none answers, and `make run`'s launcher."""
