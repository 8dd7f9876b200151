"""The Azure footprint: VNet, AKS, Azure Managed Redis and PostgreSQL Flexible Server.

:func:`infra.azure.footprint.build` composes the four components of
``network``, ``cluster``, ``redis`` and ``postgres`` under one
``ai-gateway:azure:Footprint`` that owns the Azure provider. The decisions the
components make (subnet math, sizing per environment, names within Azure's
rules) are pure functions in ``addressing``, ``sizing`` and ``naming``.
"""
