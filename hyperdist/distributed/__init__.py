"""Search on many machines: the coordinator that keeps the queue of suggested trials filled, the
stateless worker that claims, evaluates and reports, and the session that drives a search to its end."""
