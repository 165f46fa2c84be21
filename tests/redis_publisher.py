"""Publishes log lines to Redis with redis-py, as the seed system's projects
do (a publisher object with info/error helpers, one message per line), for
taillight's Redis source tests.

Reads a JSON list of operations on stdin and runs them in order:
  {"op": "publish", "channel": C, "payload": TEXT | "payload_hex": HEX}
  {"op": "xadd", "stream": S, "fields": {NAME: TEXT, ...} | "fields_hex": {NAME: HEX}}
  {"op": "seed", "channel": C, "level": "info"|"error", "message": TEXT}
  {"op": "burst", "kind": "publish"|"xadd", "to": NAME, "prefix": P, "count": N}
and prints one line of JSON: the number of subscribers that received each
publish, and the ids XADD returned.
"""

import json
import sys

import redis


class RedisLog:
    """The seed's publisher: `RedisLog.publisher('logger').info(message)`."""

    def __init__(self, client, channel):
        self.client = client
        self.channel = channel

    @classmethod
    def publisher(cls, client, channel):
        return cls(client, channel)

    def _send(self, level, message):
        return self.client.publish(self.channel, json.dumps({"level": level, "message": message}))

    def info(self, message):
        return self._send("info", message)

    def error(self, message):
        return self._send("error", message)


def payload(op):
    if "payload_hex" in op:
        return bytes.fromhex(op["payload_hex"])
    return op["payload"].encode()


def fields(op):
    if "fields_hex" in op:
        return {k: bytes.fromhex(v) for k, v in op["fields_hex"].items()}
    return op["fields"]


def run(client, ops):
    received, ids = [], []
    for op in ops:
        kind = op["op"]
        if kind == "publish":
            received.append(client.publish(op["channel"], payload(op)))
        elif kind == "xadd":
            ids.append(client.xadd(op["stream"], fields(op)).decode())
        elif kind == "seed":
            log = RedisLog.publisher(client, op["channel"])
            received.append(getattr(log, op["level"])(op["message"]))
        elif kind == "burst":
            pipe = client.pipeline(transaction=False)
            for i in range(op["count"]):
                line = f'{op["prefix"]}{i}'
                if op["kind"] == "publish":
                    pipe.publish(op["to"], line)
                else:
                    pipe.xadd(op["to"], {"message": line, "service": op.get("service", op["to"])})
                if i % 500 == 499:
                    pipe.execute()
            pipe.execute()
        else:
            raise SystemExit(f"unknown op {kind!r}")
    return {"received": received, "ids": ids}


if __name__ == "__main__":
    client = redis.Redis.from_url(sys.argv[1])
    print(json.dumps(run(client, json.load(sys.stdin))))
