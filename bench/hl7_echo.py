"""The floor of the HL7 benchmark: a bare asyncio MLLP server that answers every frame with
a constant ACK, without parsing or storing. Same framing code and event loop as the real
listener, so the gap between the two is parsing, the durable write and the ACK builder.

``python bench/hl7_echo.py`` prints ``MLLP listening on HOST:PORT`` and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hl7_listener.mllp import Frame, FrameDecoder, encode  # noqa: E402

ACK = encode(b"MSH|^~\\&|EHR|MAIN|LAB|HOSP|20240101000000||ACK^A01^ACK|1|P|2.5.1\rMSA|AA|1\r")


async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    decoder = FrameDecoder(1024 * 1024)
    try:
        while data := await reader.read(65536):
            for event in decoder.feed(data):
                if isinstance(event, Frame):
                    writer.write(ACK)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"MLLP listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
