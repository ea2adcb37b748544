"""`POST /v1/audio/speech`: routed and failed over like chat, relayed as raw audio, never a cut file that looks whole.

The chain: OpenAI, Groq (WAV only, a voice map), Gemini (maps tts-1 but has no speech: never sent
it), and a local OpenAI-compatible TTS server as the last resort. The client is the official SDK,
used as the seed's pipeline used it: `with_streaming_response.create(...)` then `stream_to_file`.
"""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from gateway.errors import ConfigError
from gateway.settings import load_config
from tests import payloads
from tests.conftest import ADMIN, KEY_ENV, config_dict, wait_for
from tests.fakes import FakeUpstream, Reply, error

PATH = "/v1/audio/speech"
TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def _kokoro_server():
    server = FakeUpstream("openai", name="kokoro")
    yield server
    server.close()


@pytest.fixture
def kokoro(_kokoro_server):
    _kokoro_server.reset()
    return _kokoro_server


def speech_config(fakes, kokoro, **groq):
    config = config_dict(fakes, order=("openai", "groq", "gemini"))
    openai_, groq_, gemini = config["providers"]
    openai_["models"]["tts-1"] = "tts-1"
    groq_["models"]["tts-1"] = "canopylabs/orpheus-v1-english"
    groq_["voices"] = groq.get("voices", {"alloy": "troy", "default": "autumn"})
    gemini["models"]["tts-1"] = "gemini-2.5-flash-preview-tts"
    local = {"name": "kokoro", "flavor": "openai", "base_url": kokoro.base_url, "models": {"tts-1": "kokoro"}}
    config["providers"].append({**local, "api_key_env": KEY_ENV["openai"], "last_resort": True})
    return config


def speak(gateway, path, **fields):
    """The seed's call pattern."""
    request = {"model": "tts-1", "voice": "alloy", "input": TEXT, **fields}
    with gateway.client().audio.speech.with_streaming_response.create(**request) as response:
        response.stream_to_file(path)
        return response.headers


def test_out_of_quota_the_file_is_byte_for_byte_what_the_fallback_sent(fakes, kokoro, start_gateway, tmp_path):
    gateway = start_gateway(speech_config(fakes, kokoro))
    fakes["openai"].script(error("openai-429-insufficient-quota"), path=PATH)
    headers = speak(gateway, tmp_path / "out.wav", response_format="wav")
    assert (tmp_path / "out.wav").read_bytes() == b"".join(payloads.speech_audio("groq"))
    assert headers["x-gateway-provider"] == "groq" and headers["content-type"] == "audio/wav"
    sent = fakes["groq"].last().json
    assert sent["model"] == "canopylabs/orpheus-v1-english" and sent["voice"] == "troy"  # the voice map
    assert fakes["gemini"].calls(PATH) == 0  # it maps tts-1, but Gemini has no speech
    line = gateway.line(1)
    assert line["provider"] == "groq" and line["characters"] == len(TEXT)
    assert [(s["provider"], s["reason"]) for s in line["skipped"]] == [("openai", "quota_exhausted")]
    assert line["cost_usd"] == pytest.approx(len(TEXT) * 2.2e-05)  # litellm's price per character
    # Benched for the quota: the next one goes straight to the fallback.
    speak(gateway, tmp_path / "again.wav", response_format="wav")
    assert fakes["openai"].calls(PATH) == 1


def test_the_primary_serves_with_its_own_content_type_and_the_clients_voice(fakes, kokoro, start_gateway, tmp_path):
    gateway = start_gateway(speech_config(fakes, kokoro))
    headers = speak(gateway, tmp_path / "out.mp3")
    assert (tmp_path / "out.mp3").read_bytes() == b"".join(payloads.speech_audio("openai"))
    assert headers["content-type"] == "audio/mpeg" and "content-length" not in headers
    assert fakes["openai"].last().json == {"model": "tts-1", "voice": "alloy", "input": TEXT}
    assert gateway.line(1)["cost_usd"] == pytest.approx(len(TEXT) * 1.5e-05)


