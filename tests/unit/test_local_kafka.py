"""The local broker's cluster id is never read as a command-line option."""

from __future__ import annotations

import base64
import uuid

import pytest

from iotpipe.local import kafka as local_kafka


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 encodes to '-' first in URL-safe base64: the storage tool took it for an option.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" * 16)])
    monkeypatch.setattr(local_kafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = local_kafka._cluster_id()
    assert not cluster_id.startswith("-")
    assert base64.urlsafe_b64decode(cluster_id + "==") == b"\x10" * 16
