"""Compression stages before export: structured pruning, sparsity, clustering, QAT, fine-tuned by distillation."""
