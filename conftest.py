import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    from tinygrad_cnn import Tensor

    doctest_namespace["np"] = np
    doctest_namespace["Tensor"] = Tensor
