# tsk stack "default": the base layer's tools only (git, curl, build-essential,
# python3, ripgrep, jq, ...). Nothing extra to install.
LABEL dev.tsk.stack="default"
