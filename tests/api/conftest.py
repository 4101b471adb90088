import pytest

from portal.core.permissions import Role
from tests import factories
from tests.api.helpers import make_client, valid_npi


@pytest.fixture
def clinician_a(org_a):
    return factories.make_user(Role.PARTNER, org_a, npi=valid_npi("123456789"), full_name="Dr. Alice A")


@pytest.fixture
def client_a(org_a):
    return make_client(org_a)


@pytest.fixture
def client_b(org_b):
    return make_client(org_b, name="Org B EHR")
