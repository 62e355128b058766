"""The registry of pricing models for the overage metrics (R2, R3).

A price-book section chooses its model by name (``model = "graduated"``; default
``blocks``); an unknown name stops the run naming it and the known ones (exit 3). The
contract every model fulfils is `contract.PricingModel`; each model is one module here,
checked against the contract by mypy where it is registered below.
"""

from __future__ import annotations

from invoicing.pricing.models import blocks, graduated
from invoicing.pricing.models.contract import PricingModel

_BLOCKS: PricingModel = blocks
_GRADUATED: PricingModel = graduated

#: Every pricing model by the name the price book gives it.
MODELS: dict[str, PricingModel] = {model.name: model for model in (_BLOCKS, _GRADUATED)}

__all__ = ["MODELS", "PricingModel"]
