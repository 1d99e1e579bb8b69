"""Control: the hosts a campaign runs on (the inventory) and the one way to reach them (ssh)."""
