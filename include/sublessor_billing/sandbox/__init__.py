"""Loopback fakes of the external HTTP services (payment center, listing service, K3), for tests and the demo."""

from __future__ import annotations

from sublessor_billing.sandbox.server import Fault, SandboxServer

__all__ = ["Fault", "SandboxServer"]
