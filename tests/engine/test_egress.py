"""Where core.http may connect: public addresses only, and only the address that was vetted.

The transport is tested with a recording inner transport (httpx.MockTransport) and
a patched resolver, so no test here needs DNS or the internet; the end-to-end
refusals through a workflow are in tests/test_language.py.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from engine.egress import VettedTransport, is_public, vetted_address, vetted_client
from engine.errors import PermanentStepError

PUBLIC, PRIVATE = "93.184.215.14", "169.254.169.254"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("::ffff:93.184.215.14", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # AWS, GCP and Azure metadata
        ("100.100.100.200", False),  # Alibaba Cloud metadata: 100.64.0.0/10, shared address space
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),  # multicast counts as "global" to Python, not to us
        ("::1", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),  # AWS metadata over IPv6 (unique local)
        ("::ffff:169.254.169.254", False),  # IPv4-mapped: judged by the IPv4 address inside
        ("::ffff:127.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("2002:a9fe:a9fe::", False),  # 6to4 wrapping 169.254.169.254
    ],
)
def test_only_public_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def resolver(*answers: list[str]) -> tuple[Callable[..., list[Any]], list[str]]:
    """A getaddrinfo that gives each answer in turn (the last one from then on), recording each name asked."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        addresses = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    return getaddrinfo, asked


class Recorder:
    """The inner transport: records where each request would have connected."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200, json={"ok": True})


def test_a_name_is_sent_to_the_address_that_was_vetted_even_if_dns_changes_its_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a name whose DNS answers public first and the metadata address after (rebinding)
    getaddrinfo, asked = resolver([PUBLIC], [PRIVATE])
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    recorder = Recorder()
    with vetted_client(httpx.Timeout(5), inner=httpx.MockTransport(recorder)) as client:
        # When a request is sent
        response = client.get("https://hooks.example.com/notify?x=1")
        # Then it went to the vetted public address, resolved once, still named in Host and SNI
        assert response.status_code == 200 and asked == ["hooks.example.com"]
        (sent,) = recorder.sent
        assert (sent.url.host, sent.url.port, sent.url.path, sent.url.query) == (PUBLIC, None, "/notify", b"x=1")
        assert sent.headers["Host"] == "hooks.example.com"
        assert sent.extensions["sni_hostname"] == "hooks.example.com"
        # And the next request, which resolves to the private address, is refused before any connection
        with pytest.raises(PermanentStepError, match=re.escape(f"resolves to the internal address {PRIVATE}")):
            client.get("https://hooks.example.com/notify")
        assert len(recorder.sent) == 1


@pytest.mark.parametrize(
    "addresses",
    [[PRIVATE], [PUBLIC, "10.0.0.7"], ["::ffff:169.254.169.254"], ["100.100.100.200"], ["fe80::1%eth0"]],
)
def test_a_name_with_any_internal_address_is_refused(monkeypatch: pytest.MonkeyPatch, addresses: list[str]) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", resolver(addresses)[0])
    with pytest.raises(
        PermanentStepError, match=re.escape("core.http refuses metadata.example.com: it resolves to the internal")
    ):
        vetted_address("metadata.example.com", 80)


def test_a_name_that_does_not_resolve_is_a_clear_permanent_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def nowhere(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nowhere)
    with pytest.raises(PermanentStepError, match=re.escape("core.http cannot resolve crm.example.com")):
        vetted_address("crm.example.com", 443)


def test_an_ip_literal_is_used_as_written_without_resolving(monkeypatch: pytest.MonkeyPatch) -> None:
    # (Only literals on the allow-list get this far: engine/builtins checks the list first.)
    getaddrinfo, asked = resolver([PRIVATE])
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    recorder = Recorder()
    with httpx.Client(transport=VettedTransport(httpx.MockTransport(recorder))) as client:
        client.get("http://127.0.0.1:8080/x")
    assert (
        asked == [] and recorder.sent[0].url.host == "127.0.0.1" and "sni_hostname" not in recorder.sent[0].extensions
    )


def test_the_client_neither_follows_redirects_nor_uses_a_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setattr(socket, "getaddrinfo", resolver([PUBLIC])[0])
    recorder = Recorder()

    def redirect(request: httpx.Request) -> httpx.Response:
        recorder(request)
        return httpx.Response(302, headers={"Location": f"http://{PRIVATE}/latest/meta-data/"})

    with vetted_client(httpx.Timeout(5), inner=httpx.MockTransport(redirect)) as client:
        response = client.get("https://hooks.example.com/")
    assert response.status_code == 302 and len(recorder.sent) == 1
