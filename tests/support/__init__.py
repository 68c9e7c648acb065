"""Generators the tests use as ground truth and the benchmarks use for scale (tests never
import benchmarks/; benchmarks import these). Run from the repository root:
``python3 -m tests.support.gen_nft …``, ``python3 -m tests.support.gen_snapshot …``."""
