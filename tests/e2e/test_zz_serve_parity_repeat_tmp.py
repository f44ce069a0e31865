import pytest
from tests.e2e.test_serve import service, reference, test_same_result_as_paddlex_app  # noqa: F401

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize("round_", range(3))
def test_parity_repeat(service, reference, round_):  # noqa: F811
    test_same_result_as_paddlex_app(service, reference)
