"""Which proxy a URL goes through (`backends/_proxy.py`): the environment read as curl reads
it, `DownloadConfig.proxy` / `no_proxy` replacing it, curl's NO_PROXY syntax (plus ports and
CIDR), and proxy credentials never shown."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objget import DownloadConfig
from objget.backends._proxy import match_no_proxy, parse_proxy, proxy_rules

P1, P2, P3 = "http://p1:3128", "http://p2:8080", "http://p3:1"


def chosen(env: dict[str, str], url: str, proxy: str | None = None, no: str | None = None):
    found = proxy_rules(proxy, no, env).for_url(url)
    return found.url if found else None


def test_http_proxy_is_read_lowercase_only_as_curl():
    assert chosen({"HTTP_PROXY": P1}, "http://h/x") is None  # httpoxy: a CGI request header
    assert chosen({"http_proxy": P1}, "http://h/x") == P1
    assert chosen({"HTTP_PROXY": P1, "http_proxy": P2}, "http://h/x") == P2
    assert chosen({"http_proxy": P1}, "https://h/x") is None


def test_https_proxy_either_case_lowercase_first():
    assert chosen({"HTTPS_PROXY": P1}, "https://h/x") == P1
    assert chosen({"https_proxy": P2, "HTTPS_PROXY": P1}, "https://h/x") == P2
    assert chosen({"https_proxy": "", "HTTPS_PROXY": P1}, "https://h/x") is None  # set wins
    assert chosen({"https_proxy": P1}, "http://h/x") is None


def test_all_proxy_fills_in_for_a_scheme_without_its_own():
    env = {"ALL_PROXY": P3, "https_proxy": P1}
    assert chosen(env, "http://h/x") == P3
    assert chosen(env, "https://h/x") == P1
    assert chosen({"all_proxy": P2, "ALL_PROXY": P3}, "http://h/x") == P2
    assert chosen({"http_proxy": "", "all_proxy": P2}, "http://h/x") is None


def test_config_replaces_the_environment():
    env = {"http_proxy": P1, "https_proxy": P1, "NO_PROXY": "h"}
    assert chosen(env, "http://h/x", proxy=P2) is None  # NO_PROXY still applies, as in curl
    assert chosen(env, "http://h/x", proxy=P2, no="") == P2
    assert chosen(env, "https://other/x", proxy=P2) == P2
    assert chosen(env, "https://other/x", proxy="") is None
    assert chosen(env, "http://h/x", no="") == P1


def test_no_proxy_lowercase_first():
    env = {"http_proxy": P1, "no_proxy": "a", "NO_PROXY": "h"}
    assert chosen(env, "http://h/x") == P1
    assert chosen(env, "http://a/x") is None


@pytest.mark.parametrize(
    ("host", "port", "rule", "hit"),
    [
        ("example.com", 80, "example.com", True),
        ("www.example.com", 80, "example.com", True),
        ("www.example.com", 80, ".example.com", True),
        ("example.com", 80, ".example.com", True),
        ("notexample.com", 80, "example.com", False),
        ("notexample.com", 80, ".example.com", False),
        ("EXAMPLE.com.", 80, "Example.COM", True),
        ("anything", 443, "*", True),
        ("h", 80, "a, b  h", True),
        ("h", 80, "a,,b", False),
        ("h", 8080, "h:8080", True),
        ("h", 80, "h:8080", False),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("127.0.0.1", 80, "127.0.0.1", True),
        ("127.0.0.10", 80, "127.0.0.1", False),  # an address is not a name suffix
        ("::1", 80, "::1", True),
        ("[::1]", 80, "[::1]:80", True),
        ("fd00::5", 80, "fd00::/8", True),
        ("10.1.2.3", 80, "fd00::/8", False),
        ("1.2.3.4", 80, "3.4", False),
        ("h", 80, "", False),
    ],
)
def test_no_proxy_matching(host, port, rule, hit):
    assert match_no_proxy(host, port, rule) is hit


@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=32))
def test_cidr_matches_what_ipaddress_says(addr, bits):
    net = ipaddress.ip_network(f"{addr}/{bits}", strict=False)
    inside = net.network_address
    assert match_no_proxy(str(inside), 80, str(net))
    assert match_no_proxy(str(addr), 80, str(net))


def test_parse_proxy_forms_and_errors():
    assert parse_proxy("p:3128").url == "http://p:3128"
    assert parse_proxy("http://p").port == 1080  # curl's default proxy port
    assert parse_proxy("http://[::1]:3128").url == "http://[::1]:3128"
    for bad in ("socks5://u:s3cret@p:1080", "https://u:s3cret@p:443", "http://u:s3cret@:1",
                "http://u:s3cret@p:99999", "http://u:s3cret@p:1/path"):  # fmt: skip
        with pytest.raises(ValueError) as info:
            parse_proxy(bad)
        assert "s3cret" not in str(info.value)


def test_proxy_credentials_become_basic_auth_and_are_never_shown():
    p = parse_proxy("http://al%40ice:pa%3Ass@p:3128")
    token = base64.b64encode(b"al@ice:pa:ss").decode()
    assert p.headers() == {"Proxy-Authorization": f"Basic {token}"}
    assert parse_proxy("http://p:1").headers() == {}
    for text in (repr(p), str(p), p.shown, p.url, repr(proxy_rules(None, None, {"http_proxy":
                 "http://u:pa%3Ass@p:1"}))):  # fmt: skip
        assert "pa" not in text.replace("p:", "").replace("http", "")
    config = DownloadConfig(proxy="http://u:topsecret@p:3128")
    assert "topsecret" not in repr(config) and "REDACTED@p:3128" in repr(config)
    with pytest.raises(ValueError) as info:
        DownloadConfig(proxy="socks5://u:topsecret@p:1")
    assert "topsecret" not in str(info.value)


def test_unusual_urls_go_direct():
    rules = proxy_rules(P1, "", {})
    assert rules.for_url("ftp://h/x") is None
    assert rules.for_url("http://h:notaport/x") is None
    assert rules.for_url("http://h/x") is not None


def test_an_unusable_proxy_variable_is_named_in_the_error():
    with pytest.raises(ValueError, match="^HTTPS_PROXY: the socks5:// scheme") as info:
        proxy_rules(None, None, {"HTTPS_PROXY": "socks5://u:s3cret@p:1"})
    assert "s3cret" not in str(info.value)
    with pytest.raises(ValueError, match="^all_proxy: "):
        proxy_rules(None, None, {"all_proxy": "socks5://p:1"})
    assert (
        proxy_rules(
            None, None, {"all_proxy": "socks5://p:1"} | {"http_proxy": P1, "https_proxy": ""}
        ).http
        is not None
    )
