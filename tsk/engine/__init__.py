"""The adapters to the systems outside tsk, and the typed protocols every caller uses: the container
engine (docker_api.py, the docker SDK, for dockerd and for Podman's Docker-compatible service with the
shim in podman_api.py), the image builder (buildx.py, python-on-whales: BuildKit or `podman build`), host
commands (proc.py, subprocess), and which engine a command uses (choice.py, registry.py). Nothing here
imports a feature package."""
