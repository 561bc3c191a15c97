# tsk agent "exec": runs a plain command in the stack's image; nothing to install.
LABEL dev.tsk.agent="exec"
