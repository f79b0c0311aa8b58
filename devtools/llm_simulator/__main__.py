"""python -m devtools.llm_simulator --host 127.0.0.1 --port 8092"""

from __future__ import annotations

import argparse
import asyncio

from devtools.llm_simulator.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible LLM provider simulator for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
