"""Ships a few records the way an application would: the standard logging
calls, with a TaillightHandler on the root logger. TAILLIGHT_SERVER names
the server (HOST:PORT), TAILLIGHT_SERVICE the service, TAILLIGHT_KEY the API
key if the server requires one, TAILLIGHT_CA_CERT the CA certificate of a
server with TLS."""

import logging
import os

from taillight_handler import TaillightHandler

handler = TaillightHandler(os.environ.get("TAILLIGHT_SERVER", "127.0.0.1:50051"),
                           service=os.environ.get("TAILLIGHT_SERVICE", "example"),
                           key=os.environ.get("TAILLIGHT_KEY"),
                           ca_cert=os.environ.get("TAILLIGHT_CA_CERT"))
logging.basicConfig(level=logging.DEBUG, handlers=[handler])
log = logging.getLogger("shop.checkout")

log.info("order placed", extra={"order": 42})
log.warning("card declined", extra={"tags": ["payments", "retry"], "card": "visa"})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("total could not be computed")
log.debug("done")

logging.shutdown()
print(f"sent {handler.sent} dropped {handler.dropped} refused {handler.refused}")
