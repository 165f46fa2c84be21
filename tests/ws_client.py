"""A WebSocket client for taillight's `/ws` tests, with the `websockets`
library: the seed page's part (answer each ping with a pong) or a silent one.

    ws_client.py URL COUNT [--no-pong]

Prints `ready` once connected, then one line of JSON per message received
(pings included), and `closed CODE` when the server closes the socket; exits
after COUNT records (messages with a `service_name`) or when closed.
"""

import asyncio
import json
import sys

import websockets


async def main(url, count, pong):
    async with websockets.connect(url, max_size=None) as ws:
        print("ready", flush=True)
        records = 0
        try:
            async for raw in ws:
                data = json.loads(raw)
                print(json.dumps(data), flush=True)
                if data.get("type") == "ping" and pong:
                    await ws.send(json.dumps({"type": "pong"}))
                if "service_name" in data:
                    records += 1
                    if records >= count:
                        return
        except websockets.ConnectionClosed:
            pass
        print(f"closed {ws.close_code}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), "--no-pong" not in sys.argv))
