"""The raters' web application (Starlette, served by uvicorn).

Routes (``TOKEN`` is the secret of a rater's link, ``ID`` a hidden 12-hex-digit audio id):

- ``GET /`` a short page telling a visitor to open the link they were given;
- ``GET /r/TOKEN`` the rating page (``static/index.html``; 404 for an unknown token);
- ``GET /static/...`` the page's script and style sheet (package data, served by StaticFiles);
- ``GET /api/TOKEN/state`` progress and the next screen (JSON);
- ``POST /api/TOKEN/start`` the rater has read the instructions;
- ``POST /api/TOKEN/rate`` one answer ``{position, stimulus, rel, ovl, listened_ms}``;
- ``POST /api/TOKEN/check`` the volume/headphone check ``{kind: "headphones", answers}`` or that the
  training page was seen ``{kind: "training"}`` (see :meth:`Store.check`);
- ``GET /api/TOKEN/audio/ID.wav`` a clip of the rater's own plan (anything else is 404). The file
  is read before anything is sent: a playback copy that cannot be read is answered 404 ("could not
  be loaded") with one line in the server's log, and the play is recorded only once the file was
  read, so a rating never counts a clip the rater could not hear.

Every request is bounded: a POST body larger than ``MAX_BODY`` bytes (checked on the declared
length and again while reading) is refused with 413, a body that is not a JSON object with 400
or 415 (a JSON body nested too deeply for the parser is 400 too), and nothing is stored for a
refused request (see :meth:`Store.rate`). Any other failure of a request (a database another
process holds, a damaged file) is answered 503 with one line in the log, never a traceback. Responses carry a
strict Content-Security-Policy (own scripts and media only), ``Referrer-Policy: no-referrer`` (the
token is in the address) and ``Cache-Control: no-store`` for the API. The server binds
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
from importlib import resources
from pathlib import Path

from lasskit.errors import LasskitError
from lasskit.listening.layout import ListenSpec, serving
from lasskit.listening.scales import WEB_NOTES
from lasskit.listening.store import Refused, Store

log = logging.getLogger("uvicorn.error")  # uvicorn's own logger: one line, its format

MAX_BODY = 4096
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; "
                                 b"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
                                 b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
]


def static_dir() -> Path:
    return Path(str(resources.files("lasskit.listening") / "static"))


def simple_page(title: str, paragraphs: list[str]) -> str:
    """A small styled page (home, unknown link) readable on a phone; texts are escaped."""
    import html

    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><link rel=stylesheet href=\"/static/style.css\"></head>"
            f"<body><main><section><h1>{html.escape(title)}</h1>{body}</section></main></body></html>")


class _Headers:
    """ASGI middleware adding the security headers to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(spec: ListenSpec):
    """The Starlette application serving ``spec``'s raters."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    store = Store(spec)
    store.wait = 15.0  # concurrent raters: wait for each other's short transactions
    store.init()
    page = (static_dir() / "index.html").read_text(encoding="utf-8")
    no_store = {"cache-control": "no-store"}

    def refused(exc: Refused):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=no_store)

    async def read_json(request):
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            raise Refused(413, f"request too large (at most {MAX_BODY} bytes)")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise Refused(415, "send the answer as application/json")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise Refused(413, f"request too large (at most {MAX_BODY} bytes)")
        try:
            return json.loads(bytes(body).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "the answer is not valid JSON")
        except RecursionError:
            raise Refused(400, "the answer is nested too deeply")

    def guarded(handler):
        """Refusals as their status; any other failure as 503 and one log line (no traceback)."""
        @functools.wraps(handler)
        async def run(request):
            try:
                return await handler(request)
            except Refused as exc:
                return refused(exc)
            except LasskitError as exc:
                log.warning("request failed: %s", exc)
                return JSONResponse({"error": "the server cannot answer now; try again in a moment"},
                                    status_code=503, headers=no_store)
            except Exception as exc:  # one line, never a traceback, never the token
                log.warning("%s request failed: %s: %s", request.method, type(exc).__name__, str(exc)[:200])
                return JSONResponse({"error": "the server failed; try again in a moment"}, status_code=500,
                                    headers=no_store)
        return run

    async def home(request):
        return HTMLResponse(simple_page("Listening test", [
            "This server hosts a listening test. Please open the personal link you were given."]))

    async def favicon(request):
        return Response(status_code=204)

    async def rater_page(request):
        try:
            await run_in_threadpool(store.rater_of, request.path_params["token"])
        except Refused as exc:
            return HTMLResponse(simple_page("Unknown link", [
                exc.message[:1].upper() + exc.message[1:] + "."]), status_code=404)
        return HTMLResponse(page, headers=no_store)

    async def state(request):
        try:
            data = await run_in_threadpool(store.state, request.path_params["token"])
        except Refused as exc:
            return refused(exc)
        data["scales"] = spec.data["scales"]
        data["notes"] = WEB_NOTES
        return JSONResponse(data, headers=no_store)

    async def start(request):
        try:
            await read_json(request)
            data = await run_in_threadpool(store.start, request.path_params["token"])
        except Refused as exc:
            return refused(exc)
        return JSONResponse(data, headers=no_store)

    async def rate(request):
        try:
            store.rater_of(request.path_params["token"])
            answer = await read_json(request)
            data = await run_in_threadpool(store.rate, request.path_params["token"], answer)
        except Refused as exc:
            return refused(exc)
        return JSONResponse(data, headers=no_store)

    async def check(request):
        store.rater_of(request.path_params["token"])
        answer = await read_json(request)
        data = await run_in_threadpool(store.check, request.path_params["token"], answer)
        return JSONResponse(data, headers=no_store)

    async def audio(request):
        token, audio_id = request.path_params["token"], request.path_params["audio"]
        path = await run_in_threadpool(store.audio_file, token, audio_id)
        try:
            data = await run_in_threadpool(Path(path).read_bytes)
        except OSError as exc:
            log.warning("playback copy %s could not be read (%s); a rater's clip was not delivered", path,
                        exc.strerror or type(exc).__name__)
            raise Refused(404, "the clip could not be loaded")
        await run_in_threadpool(store.record_play, token, audio_id)
        return Response(data, media_type="audio/wav", headers={"cache-control": "private, max-age=3600"})

    routes = [
        Route("/", home),
        Route("/favicon.ico", favicon),
        Route("/r/{token}", guarded(rater_page)),
        Route("/api/{token}/state", guarded(state)),
        Route("/api/{token}/start", guarded(start), methods=["POST"]),
        Route("/api/{token}/rate", guarded(rate), methods=["POST"]),
        Route("/api/{token}/check", guarded(check), methods=["POST"]),
        Route("/api/{token}/audio/{audio}.wav", guarded(audio)),
        Mount("/static", app=StaticFiles(directory=static_dir()), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Headers)])


def bind(host: str = "127.0.0.1", port: int = 8765) -> socket.socket:
    """A listening socket (``port`` 0: any free port)."""
    from lasskit.errors import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port or --host")
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(spec: ListenSpec, sock: socket.socket):
    """A uvicorn server for ``spec`` on ``sock`` (call ``.run(sockets=[sock])``; set
    ``.should_exit`` to stop it)."""
    import uvicorn

    config = uvicorn.Config(
        create_app(spec), log_level="warning", access_log=False, limit_concurrency=100,
        timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024, lifespan="off",
    )
    return uvicorn.Server(config)


def serve(spec: ListenSpec, host: str = "127.0.0.1", port: int = 8765, on_ready=None) -> None:
    """Serve until interrupted. ``on_ready(base_url)`` is called once the socket is bound."""
    sock = bind(host, port)
    base = f"http://{'[' + host + ']' if ':' in host else host}:{sock.getsockname()[1]}"
    server = make_server(spec, sock)
    with serving(spec.root):  # `listen create --force` refuses to replace a test while it is served
        if on_ready is not None:
            on_ready(base)
        server.run(sockets=[sock])
