"""`toast serve`: the long-lived process a team runs. The engine, the webhook receiver, the
poller and the notifier share one event loop."""
