// An independent AsyncChannel client: the npm package "soap" builds its clients from the WSDL the
// gateway publishes and calls sendMessage (as the sender), getMessages and
// sendDeliveryNotification (as the pulling recipient) and getMessageStatus (as the sender).
// Prints what it learnt as one line of JSON; exits non-zero on a fault.
//
// usage: node tests/node/async_channel_client.js <wsdl-url> <sender> <recipient> <serviceId>
"use strict";

const soap = require("soap");

// A relayed ProbationNotice, the document the test services take (tests/support.py person_payload).
const PROBATION_NOTICE =
  '<p:ProbationNotice xmlns:p="urn:example:ping"><p:event>PLANNED</p:event><p:person><p:iin>900215400281</p:iin><p:surname>Жұмабекова</p:surname><p:given_name>Әлия</p:given_name><p:patronymic>Серікқызы</p:patronymic><p:birth_date>1990-02-15</p:birth_date><p:sex>FEMALE</p:sex><p:citizenship>KAZ</p:citizenship></p:person><p:release_type>PAROLE</p:release_type><p:release_date>2027-01-15</p:release_date><p:facility><p:code>UG-165/9</p:code><p:name>Учреждение УГ-165/9</p:name></p:facility><p:destination><p:raw>Сәлем, әғқңөұүһі</p:raw></p:destination><p:probation_office><p:code>PROB-0</p:code><p:name>Пробация қызметі</p:name></p:probation_office></p:ProbationNotice>';

async function as(wsdlUrl, member) {
  const client = await soap.createClientAsync(wsdlUrl);
  client.addHttpHeader("X-Member-Id", member);
  return client;
}

async function main() {
  const [wsdlUrl, sender, recipient, serviceId] = process.argv.slice(2);
  if (!serviceId) {
    console.error("usage: node async_channel_client.js <wsdl-url> <sender> <recipient> <serviceId>");
    process.exit(2);
  }
  const sending = await as(wsdlUrl, sender);
  const pulling = await as(wsdlUrl, recipient);
  const [sent] = await sending.sendMessageAsync({
    request: {
      messageInfo: {
        messageId: "node-async-1",
        serviceId,
        messageType: "NOTIFICATION",
        messageDate: new Date().toISOString(),
        sender: { senderId: sender, password: "ignored" },
        properties: [{ key: "purpose", value: "relay_test" }],
      },
      messageData: { data: { $xml: PROBATION_NOTICE } },
    },
  });
  const [page] = await pulling.getMessagesAsync({ request: { sender: { senderId: recipient }, pageSize: 10 } });
  const messages = [].concat(page.response.message || []);
  const ids = messages.map((message) => message.messageInfo.messageId);
  const [confirmed] = await pulling.sendDeliveryNotificationAsync({
    request: { sender: { senderId: recipient }, messageId: ids },
  });
  const [status] = await sending.getMessageStatusAsync({
    request: { sender: { senderId: sender }, messageId: ["node-async-1"] },
  });
  console.log(JSON.stringify({
    sent: sent.response,
    pulled: ids,
    confirmed: [].concat(confirmed.response.messageId || []),
    status: [].concat(status.response.messageStatus).map((entry) => entry.code),
  }));
}

main().catch((error) => {
  const fault = error.root && error.root.Envelope && error.root.Envelope.Body && error.root.Envelope.Body.Fault;
  console.error(fault ? JSON.stringify(fault) : String(error && error.stack ? error.stack : error));
  process.exit(1);
});
