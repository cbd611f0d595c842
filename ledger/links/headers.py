"""The headers that make a message one-click unsubscribable (RFC 8058), around a link's token."""

from urllib.parse import quote

from schemas import Model

__all__ = ["ONE_CLICK_BODY", "UnsubscribeHeaders", "unsubscribe_headers"]

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
"""RFC 8058 section 3.1: the header value, and the form body a mail client POSTs."""


class UnsubscribeHeaders(Model):
    """The two header values that make a message one-click unsubscribable (RFC 8058)."""

    list_unsubscribe: str
    list_unsubscribe_post: str = ONE_CLICK_BODY

    def lines(self) -> str:
        return (
            f"List-Unsubscribe: {self.list_unsubscribe}\n"
            f"List-Unsubscribe-Post: {self.list_unsubscribe_post}"
        )


def unsubscribe_headers(
    token: str, *, public_url: str, mailto: str | None = None
) -> UnsubscribeHeaders:
    """``List-Unsubscribe`` naming ``{public_url}/u/{token}`` (and a mailto if given).

    RFC 8058 needs the HTTPS URI; a mailto is the fallback for clients without one-click. The
    mailto's subject carries the token so the mailbox that receives it can honour it.
    """
    uris = [f"<{public_url.rstrip('/')}/u/{token}>"]
    if mailto is not None:
        uris.append(f"<mailto:{quote(mailto, safe='@')}?subject=unsubscribe%20{token}>")
    return UnsubscribeHeaders(list_unsubscribe=", ".join(uris))
