"""A message pulled but not confirmed survives a gateway killed with SIGKILL: after the restart
it is handed out again, on SQLite and on PostgreSQL; once confirmed, never again."""

from __future__ import annotations

import aiohttp

from support import GatewayProcess, free_port, write_config

from soap.async_messages import PULL_CONFIG, get_messages, ids_request, post, send_message


async def test_a_pulled_unconfirmed_message_is_handed_out_again_after_a_crash(tmp_path, store_url, receiver):
    config_dir = write_config(tmp_path / "config", receiver_url=receiver.url, store_url=store_url,
                              **PULL_CONFIG)
    gateway = GatewayProcess(config_dir, free_port(), tmp_path / "gateway.log")
    gateway.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            await gateway.ready(http)
            sent = await post(http, gateway, "sendMessage", send_message("court-crash-1"), member="court")
            gateway_id = sent.find("response/messageId").text
            pulled = await post(http, gateway, "getMessages", get_messages("probation", 10), member="probation")
            assert pulled.texts("response/message/messageInfo/messageId") == [gateway_id]

            gateway.kill()  # the member got the page; no confirmation reached the gateway
            gateway.start()
            await gateway.ready(http)

            again = await post(http, gateway, "getMessages", get_messages("probation", 10), member="probation")
            assert again.texts("response/message/messageInfo/messageId") == [gateway_id]
            confirmed = await post(http, gateway, "sendDeliveryNotification",
                                   ids_request("sendDeliveryNotification", "probation", gateway_id), member="probation")
            assert confirmed.texts("response/messageId") == [gateway_id]

            gateway.kill()
            gateway.start()
            await gateway.ready(http)
            after = await post(http, gateway, "getMessages", get_messages("probation", 10), member="probation")
            assert after.texts("response/message/messageInfo/messageId") == []
            status = await post(http, gateway, "getMessageStatus",
                                ids_request("getMessageStatus", "court", "court-crash-1"), member="court")
            assert status.texts("response/messageStatus/code") == ["DELIVERED"]
    finally:
        gateway.stop()
    log = (tmp_path / "gateway.log").read_text()
    assert "bus-password" not in log and "Сәлем" not in log  # neither the bus password nor the content is logged
