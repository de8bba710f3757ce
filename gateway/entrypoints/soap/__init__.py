"""The gateway's own SOAP services (``relay``, ``release_notices``), on ШЭП SyncChannel v10.

Until ``DEPRECATED_UNTIL`` they also accept the gateway's earlier envelope
(``urn:reentry-gateway:bus:v1``, validated by ``DEPRECATED_SCHEMAS``) and answer it in kind
(docs/integration-soap.md, "Deprecated envelope").
"""

DEPRECATED_UNTIL = "2027-06-30"
"""The last day the gateway's SOAP services accept the ``urn:reentry-gateway:bus:v1`` envelope."""
DEPRECATED_SCHEMAS = ("bus.xsd", "bus-async.xsd")
