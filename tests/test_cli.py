"""The command line: --help is instant, generate reproduces the golden cases, errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ASSETS, REPO, golden_root
from tests.golden.test_golden import FAMILY_DIRS, golden_call
from unmask.cli import main


def _flags(params: dict[str, Any]) -> list[str]:
    flags = []
    for key, value in params.items():
        text = "none" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
        flags += [f"--{key.replace('_', '-')}", text]
    return flags


def _generation_cases() -> list[Any]:
    cases = []
    for name in FAMILY_DIRS:
        for case in json.loads((golden_root() / name / "cases.json").read_text())["cases"]:
            if case["kind"] != "forward":
                cases.append(pytest.param(name, case, id=f"{name}:{case['id']}"))
    return cases


@pytest.mark.parametrize("name,case", _generation_cases())
def test_generate_json_reproduces_golden(name: str, case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    prompt, params, mask = golden_call(case)
    # the CLI left-pads rows of unequal length itself; golden batches are equal-length, and an
    # all-ones mask means the same as none
    assert mask is None or all(all(v == 1 for v in row) for row in mask)
    argv = ["generate", "--model", str(golden_root() / name), "--output", "json"]
    for row in prompt:
        argv += ["--prompt-ids", ",".join(map(str, row))]
    assert main(argv + _flags(params)) == 0
    result = json.loads(capsys.readouterr().out)
    expected = case["expected"]
    sequences = expected.get("output_ids", expected.get("sequences"))
    assert result["tokens"] == [row[len(prompt[0]):] for row in sequences]
    assert result["nfe"] == expected.get("nfe", expected.get("forward_calls"))
    assert set(result) >= {"tokens", "nfe", "seconds", "tokens_per_forward", "threads", "decoder"}


def test_help_is_instant_and_lazy() -> None:
    code = "import sys, unmask.cli; unmask.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    helped = subprocess.run([sys.executable, "-m", "unmask.cli", "generate", "--help"], capture_output=True, text=True, check=True)
    assert "--gen-length" in helped.stdout and "--max-new-tokens" in helped.stdout and "explicit None" in helped.stdout


def test_console_script_text_prompt_with_chat_template() -> None:
    exe = REPO / ".venv" / "bin" / "unmask"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "unmask.cli"]
    out = subprocess.run(
        command + ["generate", "--model", str(ASSETS / "tiny-llada-chat"), "--prompt", "Where?", "--chat", "--output", "json"],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(out.stdout)
    # defaults come from the asset's generation_config.json: gen_length 32, steps 32
    assert len(result["tokens"][0]) == 32 and result["nfe"] == 32
    assert isinstance(result["text"], str)


def test_batch_of_unequal_prompts_is_left_padded(capsys: pytest.CaptureFixture[str]) -> None:
    model = str(golden_root() / "llada-tiny")
    argv = ["generate", "--model", model, "--output", "json", "--gen-length", "8", "--steps", "8", "--block-length", "8"]
    assert main(argv + ["--prompt-ids", "5,6,7", "--prompt-ids", "9"]) == 0
    both = json.loads(capsys.readouterr().out)["tokens"]
    assert main(argv + ["--prompt-ids", "9"]) == 0
    alone = json.loads(capsys.readouterr().out)["tokens"]
    assert both[1] == alone[0]


def test_generate_with_self_check_reports_it(capsys: pytest.CaptureFixture[str]) -> None:
    import unmask

    model = str(golden_root() / "llada-tiny")
    argv = ["generate", "--model", model, "--output", "json", "--gen-length", "8", "--steps", "8", "--block-length", "8",
            "--prompt-ids", "5,6,7", "--prompt-ids", "9,10,11", "--seed", "3"]
    assert main(argv + ["--self-check-retries", "2", "--retry-order-noise", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = unmask.generate(unmask.load(model), [[5, 6, 7], [9, 10, 11]], gen_length=8, steps=8, block_length=8, seed=3,
                               self_check_retries=2, retry_order_noise=0.5)
    assert expected.self_check is not None and result["decoder"] == "llada+self_check"
    assert result["tokens"] == expected.tokens.tolist() and result["nfe"] == expected.nfe
    assert result["self_check"] == {"flagged_first": expected.self_check.flagged_first, "retries": expected.self_check.retries,
                                    "passed": expected.self_check.passed, "first_tokens": expected.self_check.first_tokens.tolist()}


def test_generate_with_best_of_reports_it(capsys: pytest.CaptureFixture[str]) -> None:
    import unmask

    model = str(REPO / "models" / "planning-ar")
    argv = ["generate", "--model", model, "--output", "json", "--max-new-tokens", "7", "--prompt-ids", "3,7,7,12,12,5",
            "--prompt-ids", "1,2,2,4,4,6", "--seed", "3", "--temperature", "1.0", "--best-of", "4"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    expected = unmask.generate(unmask.load(model), [[3, 7, 7, 12, 12, 5], [1, 2, 2, 4, 4, 6]], max_new_tokens=7, seed=3,
                               temperature=1.0, best_of=4)
    assert expected.best_of is not None and result["decoder"] == "ar+best_of"
    assert result["tokens"] == expected.tokens.tolist()
    assert result["best_of"]["chosen"] == expected.best_of.chosen
    assert result["best_of"]["candidates"] == expected.best_of.candidates.tolist()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["generate", "--model", "GOLDEN/llada-tiny", "--prompt-ids", "1", "--order-noise", "0.1", "--remasking", "random"], "remasking='random'"),
        (["generate", "--model", "/nonexistent/model", "--prompt-ids", "1"], "model directory not found"),
        (["generate", "--model", "GOLDEN/llada-tiny", "--prompt", "hi"], "no tokenizer.json"),
        (["generate", "--model", "GOLDEN/llada-tiny", "--prompt-ids", "1", "--gen-length", "30", "--block-length", "8"], "multiple of block_length"),
        (["generate", "--model", "GOLDEN/llada-tiny", "--prompt-ids", "1", "--alg", "entropy"], "unknown decoding parameter(s) for this model's family: alg"),
        (["generate", "--model", "GOLDEN/dream-tiny", "--prompt-ids", "1,999999"], "outside the vocabulary"),
        (["inspect", "--model", "/nonexistent/model"], "model directory not found"),
    ],
)
def test_user_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.replace("GOLDEN", str(golden_root())) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_inspect_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--model", str(golden_root() / "dream-tiny"), "--output", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "dream" and info["mask_token_id"] == 500 and info["logits"].startswith("shifted")
    from safetensors.torch import load_file

    stored = load_file(str(golden_root() / "dream-tiny" / "model.safetensors"))
    assert info["parameters"] == sum(t.numel() for t in stored.values())
    assert any(d.startswith("fastdllm_dream_block") for d in info["decoders"])
