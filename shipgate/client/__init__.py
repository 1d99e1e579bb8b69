"""The client: the host agent the phases run on each host (`hostagent`), the typed calls that invoke it
(`calls`) and the one parser of what commands on a host print (`output`)."""
