"""Teams: the only code that knows a Teams SDK (botbuilder today), behind the `TeamsChannel` seam.

`channel` declares the seam (`TeamsChannel`, its values and errors); `botbuilder` builds the adapter, serves
activities through it and implements `TeamsChannel` on it; `handler` turns inbound activities into operations;
`auth` checks inbound tokens; `connectors` keeps connector clients for reuse; `content` carries a card to the
wire as built.
"""
