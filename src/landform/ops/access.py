"""Who may see the operators' routes: an admin account, or whoever sends
the ops token (``LANDFORM_OPS_TOKEN``, for scripts, Prometheus and load
tests). Health probes and ``/metrics`` are also open to the networks in
``LANDFORM_OPS_OPEN_NETWORKS`` (by default loopback and private ranges,
where load balancers, kubelets and Prometheus live)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from landform.auth.errors import NotAuthenticated
from landform.auth.service import AuthService
from landform.core.http import bearer_credential, client_ip
from landform.core.proxies import ClientAddress
from landform.settings import Settings


def _has_ops_token(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    expected = settings.ops_token
    given = bearer_credential(request.headers.get("authorization", ""))
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def require_operator(request: Request) -> None:
    if _has_ops_token(request):
        return
    auth: AuthService = request.app.state.auth
    credential = bearer_credential(request.headers.get("authorization", "")) or (
        request.headers.get("x-api-key", "")
    )
    if not credential:
        raise NotAuthenticated(
            "operators only: send Authorization: Bearer <ops token or an admin's access token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    await auth.require_operator(await auth.authenticate(credential))


async def require_operator_or_open_network(request: Request) -> None:
    # LANDFORM_OPS_OPEN_NETWORKS, parsed once by the app (ClientAddress's
    # matching: the networks a peer is believed from).
    open_networks: ClientAddress = request.app.state.ops_open_networks
    if open_networks.is_trusted(client_ip(request)):
        return
    await require_operator(request)


Operator = Annotated[None, Depends(require_operator)]
ProbeAccess = Annotated[None, Depends(require_operator_or_open_network)]
