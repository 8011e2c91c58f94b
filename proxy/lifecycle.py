"""An exchange's lifecycle, as two state values (h11 keeps one per side the same way).

`phase`, the exchange's own progress; it only moves forward:

    QUEUED      parsed, waiting behind earlier requests on the connection (pipelining)
    ROUTING     started: routed, connecting, sending; nothing of the response relayed yet
    RESPONDING  the response head was produced: too late for a status, a failure closes
    RESPONDED   the whole response was produced; it is being written and finished
    FINISHED    counted and handed back; every later event is ignored

`body`, how far the client's request has been read (independent of the phase: a backend may
answer before the body is whole, and a pipelined request may be read whole while queued):

    AWAITING    body to come, and the client waits for 100 Continue before sending it
    RECEIVING   body to come
    RECEIVED    the request was read whole: the next bytes are a new request
"""

from __future__ import annotations

from typing import Final

QUEUED: Final = 0
ROUTING: Final = 1
RESPONDING: Final = 2
RESPONDED: Final = 3
FINISHED: Final = 4

AWAITING: Final = 0
RECEIVING: Final = 1
RECEIVED: Final = 2
