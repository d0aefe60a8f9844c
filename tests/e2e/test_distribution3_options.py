"""The distribution 3.x options (x5c header, RFC 7638 thumbprint kid) keep working with the
real distribution 2.8.2: it tries x5c first, so x5c with either kid is accepted by both."""

from __future__ import annotations

import pytest

from tests.e2e.clients import Skopeo, layout_digest
from tests.e2e.conftest import start_stack, stop_stack
from tests.e2e.oci import write_image


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_x5c_with_a_thumbprint_kid_is_accepted_by_registry_2_8(
    tmp_path_factory: pytest.TempPathFactory, algorithm: str
) -> None:
    stack = start_stack(
        tmp_path_factory.mktemp(f"x5c-{algorithm}"),
        algorithm,
        {"TOKENSERVER_TOKEN_X5C": "true", "TOKENSERVER_TOKEN_KID_FORMAT": "thumbprint"},
    )
    try:
        stack.project("x5c")
        skopeo = Skopeo(stack, stack.robot("x5c", "ci", "repository:push"))
        assert skopeo.login().returncode == 0, stack.server_log()[-2000:]
        layout = stack.new_dir("image")
        digest = write_image(layout, "x5c " + algorithm)
        pushed = skopeo.push(layout, "x5c/app:v1")
        assert pushed.returncode == 0, pushed.stderr + stack.registry_log()[-2000:]
        pulled = stack.new_dir("pulled")
        assert skopeo.pull("x5c/app:v1", pulled).returncode == 0
        assert layout_digest(pulled) == digest
    finally:
        stop_stack(stack)
