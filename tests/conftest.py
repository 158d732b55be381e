import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


@pytest.fixture(scope="session")
def tiny_corpus():
    "The tiny synthetic corpus, generated once and shared with the notebooks (`cached_corpus`); read only: copy it before changing files."
    from speechface.data.synth import cached_corpus
    return cached_corpus("tiny")
