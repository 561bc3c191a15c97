"""The sandbox: the repo snapshot, the container, the egress proxy and the task run (DESIGN §3)."""
