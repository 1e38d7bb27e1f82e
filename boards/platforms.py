"""Amaranth platforms from board configs.

Open boards name an amaranth-boards class (``platform = "amaranth_boards.ulx3s:ULX3S_85F_Platform"``); the
class's device, package and speed must match the config. Out-of-context vendor parts get a generated
platform subclass with the config's part and no pins (only useful for part queries: their builds use the
OOC plans of :mod:`boards.vivado` and :mod:`boards.quartus`).
"""

from __future__ import annotations

import importlib
from typing import Any

from amaranth.vendor import AlteraPlatform, XilinxPlatform

from .config import BoardConfig, ConfigError

__all__ = ["platform_class", "platform_for"]


def platform_class(cfg: BoardConfig) -> type:
    """The Amaranth platform class for a board config."""
    if cfg.platform:
        mod_name, _, cls_name = cfg.platform.partition(":")
        try:
            cls = getattr(importlib.import_module(mod_name), cls_name)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"board {cfg.name!r}: platform {cfg.platform!r} cannot be imported ({e})") from None
        for attr in ("device", "package", "speed"):
            have = str(getattr(cls, attr, "") or "")
            if have != getattr(cfg, attr):
                raise ConfigError(
                    f"board {cfg.name!r}: config {attr} {getattr(cfg, attr)!r} does not match {cfg.platform} {attr} "
                    f"{have!r}; fix the config"
                )
        return cls
    base = {"vivado": XilinxPlatform, "quartus": AlteraPlatform}.get(cfg.toolchain)
    if base is None:
        raise ConfigError(f'board {cfg.name!r}: toolchain {cfg.toolchain!r} needs platform = "module:Class"')
    attrs: dict[str, Any] = {
        "device": cfg.device,
        "package": cfg.package,
        "speed": cfg.speed,
        "resources": [],
        "connectors": [],
    }
    return type(f"{cfg.name.upper()}Platform", (base,), attrs)


def platform_for(cfg: BoardConfig, **kwargs: Any) -> Any:
    """An instance of the board's Amaranth platform (``kwargs`` go to the constructor, e.g. ``toolchain``)."""
    return platform_class(cfg)(**kwargs)
