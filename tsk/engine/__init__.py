"""The adapters to the systems outside tsk, and the typed protocols every caller uses: the container
engine (docker_api.py, the docker SDK), the image builder (buildx.py, python-on-whales) and host
commands (proc.py, subprocess). Nothing here imports a feature package."""
