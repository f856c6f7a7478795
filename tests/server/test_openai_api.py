"""The server through the official ``openai`` client: completions and chat, streaming, usage,
stop strings, seeds and errors, checked against the engine's own answer where one exists."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from unmask.engine import Engine, EngineRequest

from tests.server.conftest import PLANNING_PROMPT


def client(server: Any, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=kwargs.pop("api_key", "unused"), max_retries=0, timeout=60, **kwargs)


def extension(response: Any) -> dict[str, Any]:
    return response.to_dict()["unmask"]


def collect(stream: Any, chat: bool) -> tuple[list[Any], str]:
    chunks = list(stream)
    pieces = []
    for chunk in chunks:
        for choice in chunk.choices:
            pieces.append((choice.delta.content or "") if chat else choice.text)
    return chunks, "".join(pieces)


def test_models_lists_the_served_model(planning_server: Any) -> None:
    assert [m.id for m in client(planning_server).models.list()] == ["planning-diffusion"]


def test_completion_equals_the_engine_and_reports_usage(planning_server: Any, planning_model: Any) -> None:
    response = client(planning_server).completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, seed=7)
    tokenizer = planning_model.tokenizer
    prompt_ids = tokenizer.encode(PLANNING_PROMPT)
    [oracle] = Engine(planning_model).run([EngineRequest(prompt_ids, {"gen_length": 7}, seed=7)])
    choice = response.choices[0]
    assert choice.text == tokenizer.decode(oracle.tokens)
    assert choice.finish_reason == oracle.finish_reason == "stop"
    assert response.usage.prompt_tokens == len(prompt_ids) == 24
    assert response.usage.completion_tokens == len(oracle.tokens)
    assert response.usage.total_tokens == 24 + len(oracle.tokens)
    assert extension(response)["nfe"] == oracle.nfe and extension(response)["seed"] == 7
    assert response.model == "planning-diffusion" and response.id.startswith("cmpl-")


def test_streamed_completion_matches_and_ends_with_usage_chunk(planning_server: Any) -> None:
    api = client(planning_server)
    whole = api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, seed=3)
    stream = api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, seed=3, stream=True,
                                    stream_options={"include_usage": True})
    chunks, text = collect(stream, chat=False)
    assert text == whole.choices[0].text
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert reasons == ["stop"]
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_starts_with_role_and_matches_non_stream(chat_server: Any) -> None:
    api = client(chat_server)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Write about masks."}]
    whole = api.chat.completions.create(model="tiny-chat", messages=messages, max_tokens=16, seed=5)
    stream = api.chat.completions.create(model="tiny-chat", messages=messages, max_tokens=16, seed=5, stream=True,
                                         stream_options={"include_usage": True})
    chunks, text = collect(stream, chat=True)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text == whole.choices[0].message.content
    assert whole.choices[0].message.role == "assistant" and whole.object == "chat.completion"
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens
    assert whole.usage.completion_tokens <= 16
    if whole.choices[0].finish_reason == "length":
        assert whole.usage.completion_tokens == 16


def test_max_completion_tokens_bounds_the_canvas(chat_server: Any) -> None:
    response = client(chat_server).chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=8, seed=1)
    assert response.usage.completion_tokens <= 8
    assert extension(response)["committed"] <= 8


def test_same_seed_same_text_and_seeds_matter_when_sampling(chat_server: Any) -> None:
    api = client(chat_server)

    def text(seed: int) -> str:
        r = api.completions.create(model="tiny-chat", prompt="A diffusion model", max_tokens=16, temperature=1.0, seed=seed)
        return r.choices[0].text

    assert text(11) == text(11)
    assert len({text(seed) for seed in range(4)}) > 1


@pytest.mark.parametrize("stream", [False, True])
def test_stop_string_cuts_the_text_and_reports_stop(chat_server: Any, stream: bool) -> None:
    api = client(chat_server)
    full = api.completions.create(model="tiny-chat", prompt="The meeting", max_tokens=32, seed=2).choices[0].text
    assert len(full) > 12, "the tiny model must say something to cut"
    stop = full[6:9]
    expected = full[: full.find(stop)]
    kwargs = dict(model="tiny-chat", prompt="The meeting", max_tokens=32, seed=2, stop=[stop, "\x00never"])
    if stream:
        chunks, text = collect(api.completions.create(stream=True, **kwargs), chat=False)
        reason = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason][0]
    else:
        response = api.completions.create(**kwargs)
        text, reason = response.choices[0].text, response.choices[0].finish_reason
    assert text == expected and reason == "stop"


def test_stop_string_on_the_planning_model(planning_server: Any) -> None:
    api = client(planning_server)
    full = api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, seed=0).choices[0].text
    words = full.split()
    response = api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, seed=0, stop=f" {words[2]} ")
    assert response.choices[0].text == " ".join(words[:2])
    assert response.usage.completion_tokens == 2 and response.choices[0].finish_reason == "stop"


def test_client_errors_are_openai_errors(planning_server: Any, chat_server: Any) -> None:
    api = client(planning_server)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        api.completions.create(model="gpt-4", prompt=PLANNING_PROMPT)
    with pytest.raises(openai.BadRequestError, match="no chat template") as info:
        api.chat.completions.create(model="planning-diffusion", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError, match="could not be tokenized"):
        api.completions.create(model="planning-diffusion", prompt="3 7 banana SEP")
    with pytest.raises(openai.BadRequestError, match="context"):
        api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, max_tokens=20)
    with pytest.raises(openai.BadRequestError, match="steps"):
        api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, extra_body={"steps": -3})
    with pytest.raises(openai.BadRequestError, match="alg"):
        api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, extra_body={"alg": "entropy"})
    with pytest.raises(openai.BadRequestError, match="top_p"):
        api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, top_p=0.5)


def test_diffusion_knobs_and_unknown_fields(chat_server: Any) -> None:
    api = client(chat_server)
    fixed = api.completions.create(model="tiny-chat", prompt="Sudoku", max_tokens=16, seed=4,
                                   extra_body={"steps": 16, "block_length": 8, "whatever_else": {"a": 1}})
    fast = api.completions.create(model="tiny-chat", prompt="Sudoku", max_tokens=16, seed=4,
                                  extra_body={"threshold": 0.01, "block_length": 8})
    assert extension(fixed)["nfe"] <= 16
    assert extension(fast)["nfe"] < extension(fixed)["nfe"]  # threshold commits many tokens per forward
    assert extension(fast)["tokens_per_forward"] > 1
    with pytest.raises(openai.BadRequestError, match="engine does not run"):
        api.completions.create(model="tiny-chat", prompt="Sudoku", max_tokens=16, extra_body={"self_check_retries": 2})


def test_token_id_prompts_are_accepted(planning_server: Any, planning_model: Any) -> None:
    ids = planning_model.tokenizer.encode(PLANNING_PROMPT)
    api = client(planning_server)
    by_ids = api.completions.create(model="planning-diffusion", prompt=ids, seed=9)
    by_text = api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, seed=9)
    assert by_ids.choices[0].text == by_text.choices[0].text
    with pytest.raises(openai.BadRequestError, match="outside the vocabulary"):
        api.completions.create(model="planning-diffusion", prompt=[1, 2, 999])
    with pytest.raises(openai.BadRequestError, match="mask"):
        api.completions.create(model="planning-diffusion", prompt=[1, 2, planning_model.config.mask_token_id])


def test_seed_less_requests_report_the_seed_they_used(planning_server: Any) -> None:
    api = client(planning_server)
    first = api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT)
    again = api.completions.create(model="planning-diffusion", prompt=PLANNING_PROMPT, seed=extension(first)["seed"])
    assert first.choices[0].text == again.choices[0].text


def test_max_tokens_that_the_configured_block_does_not_divide(chat_server: Any) -> None:
    from unmask.server.decoding import fit_schedule

    config = {"gen_length": 32, "steps": 32, "block_length": 8}
    assert fit_schedule("llada", 13, {}, config) == {"block_length": 1, "steps": 13}
    assert fit_schedule("llada", 12, {}, config) == {"block_length": 6, "steps": 12}
    assert fit_schedule("llada", 64, {"steps": 8}, config) == {"steps": 8}  # the client's values are kept
    assert fit_schedule("ar", 13, {}, {}) == {}
    response = client(chat_server).completions.create(model="tiny-chat", prompt="hello", max_tokens=12, seed=1)
    assert response.usage.completion_tokens <= 12 and extension(response)["nfe"] <= 12


def test_stream_sends_only_the_committed_left_prefix(planning_server: Any) -> None:
    import httpx
    import json

    body = {"prompt": PLANNING_PROMPT, "seed": 0, "stream": True, "return_canvas": True}
    with httpx.stream("POST", planning_server.url + "/v1/completions", json=body, timeout=30) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    frames, text = 0, ""
    for chunk in chunks:
        text += chunk["choices"][0]["text"]
        canvas = chunk.get("unmask", {}).get("canvas")
        if canvas is None:
            continue
        frames += 1
        prefix = []
        for cell in canvas:
            if cell is None or cell == "EOS":
                break
            prefix.append(cell)
        assert text == " ".join(prefix)  # exactly the committed left prefix, never a filled cell beyond a mask
    assert frames == chunks[-1]["unmask"]["nfe"] and any(None in c["unmask"]["canvas"] for c in chunks[:2])


@pytest.mark.parametrize("knobs,named", [({"self_check_retries": 2}, "self_check_retries"), ({"order_noise": 0.2}, "order_noise")])
def test_a_checkpoint_whose_defaults_the_engine_cannot_run_is_refused_at_startup(knobs: dict[str, Any], named: str) -> None:
    # otherwise the server would start and answer every request with a 400
    import unmask
    from unmask.sampling import ParamError
    from unmask.server import served_model
    from tests.server.conftest import PLANNING

    model = unmask.load(PLANNING)
    served_model(model, "planning-diffusion")  # the bundled defaults are servable
    model.generation_config = {**model.generation_config, **knobs}
    with pytest.raises(ParamError, match=f"'planning-diffusion' cannot be served with its generation_config.json: .*{named}"):
        served_model(model, "planning-diffusion")


def test_an_ar_checkpoint_asking_for_best_of_is_refused_at_startup() -> None:
    import unmask
    from unmask.sampling import ParamError
    from unmask.server import served_model
    from tests.conftest import REPO

    model = unmask.load(REPO / "models" / "planning-ar")
    served_model(model, "planning-ar")
    model.generation_config = {**model.generation_config, "best_of": 4, "temperature": 1.0}
    with pytest.raises(ParamError, match="best_of"):
        served_model(model, "planning-ar")
