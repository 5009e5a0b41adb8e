"""Where `core.http` may connect: the allow-list, and a transport that connects only to vetted addresses.

A workflow author chooses the URL, so the server must not become a way into its
own network (the cloud metadata service at 169.254.169.254, localhost, the
office LAN). Two checks, both failing closed with a PermanentStepError:

- the URL's host must be on CORE_HTTP_ALLOWED_HOSTS, spelled as written there
  (an IP literal on the list is meant as written, internal or not; any other
  spelling of an address, such as `2130706433` or `0x7f000001`, is not on it);
- a listed *name* must resolve only to public addresses (`is_global`, with
  IPv4-mapped and 6to4 IPv6 addresses judged by the IPv4 address inside), and
  the request is then sent to the address that was vetted, with the name kept
  in the Host header and TLS SNI (so certificates are still checked against
  it). The name is resolved once per request, so a DNS answer that changes
  between the check and the connection (rebinding) is never used.

Redirects are never followed (an allowed host could point anywhere), and the
environment's HTTP(S)_PROXY is ignored: a proxy would make the connection on
our behalf, past these checks.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from engine.errors import PermanentStepError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def allowed_hosts(setting: str) -> list[str]:
    """CORE_HTTP_ALLOWED_HOSTS as a list of lower-cased entries."""
    return [entry.strip().lower() for entry in setting.split(",") if entry.strip()]


def allowed_host(host: str, allowed: list[str]) -> bool:
    """Exact names, `*.example.com` for subdomains, or IP literals."""
    host = host.lower().rstrip(".")
    return any(host == entry or (entry.startswith("*.") and host.endswith(entry[1:])) for entry in allowed)


def check_allowed(url: str, allowed: list[str]) -> None:
    """Refuse a URL whose host is not on the allow-list."""
    host = urlsplit(url).hostname or ""
    if not allowed_host(host, allowed):
        listed = ", ".join(allowed) or "none"
        raise PermanentStepError(f"core.http may not call {host}: not in CORE_HTTP_ALLOWED_HOSTS ({listed})")


def is_public(ip: IPAddress) -> bool:
    """True for an address on the public internet (not private, loopback, link-local, shared, reserved, multicast)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return is_public(embedded)
    return ip.is_global and not ip.is_multicast


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def vetted_address(host: str, port: int) -> str:
    """The one address to connect to for `host`: itself if an IP literal, else its resolution, all public.

    Raises:
        PermanentStepError: the name does not resolve, or resolves to an address that is not public.
    """
    if _ip_literal(host) is not None:
        return host  # on the allow-list as written (checked before): meant, even if internal
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PermanentStepError(f"core.http cannot resolve {host}: {exc}") from None
    addresses = [str(info[4][0]).split("%")[0] for info in infos]
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not is_public(ip):
            raise PermanentStepError(f"core.http refuses {host}: it resolves to the internal address {address}")
    if not addresses:
        raise PermanentStepError(f"core.http cannot resolve {host}: no address")
    return addresses[0]


class VettedTransport(httpx.BaseTransport):
    """Sends each request to its host's vetted address (see module docstring), through `inner`."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self._inner = inner if inner is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        address = vetted_address(host, request.url.port or (443 if request.url.scheme == "https" else 80))
        if address != host:
            # httpx set the Host header from the original URL when it built the request; SNI needs saying.
            request.url = request.url.copy_with(host=address)
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def vetted_client(timeout: httpx.Timeout, inner: httpx.BaseTransport | None = None) -> httpx.Client:
    """A client for one core.http call: vetted addresses, no redirects, no proxy from the environment."""
    return httpx.Client(transport=VettedTransport(inner), timeout=timeout, follow_redirects=False, trust_env=False)
