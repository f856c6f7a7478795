"""Task generators with tokenizer-free formats and exact scorers (used by training, eval, demos)."""
