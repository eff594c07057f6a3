"""Speed benchmarks: tinygrad_cnn timed side by side with PyTorch (see `harness.py`).

python -m benchmarks.ops [--quick] [--json PATH]
"""
