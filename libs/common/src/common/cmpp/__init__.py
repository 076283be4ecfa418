"""CMPP 2.0 (中国移动通信互联网短信网关接口协议, V2.0): the PDU codec (`codec`, pure), PDU
framing over an asyncio stream (`stream`) and a small asyncio client (`client`).

Shared by the gateway-adapter's CMPP server, `creditctl mas-send` and the tests, which must not
import each other's packages."""
