"""Control: the hosts a campaign runs on (the inventory), the one way to reach them (ssh) and the shell
text sent to them, quoted by construction (shell)."""
