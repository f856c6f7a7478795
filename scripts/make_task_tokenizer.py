"""Write a word-level ``tokenizer.json`` + ``tokenizer_config.json`` for a bundled task model.

    python scripts/make_task_tokenizer.py models/planning-diffusion models/planning-ar

The task models are trained on token ids, not text. This gives them a text face so that
``unmask serve`` and ``unmask generate --prompt`` accept prompts such as
``"3 7 7 12 ... SEP 3 9 ANS"``: one token per whitespace-separated word, node labels "0".."N-1"
first, then the special words in the task's own id order (SEP, ANS, EOS, PAD, MASK). There is
deliberately no chat template: a task model has no notion of a conversation, and the server
answers chat requests on it with a clear 400.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from unmask.tasks.planning import PlanningVocab

UNKNOWN_WORD_IS_ERROR = "[UNK]"  # never in the vocabulary: an unknown word is caught by the server


def planning_words(vocab: PlanningVocab) -> list[str]:
    """Word for each id, in id order (checked against the task's own id properties)."""
    words = [str(label) for label in range(vocab.num_labels)] + ["SEP", "ANS", "EOS", "PAD", "MASK"]
    named = {"SEP": vocab.sep, "ANS": vocab.ans, "EOS": vocab.eos, "PAD": vocab.pad, "MASK": vocab.mask}
    for word, token_id in named.items():
        if words[token_id] != word:
            raise ValueError(f"{word} is id {token_id} in the task vocabulary but {words.index(word)} here")
    if len(words) != vocab.size:
        raise ValueError(f"{len(words)} words for a vocabulary of {vocab.size}")
    return words


def build_tokenizer(words: list[str], specials: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.WordLevel({word: index for index, word in enumerate(words)}, unk_token=UNKNOWN_WORD_IS_ERROR))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # WordPiece's decoder with an impossible prefix joins words with single spaces
    tokenizer.decoder = decoders.WordPiece(prefix="\x00\x00", cleanup=False)
    # Every marker word is an added token (matched before splitting, so "3 SEP" and "3SEP" agree
    # with what a reader expects: one marker). EOS/PAD/MASK are special: never part of the text an
    # answer returns (decode skips them). SEP/ANS stay visible so a prompt survives a round trip.
    markers = [word for word in words if not word.isdigit()]
    tokenizer.add_tokens([AddedToken(word, normalized=False) for word in markers if word not in specials])
    tokenizer.add_special_tokens([AddedToken(word, normalized=False) for word in specials])
    return tokenizer


def write_planning_tokenizer(directory: Path) -> None:
    config = json.loads((directory / "config.json").read_text())
    vocab = PlanningVocab(num_labels=config["vocab_size"] - 5)
    words = planning_words(vocab)
    if config.get("mask_token_id") != vocab.mask or config.get("eos_token_id") != vocab.eos:
        raise ValueError(f"{directory}/config.json special ids do not match the planning vocabulary")
    tokenizer = build_tokenizer(words, ["EOS", "PAD", "MASK"])
    tokenizer.save(str(directory / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None, "eos_token": "EOS", "pad_token": "PAD", "mask_token": "MASK",
        "model_max_length": config.get("max_position_embeddings"),
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directories", nargs="+", type=Path, help="planning model directories (config.json inside)")
    for directory in parser.parse_args().directories:
        write_planning_tokenizer(directory)
        print("wrote", directory / "tokenizer.json", directory / "tokenizer_config.json")


if __name__ == "__main__":
    main()
