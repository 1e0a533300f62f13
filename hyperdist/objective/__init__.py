"""The objective: how it is named and loaded (references under an allow list), run (in process or
in a child, under a time limit), what it may return, and how it reports values for pruning."""
