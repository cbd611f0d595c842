"""HEAD wherever GET (RFC 9110 section 9.3.2): the GET's status and headers, without its body."""

from entrypoints.http.limits import App, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: a HEAD request is answered as its GET would be, the body left out.

    FastAPI routes declared for GET do not take HEAD (405). Answering the GET keeps the two
    alike by construction: same status, same headers (Content-Length included), no body. A
    path without a GET answers HEAD as it answers GET: 405, with its Allow header.
    """

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(dict(scope, method="GET"), receive, without_body)
