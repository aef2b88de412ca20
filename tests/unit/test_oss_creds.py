"""OSS credential sources: the chain asked again on a schedule and on an expired answer, never
per request; ossutil's config file and profiles; the order the sources are tried in."""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path

import pytest

from objget import DownloadError
from objget.backends import BackendOptions
from objget.backends._oss_auth import OssCredentials, OssRequest
from objget.backends._oss_creds import ChainCredentials, StaticCredentials, key_of
from objget.backends._oss_profile import read_profile
from objget.backends._oss_setup import (
    NativeSigner,
    _used_key,
    credential_source,
    find_credentials,
    resolve_target,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeChain:
    """`get_credential()` as alibabacloud_credentials' Client answers it."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0
        self.fail: Exception | None = None

    def get_credential(self) -> types.SimpleNamespace:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        token = self.tokens[min(self.calls - 1, len(self.tokens) - 1)]
        return types.SimpleNamespace(
            access_key_id=f"STS.{token}",
            access_key_secret=f"secret-{token}",
            security_token=f"tok-{token}",
            type="default",
            provider_name="default/ecs_ram_role",
        )


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("OSS_ENDPOINT", "OSS_REGION", "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OSS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("OSSUTIL_CONFIG_FILE", str(tmp_path / "ossutilconfig"))
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials", None)  # not installed
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials.client", None)


# --- the chain, renewed ------------------------------------------------------------------------
def test_the_chain_is_asked_again_only_after_check_every_not_per_request():
    chain, clock = FakeChain("a", "b", "c"), FakeClock()
    src = ChainCredentials(chain, check_every=60.0, clock=clock)
    assert chain.calls == 1
    for _ in range(1000):
        assert src.current().security_token == "tok-a"
    assert chain.calls == 1
    clock.now += 60.0
    assert src.current().security_token == "tok-b"  # the chain renewed them: used from now on
    assert chain.calls == 2
    assert src.current().security_token == "tok-b" and chain.calls == 2
    assert src.current().source == "Alibaba Cloud credential chain (default/ecs_ram_role)"


def test_a_failing_scheduled_check_keeps_the_credentials_in_hand(caplog):
    chain, clock = FakeChain("a"), FakeClock()
    src = ChainCredentials(chain, check_every=10.0, clock=clock)
    chain.fail = RuntimeError("ECS metadata unreachable")
    clock.now += 10.0
    assert src.current().security_token == "tok-a"
    assert "ECS metadata unreachable" in caplog.text
    assert src.current().security_token == "tok-a" and chain.calls == 2  # next check later


def test_one_thread_asks_the_chain_while_the_others_keep_signing():
    gate, asked = threading.Event(), threading.Event()

    class SlowChain(FakeChain):
        def get_credential(self):
            if self.calls >= 1:
                asked.set()
                assert gate.wait(10)
            return super().get_credential()

    chain, clock = SlowChain("a", "b"), FakeClock()
    src = ChainCredentials(chain, check_every=5.0, clock=clock)
    clock.now += 5.0
    t = threading.Thread(target=src.current)
    t.start()
    assert asked.wait(10)
    assert src.current().security_token == "tok-a"  # not blocked behind the slow refresh
    gate.set()
    t.join(10)
    assert src.current().security_token == "tok-b" and chain.calls == 2


def test_renew_after_an_expired_answer_asks_once_for_all_threads():
    chain, clock = FakeChain("a", "b"), FakeClock()
    src = ChainCredentials(chain, check_every=3600.0, clock=clock)
    used = key_of(src.current())
    assert src.renew(used) is True and chain.calls == 2
    assert src.current().security_token == "tok-b"
    assert src.renew(used) is True and chain.calls == 2  # another worker: already renewed


def test_renew_with_nothing_newer_is_false_and_a_failing_chain_is_an_error():
    chain = FakeChain("a")
    src = ChainCredentials(chain, clock=FakeClock())
    assert src.renew(key_of(src.current())) is False
    chain.fail = RuntimeError("AssumeRole: NoPermission")
    with pytest.raises(DownloadError, match="credential chain failed: .*NoPermission"):
        src.renew(key_of(src.current()))


def test_static_credentials_are_never_renewed():
    src = StaticCredentials(OssCredentials("LTAIk", "sk-secret", "tok-secret"))
    assert src.renew(key_of(src.current())) is False
    assert "sk-secret" not in repr(src) and "tok-secret" not in repr(src)


def test_reprs_and_descriptions_never_show_secrets():
    src = ChainCredentials(FakeChain("zz"), clock=FakeClock())
    signer = NativeSigner(src, version="4", region="cn-hangzhou")
    text = repr(src) + repr(signer) + signer.description
    assert "secret-zz" not in text and "tok-zz" not in text
    assert signer.description.startswith("STS access key ****")


@pytest.mark.parametrize("version", ["1", "4"])
def test_the_signer_renews_the_credentials_a_request_was_signed_with(version):
    chain = FakeChain("a", "b")
    signer = NativeSigner(ChainCredentials(chain, clock=FakeClock()), version=version, region="r")
    request = OssRequest(method="GET", bucket="b", key="k")
    signed = signer.sign(request)
    assert _used_key(signed) == ("STS.a", "tok-a")
    assert signer.renew(signed) is True
    assert _used_key(signer.sign(request)) == ("STS.b", "tok-b")
    assert NativeSigner(None, version=version, region="r").renew(signed) is False


# --- ossutil's config file ---------------------------------------------------------------------
def write_config(tmp_path: Path, text: str) -> None:
    (tmp_path / "ossutilconfig").write_text(text)


def test_ossutil_v1_credentials_section(tmp_path):
    write_config(
        tmp_path,
        "[Credentials]\nlanguage=EN\nendpoint=oss-cn-beijing.aliyuncs.com\n"
        "accessKeyID=LTAIv1\naccessKeySecret=v1-secret\nstsToken=v1-token\n",
    )
    p = read_profile(None)
    assert p is not None
    assert (p.access_key_id, p.access_key_secret, p.security_token) == (
        "LTAIv1",
        "v1-secret",
        "v1-token",
    )
    assert p.endpoint == "oss-cn-beijing.aliyuncs.com" and "v1-secret" not in repr(p)


def test_ossutil_v2_default_and_named_profiles(tmp_path):
    write_config(
        tmp_path,
        "[default]\naccessKeyId = LTAIdef\naccessKeySecret = def-secret\nregion = cn-hangzhou\n\n"
        "[profile dev]\naccess-key-id = LTAIdev\naccess_key_secret = dev-secret\n"
        "region = eu-central-1\n",
    )
    assert read_profile(None).access_key_id == "LTAIdef"
    dev = read_profile("dev")
    assert (dev.access_key_id, dev.access_key_secret, dev.region) == (
        "LTAIdev",
        "dev-secret",
        "eu-central-1",
    )
    with pytest.raises(ValueError, match=r"ossutil profile 'prod' not found.*\[profile prod\]"):
        read_profile("prod")


def test_missing_file_is_nothing_unless_a_profile_was_named(tmp_path):
    assert read_profile(None) is None
    with pytest.raises(ValueError, match="does not exist"):
        read_profile("dev")


def test_an_unreadable_file_is_an_error_that_quotes_no_line(tmp_path):
    write_config(tmp_path, "accessKeySecret=leaked-secret\n[default]\n")
    with pytest.raises(ValueError) as info:
        read_profile(None)
    assert "leaked-secret" not in str(info.value) and "ossutil config" in str(info.value)


def test_a_role_mode_profile_points_at_the_chain(tmp_path):
    write_config(tmp_path, "[default]\nmode = EcsRamRole\nramRoleName = r\n")
    with pytest.raises(ValueError, match="mode 'EcsRamRole'.*credential chain"):
        read_profile(None)


# --- the order: env, then ossutil's file, then the chain ---------------------------------------
def fake_chain(monkeypatch, chain: FakeChain) -> None:
    mod = types.ModuleType("alibabacloud_credentials.client")
    mod.Client = lambda: chain  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials", types.ModuleType("x"))
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials.client", mod)


def test_env_then_ossutil_profile_then_the_chain(monkeypatch, tmp_path):
    chain = FakeChain("c")
    fake_chain(monkeypatch, chain)
    assert find_credentials(BackendOptions()).access_key_id == "STS.c"
    assert isinstance(credential_source(BackendOptions()), ChainCredentials)
    write_config(tmp_path, "[default]\naccessKeyId=LTAIfile\naccessKeySecret=s\n")
    creds = find_credentials(BackendOptions())
    assert creds.access_key_id == "LTAIfile" and "ossutilconfig [default]" in creds.source
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "LTAIenv")
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "e")
    assert find_credentials(BackendOptions()).access_key_id == "LTAIenv"
    assert find_credentials(BackendOptions(anonymous=True)) is None


def test_a_default_profile_without_keys_leaves_them_to_the_chain(monkeypatch, tmp_path):
    fake_chain(monkeypatch, FakeChain("c"))
    write_config(tmp_path, "[default]\nregion = cn-shanghai\n")
    assert find_credentials(BackendOptions()).access_key_id == "STS.c"
    target, region = resolve_target("bkt", BackendOptions())  # the profile's region is used
    assert (target.endpoint, region) == ("https://oss-cn-shanghai.aliyuncs.com", "cn-shanghai")
    assert resolve_target("bkt", BackendOptions(region="us-west-1"))[1] == "us-west-1"
    with pytest.raises(ValueError, match="no accessKeyId"):
        write_config(tmp_path, "[profile dev]\nregion = cn-shanghai\n")
        find_credentials(BackendOptions(profile="dev"))
