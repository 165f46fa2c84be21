"""Logs through Python's own logging.handlers.SysLogHandler, as a Python
service sending its logs to syslog does, for taillight's syslog tests.

Reads a JSON list of operations on stdin and runs them in order:
  {"op": "log", "port": P, "transport": "udp"|"tcp", "ident": TEXT|null,
   "facility": NAME, "records": [{"level": "warning", "message": TEXT}, ...]}
  {"op": "flood", "port": P, "transport": "udp"|"tcp", "ident": TEXT,
   "prefix": TEXT, "count": N}
and prints one line of JSON: the number of records each operation logged.
"""

import json
import logging
import logging.handlers
import socket
import sys


class StrictSysLogHandler(logging.handlers.SysLogHandler):
    """A failed send fails the test instead of being printed and forgotten."""

    def handleError(self, record):
        raise


def handler(op):
    socktype = socket.SOCK_STREAM if op["transport"] == "tcp" else socket.SOCK_DGRAM
    h = StrictSysLogHandler(
        address=("127.0.0.1", op["port"]),
        facility=op.get("facility", "user"),
        socktype=socktype,
    )
    if op.get("ident"):
        h.ident = op["ident"]
    return h


def logger_with(h, name):
    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.handlers = [h]
    return log


def log(op, n):
    h = handler(op)
    log = logger_with(h, f"log{n}")
    for r in op["records"]:
        log.log(logging.getLevelName(r["level"].upper()), r["message"])
    h.close()
    return len(op["records"])


def flood(op, n):
    h = handler(op)
    log = logger_with(h, f"flood{n}")
    for i in range(op["count"]):
        log.info("%s%d", op["prefix"], i)
    h.close()
    return op["count"]


def main():
    ops = json.load(sys.stdin)
    done = [{"log": log, "flood": flood}[op["op"]](op, n) for n, op in enumerate(ops)]
    print(json.dumps(done))


if __name__ == "__main__":
    main()