def test_a_provider_that_cannot_produce_the_format_is_skipped(fakes, kokoro, start_gateway, tmp_path):
    gateway = start_gateway(speech_config(fakes, kokoro))
    fakes["openai"].script(error("openai-429-insufficient-quota"), path=PATH)
    headers = speak(gateway, tmp_path / "out.mp3")  # no response_format: mp3, which Groq cannot make
    assert headers["x-gateway-provider"] == "kokoro"
    assert (tmp_path / "out.mp3").read_bytes() == b"".join(payloads.speech_audio("kokoro"))
    assert fakes["groq"].calls(PATH) == 0  # it would only have answered 400
    assert fakes["openai"].last().json["voice"] == "alloy"  # no voice map: the client's voice
    assert kokoro.last().json["voice"] == "alloy" and kokoro.last().json["model"] == "kokoro"
    skipped = {(s["provider"], s["reason"]) for s in gateway.line(1)["skipped"]}
    assert skipped == {("openai", "quota_exhausted"), ("groq", "unsupported_format")}


def test_a_voice_the_map_lacks_uses_its_default_or_skips_the_provider(fakes, kokoro, start_gateway, tmp_path):
    gateway = start_gateway(speech_config(fakes, kokoro))
    fakes["openai"].script(*[error("openai-429-insufficient-quota")] * 2, path=PATH)
    speak(gateway, tmp_path / "a.wav", voice="nova", response_format="wav")
    assert fakes["groq"].last().json["voice"] == "autumn"  # its default
    config = speech_config(fakes, kokoro, voices={"alloy": "troy"})
    other = start_gateway(config)
    headers = speak(other, tmp_path / "b.wav", voice="nova", response_format="wav")
    assert headers["x-gateway-provider"] == "kokoro"
    assert ("groq", "unsupported_voice") in [(s["provider"], s["reason"]) for s in other.line(1)["skipped"]]


def test_when_no_provider_can_make_the_format_it_is_a_400_not_a_wait(fakes, start_gateway):
    config = config_dict(fakes, order=("groq",))
    config["providers"][0]["models"]["tts-1"] = "canopylabs/orpheus-v1-english"
    gateway = start_gateway(config)
    with pytest.raises(openai.BadRequestError) as raised:
        gateway.client().audio.speech.create(model="tts-1", voice="troy", input=TEXT, response_format="flac")
    error_ = raised.value.body
    assert error_["param"] == "response_format" and "groq: produces only wav (asked for flac)" in error_["message"]
    assert fakes["groq"].calls(PATH) == 0


def test_a_cut_after_the_first_bytes_fails_the_download(fakes, kokoro, start_gateway, tmp_path):
    gateway = start_gateway(speech_config(fakes, kokoro))
    audio = payloads.speech_audio("openai")
    cut = Reply(events=audio, headers={"content-type": "audio/mpeg"}, stop_after=2, drop_mid_stream=True)
    fakes["openai"].script(cut, path=PATH)
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        speak(gateway, tmp_path / "cut.mp3")
    line = gateway.line(1)
    assert line["provider"] == "openai" and line["outcome"] == "stream_broken"
    # Nothing else was tried: the audio had started; and the next request is served whole.
    assert fakes["groq"].calls(PATH) == 0 and kokoro.calls(PATH) == 0
    speak(gateway, tmp_path / "whole.mp3")
    assert (tmp_path / "whole.mp3").read_bytes() == b"".join(audio)


def test_a_stall_after_the_first_bytes_fails_the_download(fakes, kokoro, start_gateway, tmp_path):
    config = speech_config(fakes, kokoro)
    config["timeouts"]["total_s"] = 0.5
    gateway = start_gateway(config)
    audio = payloads.speech_audio("openai")
    fakes["openai"].script(Reply(events=audio, headers={"content-type": "audio/mpeg"}, stop_after=1), path=PATH)
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        speak(gateway, tmp_path / "stalled.mp3")
    assert gateway.line(1)["outcome"] == "stream_broken"


