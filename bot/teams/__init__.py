"""Teams: the only code that knows a Teams SDK (botbuilder today), behind the `TeamsChannel` seam.

`handler` turns inbound activities into operations; `auth` checks inbound tokens; `connectors` keeps connector
clients for reuse; `content` carries a card to the wire as built; `botbuilder` builds the adapter and serves
activities through it.
"""
