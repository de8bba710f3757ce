"""A SOAP 1.1 toolkit over ШЭП SyncChannel v10: contracts, envelopes, faults, serving and calling.

It knows nothing of the gateway's services: the gateway's own SOAP services are in
``gateway.entrypoints.soap``, and the agency simulators serve SOAP with the same parts.

- ``contracts``: each service's WSDL and XSDs (schemas/soap), compiled once, validating and
  publishing themselves;
- ``envelope``: the SOAP envelope and the bus messages, built and read in one place (where
  WS-Security signing and verification slot in);
- ``faults``: SOAP 1.1 Faults carrying SendMessageFault/ErrorInfo, Client or Server, all HTTP 500;
- ``server``: the request pipeline every SOAP endpoint shares;
- ``client``: calling agencies' services, built and read with lxml, carried by aiohttp.

docs/integration-soap.md describes the services for integration engineers.
"""
