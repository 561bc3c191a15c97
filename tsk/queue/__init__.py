"""The task queue: store, scheduler, server."""
