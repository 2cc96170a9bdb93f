"""The simulator: desks, sensors and units that drive the system through its public doors.

Units speak the websocket protocol (docs/protocol.md), desks and the hotline the intake API
(docs/intake.md), sensors write `alarms.raw` on Kafka; the ledger audits the outcome from
`incidents.state` and `alarms.dlq`. Used by the fault tests and by `dispatch simulate`
(docs/simulator.md).
"""
