"""The client: the host agent the phases run on each host, and the one parser of what it prints."""
