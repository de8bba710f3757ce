// An independent SOAP client for the gateway's relay service: the npm package "soap" builds
// its client from the WSDL the gateway publishes (fetching the XSDs it points at) and calls
// SendMessage. Prints the answer's responseInfo as one line of JSON; exits non-zero on a fault.
//
// usage: node tests/node/relay_client.js <wsdl-url> [member-id]
"use strict";

const soap = require("soap");

// A relayed ProbationNotice, the document the test services take (tests/support.py person_payload).
const PROBATION_NOTICE =
  '<p:ProbationNotice xmlns:p="urn:example:ping"><p:event>PLANNED</p:event><p:person><p:iin>900215400281</p:iin><p:surname>Жұмабекова</p:surname><p:given_name>Әлия</p:given_name><p:patronymic>Серікқызы</p:patronymic><p:birth_date>1990-02-15</p:birth_date><p:sex>FEMALE</p:sex><p:citizenship>KAZ</p:citizenship></p:person><p:release_type>PAROLE</p:release_type><p:release_date>2027-01-15</p:release_date><p:facility><p:code>UG-165/9</p:code><p:name>Учреждение УГ-165/9</p:name></p:facility><p:destination><p:raw>Сәлем, әғқңөұүһі</p:raw></p:destination><p:probation_office><p:code>PROB-0</p:code><p:name>Пробация қызметі</p:name></p:probation_office></p:ProbationNotice>';

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
        data: { $xml: PROBATION_NOTICE },
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
