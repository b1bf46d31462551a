"""The rules of the ``regions`` setting: known regions, each once, private VPC blocks that overlap no other
region's, zone counts and zone ids of the region's own."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from analytics_platform.infra.config_errors import require

if TYPE_CHECKING:
    from analytics_platform.infra.config_model import RegionConfig

#: Commercial AWS regions the platform may be deployed to.
KNOWN_REGIONS: frozenset[str] = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "ca-central-1", "ca-west-1", "mx-central-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2",
        "eu-north-1", "eu-south-1", "eu-south-2",
        "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
        "ap-southeast-7", "ap-south-1", "ap-south-2", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-east-1", "me-south-1", "me-central-1", "il-central-1", "af-south-1",
    }
)  # fmt: skip

#: An availability zone id (``use1-az1``, ``euw1-az3``, ``apse1-az2``); Local Zone ids (``use1-bos1-az1``) do not match.
AZ_ID_PATTERN = re.compile(r"^[a-z]{2,5}[0-9]-az[0-9]{1,2}$")
#: How zone ids abbreviate a region's direction word (``ap-southeast-1`` zones are ``apse1-az1``, ...).
_ZONE_ID_WORDS = {"southeast": "se", "northeast": "ne", "central": "c", "east": "e", "west": "w", "north": "n",
                  "south": "s"}  # fmt: skip


def zone_id_prefix(region: str) -> str:
    """The prefix of ``region``'s zone ids: ``us-east-1`` -> ``use1``, ``ap-southeast-1`` -> ``apse1``."""
    country, word, number = region.split("-")
    return f"{country}{_ZONE_ID_WORDS.get(word, word)}{number}"


def validate_regions(regions: tuple[RegionConfig, ...]) -> None:
    """Every region's rules, in order; a block that is no CIDR at all skips the rest of its region's rules."""
    require(len(regions) > 0, "regions", "at least one region is required")
    seen: dict[str, int] = {}
    networks: list[tuple[str, ipaddress.IPv4Network]] = []
    for index, region in enumerate(regions):
        where = f"regions[{index}]"
        require(
            region.region in KNOWN_REGIONS,
            f"{where}.region",
            f"unknown AWS region {region.region!r}",
        )
        require(
            region.region not in seen,
            f"{where}.region",
            f"duplicate region {region.region!r} (also regions[{seen.get(region.region)}])",
        )
        seen[region.region] = index
        try:
            network = ipaddress.IPv4Network(region.vpc_cidr, strict=True)
        except (ValueError, TypeError) as error:
            require(False, f"{where}.vpc_cidr", f"not a valid IPv4 CIDR block: {error}")
            continue
        require(
            16 <= network.prefixlen <= 24,
            f"{where}.vpc_cidr",
            f"prefix length must be /16 to /24 (VPC limits), got /{network.prefixlen}",
        )
        require(network.is_private, f"{where}.vpc_cidr", f"{network} is not a private range (RFC 1918)")
        require(
            isinstance(region.az_count, int) and 2 <= region.az_count <= 4,
            f"{where}.az_count",
            "must be 2 to 4",
        )
        if region.az_ids:
            _validate_zone_ids(where, region)
        for other_region, other in networks:
            require(
                not network.overlaps(other),
                f"{where}.vpc_cidr",
                f"{network} overlaps {other} of {other_region}",
            )
        networks.append((region.region, network))


def _validate_zone_ids(where: str, region: RegionConfig) -> None:
    for az_id in region.az_ids:
        require(
            isinstance(az_id, str) and bool(AZ_ID_PATTERN.fullmatch(az_id)),
            f"{where}.az_ids",
            f"{az_id!r} is not an availability zone id such as 'use1-az1' (Local Zones cannot host this stack)",
        )
    require(len(set(region.az_ids)) == len(region.az_ids), f"{where}.az_ids", "lists a zone twice")
    prefix = zone_id_prefix(region.region)
    for az_id in region.az_ids:
        require(
            az_id.startswith(f"{prefix}-az"),
            f"{where}.az_ids",
            f"{az_id!r} is not a zone of {region.region} (its zone ids start with {prefix}-az)",
        )
    require(
        len(region.az_ids) == region.az_count,
        f"{where}.az_ids",
        f"names {len(region.az_ids)} zone(s) but az_count is {region.az_count}",
    )
