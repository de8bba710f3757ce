"""Trust boundary of the gateway: hostile-XML parsing, signatures, identity, access and audit."""
