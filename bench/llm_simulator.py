"""An OpenAI-compatible chat-completions server for benchmarks: no model, just the protocol and a provider's habits.

    python bench/llm_simulator.py --port 18900 --latency-ms 0 --rpm 0 --error-rate 0

- answers `tools` calls with arguments filled from the tool's JSON schema (strings and numbers taken from the
  user's text, so values can be grounded), and plain calls with a short text;
- `--latency-ms` per call, `--rpm` requests a minute (a sliding minute; over it: 429 with Retry-After),
  `--error-rate` injected 500s;
- counts requests, rejections, errors, tokens and the most calls ever in flight: `GET /stats`, `POST /reset`;
- `POST /configure` with `{"error_rate": 0.2}` or `{"outage_seconds": 60}` (every call a 503 for that long) changes
  its habits while it runs.

Benchmarks only: CoderAI never uses it unless pointed at it as an `openai_compatible` provider.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
import uuid
from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_WORDS = re.compile(r"[A-Z][a-z]{2,}")
_NUMBERS = re.compile(r"\d[\d,]*")


class Simulator:
    def __init__(self, latency_ms: float = 0, rpm: int = 0, error_rate: float = 0.0, context: int = 128_000):
        self.latency = latency_ms / 1000
        self.rpm = rpm
        self.error_rate = error_rate
        self.context = context
        self.random = random.Random(0)
        self.outage_until = 0.0
        self.reset()

    def reset(self) -> None:
        self.window: deque[float] = deque()
        self.stats = {
            "requests": 0,
            "ok": 0,
            "rate_limited": 0,
            "errors": 0,
            "in_flight": 0,
            "max_in_flight": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
        }

    def admit(self) -> float | None:
        """None when the call may go ahead, else the seconds to wait (the Retry-After)."""
        if not self.rpm:
            return None
        now = time.monotonic()
        while self.window and now - self.window[0] >= 60:
            self.window.popleft()
        if len(self.window) >= self.rpm:
            return 60 - (now - self.window[0])
        self.window.append(now)
        return None


def _fill(schema: dict[str, Any], text: str, words: list[str], numbers: list[str]) -> Any:
    if "anyOf" in schema:
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _fill(kinds[0], text, words, numbers) if kinds else None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if "enum" in schema:
        return next((v for v in schema["enum"] if v is not None), None)
    if kind == "object":
        return {
            name: _fill(prop, text, words, numbers)
            for name, prop in (schema.get("properties") or {}).items()
            if name not in ("quotes", "confidence")
        }
    if kind == "array":
        return [_fill(schema.get("items") or {"type": "string"}, text, words, numbers)] if words else []
    if kind == "boolean":
        return "not" not in text
    if kind in ("integer", "number"):
        return int(numbers[0].replace(",", "")) if numbers else None
    if kind == "string":
        return words[0] if words else None
    return None


def answer(body: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
    messages = body.get("messages") or []
    prompt = "\n".join(str(m.get("content") or "") for m in messages)
    user = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), prompt)
    words, numbers = _WORDS.findall(user), _NUMBERS.findall(user)
    prompt_tokens = len(prompt) // 4 + len(json.dumps(body.get("tools") or [])) // 4
    tools = body.get("tools") or []
    if tools:
        function = tools[0]["function"]
        arguments = json.dumps(_fill(function.get("parameters") or {}, user, words, numbers))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{uuid.uuid4().hex[:12]}",
                    "type": "function",
                    "function": {"name": function["name"], "arguments": arguments},
                }
            ],
        }
        completion_tokens, finish = len(arguments) // 4 + 1, "tool_calls"
    else:
        message = {"role": "assistant", "content": " ".join(words[:5]) or "ok"}
        completion_tokens, finish = 5, "stop"
    return (
        {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "simulator",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
        prompt_tokens,
        completion_tokens,
    )


def create_app(simulator: Simulator) -> Starlette:
    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        stats = simulator.stats
        stats["requests"] += 1
        wait = simulator.admit()
        if wait is not None:
            stats["rate_limited"] += 1
            return JSONResponse(
                {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
                status_code=429,
                headers={"Retry-After": f"{max(1, round(wait))}", "retry-after-ms": f"{int(wait * 1000)}"},
            )
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            if simulator.latency:
                await asyncio.sleep(simulator.latency)
            if time.monotonic() < simulator.outage_until:
                stats["errors"] += 1
                return JSONResponse({"error": {"message": "outage", "type": "server_error"}}, 503)
            if simulator.error_rate and simulator.random.random() < simulator.error_rate:
                stats["errors"] += 1
                return JSONResponse({"error": {"message": "injected error", "type": "server_error"}}, 500)
            payload, prompt_tokens, completion_tokens = answer(body)
            stats["ok"] += 1
            stats["prompt_tokens"] += prompt_tokens
            stats["completion_tokens"] += completion_tokens
            return JSONResponse(payload)
        finally:
            stats["in_flight"] -= 1

    async def models(request: Request) -> JSONResponse:
        return JSONResponse(
            {"object": "list", "data": [{"id": "simulator", "object": "model", "context_length": simulator.context}]}
        )

    async def get_stats(request: Request) -> JSONResponse:
        return JSONResponse(simulator.stats)

    async def reset(request: Request) -> JSONResponse:
        simulator.reset()
        return JSONResponse(simulator.stats)

    async def configure(request: Request) -> JSONResponse:
        body = await request.json()
        if "error_rate" in body:
            simulator.error_rate = float(body["error_rate"])
        if "outage_seconds" in body:
            simulator.outage_until = time.monotonic() + float(body["outage_seconds"])
        return JSONResponse({"error_rate": simulator.error_rate})

    return Starlette(
        routes=[
            Route("/configure", configure, methods=["POST"]),
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models),
            Route("/stats", get_stats),
            Route("/reset", reset, methods=["POST"]),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18900)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--rpm", type=int, default=0, help="requests a minute; 0: unlimited")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--context", type=int, default=128_000)
    args = parser.parse_args()
    simulator = Simulator(args.latency_ms, args.rpm, args.error_rate, args.context)
    uvicorn.run(create_app(simulator), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
