// An independent SOAP client for the gateway's relay service: the npm package "soap" builds
// its client from the WSDL the gateway publishes (fetching the XSDs it points at) and calls
// SendMessage. Prints the answer's responseInfo as one line of JSON; exits non-zero on a fault.
//
// usage: node tests/node/relay_client.js <wsdl-url> [member-id]
"use strict";

const soap = require("soap");

async function main() {
  const [wsdlUrl, member = "penal"] = process.argv.slice(2);
  if (!wsdlUrl) {
    console.error("usage: node relay_client.js <wsdl-url> [member-id]");
    process.exit(2);
  }
  const client = await soap.createClientAsync(wsdlUrl);
  client.addHttpHeader("X-Member-Id", member);
  const [result] = await client.SendMessageAsync({
    request: {
      requestInfo: {
        messageId: "node-soap-1",
        serviceId: "health/bulk",
        messageDate: new Date().toISOString(),
        sender: { senderId: member },
        properties: [{ key: "purpose", value: "relay_test" }],
      },
      requestData: {
        data: { $xml: '<p:ping xmlns:p="urn:example:ping">Сәлем, әғқңөұүһі</p:ping>' },
      },
    },
  });
  console.log(JSON.stringify(result.response.responseInfo));
}

main().catch((error) => {
  const fault = error.root && error.root.Envelope && error.root.Envelope.Body && error.root.Envelope.Body.Fault;
  console.error(fault ? JSON.stringify(fault) : String(error && error.stack ? error.stack : error));
  process.exit(1);
});
