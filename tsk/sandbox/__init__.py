"""The container half of a task: the planned container spec, provisioning, the egress proxy, the runner."""