def test_a_failure_before_the_first_bytes_fails_over(fakes, kokoro, start_gateway, tmp_path):
    gateway = start_gateway(speech_config(fakes, kokoro))
    not_audio = Reply(body=b'{"error":{"message":"The server had an error","type":"server_error"}}')
    fakes["openai"].script(not_audio, path=PATH)  # an error under a 200
    fakes["groq"].script(Reply(status=503, body=b'{"error":{"message":"busy"}}'), path=PATH)
    headers = speak(gateway, tmp_path / "out.wav", response_format="wav")
    assert headers["x-gateway-provider"] == "kokoro"
    assert (tmp_path / "out.wav").read_bytes() == b"".join(payloads.speech_audio("kokoro"))


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": "x" * 4097}, "input"),
        ({"voice": None}, "voice"),
        ({"response_format": "ogg"}, "response_format"),
        ({"speed": 5}, "speed"),
        ({"stream_format": "sse"}, "stream_format"),
    ],
)
def test_a_bad_request_is_answered_before_any_provider_sees_it(fakes, kokoro, start_gateway, fields, param):
    gateway = start_gateway(speech_config(fakes, kokoro))
    body = {"model": "tts-1", "voice": "alloy", "input": TEXT, **fields}
    response = httpx.post(f"{gateway.url}{PATH}", json={k: v for k, v in body.items() if v is not None}, timeout=5)
    assert response.status_code == 400 and response.json()["error"]["param"] == param
    assert fakes["openai"].calls(PATH) == 0


def test_a_format_no_provider_makes_is_a_config_error(tmp_path):
    path = tmp_path / "providers.yaml"
    entry = "{name: groq, flavor: groq, base_url: 'http://127.0.0.1:1/v1', api_key_env: K, models: {tts-1: x}"
    path.write_text(f"providers:\n  - {entry}, response_formats: [ogg]}}\n")
    with pytest.raises(ConfigError, match=r"providers\[0\]\.response_formats\[0\]"):
        load_config(path)


def test_speech_usage_is_read_in_characters_through_the_sdk(fakes, kokoro, start_gateway, tmp_path):
    gateway = start_gateway(speech_config(fakes, kokoro), admin_key=ADMIN)
    fakes["openai"].script(error("openai-429-insufficient-quota"), path=PATH)
    for index in range(3):  # groq, then openai is benched: groq again; then an mp3 from kokoro
        speak(gateway, tmp_path / f"{index}.wav", response_format="wav" if index < 2 else "mp3")
    admin = openai.OpenAI(base_url=f"{gateway.url}/v1", admin_api_key=ADMIN, api_key="unused", max_retries=0)
    today = int(time.time() // 86400 * 86400)

    def by_provider():
        page = admin.admin.organization.usage.audio_speeches(start_time=today, group_by=["model", "provider"])
        return {r.to_dict()["provider"]: r for bucket in page.data for r in bucket.results}

    results = wait_for(lambda: len(by_provider()) == 2 and by_provider(), what="speech usage")
    assert results["groq"].characters == 2 * len(TEXT) and results["groq"].num_model_requests == 2
    assert results["groq"].model == "tts-1" and results["groq"].to_dict()["cost_usd"] == pytest.approx(
        2 * len(TEXT) * 2.2e-05
    )
    assert results["kokoro"].characters == len(TEXT)
    chat = admin.admin.organization.usage.completions(start_time=today)  # speech is not chat
    assert sum(r.num_model_requests for bucket in chat.data for r in bucket.results) == 0


def test_a_client_that_leaves_mid_audio_cancels_the_upstream_call(fakes, kokoro, start_gateway):
    gateway = start_gateway(speech_config(fakes, kokoro))
    audio = payloads.speech_audio("openai")
    fakes["openai"].script(Reply(events=audio, headers={"content-type": "audio/mpeg"}, stop_after=1), path=PATH)
    body = {"model": "tts-1", "voice": "alloy", "input": TEXT}
    with httpx.stream("POST", f"{gateway.url}{PATH}", json=body, timeout=5) as response:
        first = next(response.iter_raw())
        assert first and audio[0].startswith(first)  # the audio had begun when the client left
    assert fakes["openai"].disconnected.wait(5), "the upstream call was not cancelled"
    line = gateway.line(1)
    assert line["outcome"] == "client_gone" and line["characters"] == len(TEXT)
