"""SOAP 1.1 over the exchange bus envelope: contracts, envelopes, faults, serving and calling.

- ``contracts``: each service's WSDL and XSDs (schemas/soap), compiled once, validating and
  publishing themselves;
- ``envelope``: the SOAP envelope and the bus messages, built and read in one place (where
  WS-Security signing and verification slot in);
- ``faults``: SOAP 1.1 Faults carrying ErrorInfo, Client (4xx) or Server (5xx);
- ``server``: the request pipeline every SOAP endpoint shares;
- ``endpoint``: the gateway's own services, ``relay`` and ``release-notices``;
- ``release_notices``: the release-notices channel and the ``ReleaseNoticeReceiver`` protocol;
- ``client``: calling agencies' services, zeep building and aiohttp carrying.

docs/integration-soap.md describes the services for integration engineers.
"""

from gateway.soap.release_notices import ReleaseNoticeReceiver

__all__ = ["ReleaseNoticeReceiver"]
