import pytest


def pytest_configure(config: pytest.Config) -> None:
    # (the same marker tests/cluster registers: the version checks below belong to that tier)
    config.addinivalue_line(
        "markers", "cluster: needs the single-node Kubernetes cluster (tests/cluster; slow, root)"
    )
