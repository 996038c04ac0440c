"""The declared threat model: who attacks a released household table, and what they know.

Why declared, not assumed: k-anonymity only means something over the columns an
attacker can match on. Four record holders are declared (docs/privacy.md):

* the **village insider** (a committee member, a neighbour): holds the land registry
  and the household register, knows who lives with whom, sees the public notice boards
  (formerly-poor lists, subsidy rolls); knows village, head's age and gender,
  household size, education, contracted land, formerly-poor status and the pension and
  subsidy income;
* the **outside party** (a marketer, a journalist): public records only: township and
  village, the head's age and gender (ID numbers leak widely), formerly-poor status
  (published poverty-alleviation lists);
* the **lending bank**: its own repayment records (instalments, payments, days past due),
  credit lines and balances;
* the **register keeper**: the dates of every deduction and veto event.

The first two are *recoded* (their columns are the quasi-identifiers local recoding makes
k-anonymous); the bank's and the keeper's columns are released at the models' precision
(precision.py) and the release is measured against them. The repeated-release attacker
(who holds an earlier release) is met by release-scoped pseudonyms (pseudonym.py).

The default quasi-identifiers are everything either attacker knows; a user changes
them (and k, the hierarchies, the risk measurement) in a YAML file, validated here
with errors that name the file and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from village_credit.data.groups import AGE_BAND_EDGES
from village_credit.data.schema import EDUCATION, SCHEMA, history_columns
from village_credit.privacy.errors import PrivacyError
from village_credit.privacy.recoding import BandHierarchy
from village_credit.yaml_io import safe_load

AGE_FAIRNESS_CUTS: tuple[int, ...] = AGE_BAND_EDGES
"""Starts of the age bands (41, 60, 65, 70; data.groups.AGE_BANDS), the recoding's mandatory cuts: 60
never crossed, the others cut right after the location wherever k allows (recoding.local_recode)."""

AGE_RULE_CUTS: tuple[int, ...] = (61, 66)
"""First ineligible ages of the 18-60 (Jinxiang) and 18-65 (XX county) rules: kept whenever k allows."""


class PrivacyConfigError(PrivacyError):
    """A privacy configuration (threat model) file is invalid: names the file and the key."""


@dataclass(frozen=True)
class Attacker:
    """One declared attacker: who, and which released columns they can match on."""

    name: str
    description: str
    knows: tuple[str, ...]
    recoded: bool = True
    """``True``: its columns are quasi-identifiers the local recoding makes k-anonymous;
    ``False``: a record holder whose columns are released at the models' precision
    (precision.py) and measured against (``risk.holders``)."""


INSIDER = Attacker(
    "village_insider",
    "village committee member or neighbour with the land registry, the household register "
    "and the public notice boards",
    ("village_code", "township_code", "head_age", "head_gender", "household_size", "education",
     "land_mu", "formerly_poor", "income_pension_subsidy", "dependents"),
)
OUTSIDER = Attacker(
    "outside_party",
    "anyone with public records: place names, ID-number-derived age and gender, published "
    "poverty-alleviation lists",
    ("village_code", "township_code", "head_age", "head_gender", "formerly_poor"),
)


LENDING_BANK = Attacker(
    "lending_bank",
    "the bank that lent: its own repayment records (instalments, amounts paid, days past due), "
    "credit lines and balances, and the borrower's village",
    ("village_code", "township_code", *history_columns("due"), *history_columns("paid"),
     *history_columns("dpd"), "credit_limit_yuan", "balance_yuan"),
    recoded=False,
)
REGISTER_KEEPER = Attacker(
    "register_keeper",
    "whoever keeps the village's deduction and veto registers: every event's date, and the village",
    ("village_code", "township_code", *[c for c in SCHEMA.names if c.endswith("_date")
                                        and c.startswith(("ded_", "veto_"))]),
    recoded=False,
)


def default_hierarchies() -> dict[str, BandHierarchy]:
    """Finest bands of each quasi-identifier (classes are coarsened by merging adjacent bands)."""
    return {
        # five-year bands; of the age bands' starts (41, 60, 65, 70) 60 is never crossed, 61 and
        # 66 kept whenever k allows
        "head_age": BandHierarchy("head_age", (18, 21, 26, 31, 36, 41, 46, 51, 56, 60, 61, 65, 66, 70, 71, 76,
                                               81, 86, 91, 101), mandatory=AGE_FAIRNESS_CUTS,
                                  preferred=AGE_RULE_CUTS),
        "household_size": BandHierarchy("household_size", (1, 2, 3, 4, 5, 6, 7, 9, 16)),
        "education": BandHierarchy("education", tuple(range(len(EDUCATION) + 1)), categories=EDUCATION),
        "land_mu": BandHierarchy("land_mu", (0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 50, 100, 200,
                                             500, 5001), decimals=1),
        "income_pension_subsidy": BandHierarchy(
            "income_pension_subsidy", (0, 1, 500, 1000, 2000, 3000, 4000, 6000, 8000, 12000, 20000,
                                       50000, 1e8), decimals=-2),
        "dependents": BandHierarchy("dependents", (0, 1, 2, 3, 4, 6, 15)),
        **{c: BandHierarchy(c, (0, 1, 10_000, 30_000, 50_000, 100_000, 200_000, 500_000, 1e6, 1e7, 1e9),
                            decimals=-2)
           for c in ("assets_yuan", "private_debt_yuan", "balance_yuan", "credit_limit_yuan",
                     *(f"income_{s}" for s in ("farming", "livestock", "migrant", "business")))},
    }


@dataclass(frozen=True)
class RiskConfig:
    """How the anonymisation report measures re-identification risk."""

    enabled: bool = True
    n_attacks: int = 300
    seed: int = 0
    confidence_level: float = 0.95


@dataclass(frozen=True)
class PrivacyConfig:
    """Threat model + anonymisation settings (defaults: docs/privacy.md)."""

    attackers: tuple[Attacker, ...] = (INSIDER, OUTSIDER, LENDING_BANK, REGISTER_KEEPER)
    k: int = 5
    quasi_identifiers: tuple[str, ...] | None = None
    sensitive: tuple[str, ...] = ("default_12m", "private_debt_yuan", "balance_yuan")
    l: int = 2
    holder_k: int = 2
    """Smallest class on a measured (not recoded) holder's released columns: 2 = no household
    is unique on what the bank or the register keeper knows."""
    """Distinct l-diversity targeted for each sensitive attribute in ``l_targets`` (amounts as
    "has any" flags); every sensitive attribute is measured (homogeneity attack)."""
    l_targets: tuple[str, ...] = ("private_debt_yuan", "balance_yuan")
    """Sensitive attributes the recoding keeps l-diverse. ``default_12m`` is measured, not
    targeted by default: at a 4 % default rate every class would need ~25 households, and
    the class means of land and household size then differ so much between villages that
    the trained model fails its feature-stability gate (PSI 0.60 on land, measured)."""
    outcome_flip_rate: float = 0.0
    """Randomized response on the released ``default_12m`` (issue 28 item 4, documented noise):
    each household's outcome is released flipped with this probability, so no released outcome is
    certain (each is the true one with probability ``1 - rate``, whatever its class holds). Off by
    default: it costs the model AUC (docs/privacy.md 5b gives the measured cost)."""
    outcome_flip_seed: int = 0
    t: float | None = 0.2
    """t-closeness (issue 28 item 4) of each attribute in ``t_targets``: in every class on the
    quasi-identifiers, the distribution differs from the release's by at most ``t`` (variational
    distance; for ``default_12m`` ``|p_class - p_all|``: no class lets the insider raise a
    household's default probability by more than 20 points over the base rate). 0.2 = 1 / k: a
    class of five may hold one default (20 %, what k-anonymity itself concedes), not two (40 %);
    0.15 would make a class of five with one default a breach (docs/privacy.md 5b). Met by the
    recoding (a class is only split where both parts keep it) and, where a cell that cannot be
    merged breaches it, by suppression (counted per group). ``None``: not targeted (still measured)."""
    t_targets: tuple[str, ...] = ("default_12m",)
    hierarchies: Mapping[str, BandHierarchy] = field(default_factory=default_hierarchies)
    risk: RiskConfig = field(default_factory=RiskConfig)
    source: str = "<defaults>"

    @property
    def qis(self) -> tuple[str, ...]:
        """Declared quasi-identifiers: given, or everything any recoded attacker knows."""
        if self.quasi_identifiers is not None:
            return self.quasi_identifiers
        return tuple(dict.fromkeys(c for a in self.attackers if a.recoded for c in a.knows))

    def with_qis(self, qis: tuple[str, ...]) -> PrivacyConfig:
        return replace(self, quasi_identifiers=qis)


DEFAULT_PRIVACY_CONFIG = PrivacyConfig()

_TOP_KEYS = {"k", "l", "holder_k", "l_targets", "t", "t_targets", "outcome_noise", "quasi_identifiers", "attackers",
             "sensitive", "hierarchies", "risk"}
_T_TYPES = ("int", "bool", "category", "string")
"""Column types t-closeness is defined for here (categories: variational distance); amounts are not."""


def _err(src: str, key: str, msg: str) -> PrivacyConfigError:
    return PrivacyConfigError(f"{src}: {key}: {msg}")


_WHOLE_NUMBER_KEYS = ("k", "l", "holder_k")


def _whole(src: str, key: str, v: Any, least: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < least:
        raise _err(src, key, f"must be a whole number >= {least}, got {v!r}")
    return v


def _str_list(src: str, key: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise _err(src, key, "must be a non-empty list of column names")
    return tuple(v)


def _columns(src: str, key: str, cols: tuple[str, ...]) -> None:
    unknown = [c for c in cols if c not in SCHEMA.names]
    if unknown:
        raise _err(src, key, f"not household-table column(s): {', '.join(unknown)}")


def privacy_config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> PrivacyConfig:
    """Build and validate a :class:`PrivacyConfig` (unknown keys, types and columns are errors)."""
    if not isinstance(data, Mapping):
        raise _err(source, "(top level)", "must be a mapping of settings")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _err(source, unknown[0], f"unknown setting (allowed: {', '.join(sorted(_TOP_KEYS))})")
    cfg = PrivacyConfig(source=source)
    for key in _WHOLE_NUMBER_KEYS:  # k, l, holder_k: whole numbers >= 1
        if key in data:
            cfg = replace(cfg, **{key: _whole(source, key, data[key], 1)})
    if "outcome_noise" in data:
        on = data["outcome_noise"]
        if not isinstance(on, Mapping) or set(on) - {"flip_rate", "seed"} or "flip_rate" not in on:
            raise _err(source, "outcome_noise", "must have 'flip_rate' and optional 'seed'")
        rate = on["flip_rate"]
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate < 0.5:
            raise _err(source, "outcome_noise.flip_rate", f"must be within [0, 0.5), got {rate!r}")
        cfg = replace(cfg, outcome_flip_rate=float(rate),
                      outcome_flip_seed=_whole(source, "outcome_noise.seed", on.get("seed", 0), 0))
    if "t" in data:
        tv = data["t"]
        if tv is not None and (not isinstance(tv, (int, float)) or isinstance(tv, bool) or not 0 < tv <= 1):
            raise _err(source, "t", f"must be a number within (0, 1] (largest distance of a class's "
                                    f"distribution from the release's) or null (not targeted), got {tv!r}")
        cfg = replace(cfg, t=None if tv is None else float(tv))
    if "t_targets" in data:
        tt = data["t_targets"] or []
        if not isinstance(tt, list) or not all(isinstance(x, str) and x for x in tt):
            raise _err(source, "t_targets", "must be a list of column names")
        _columns(source, "t_targets", tuple(tt))
        bad = [c for c in tt if SCHEMA[c].dtype not in _T_TYPES]
        if bad:
            raise _err(source, "t_targets", f"t-closeness needs a categorical or whole-number column; "
                                            f"{', '.join(f'{c} is {SCHEMA[c].dtype}' for c in bad)}")
        cfg = replace(cfg, t_targets=tuple(tt))
    if "l_targets" in data:
        lt = tuple(data["l_targets"] or ())
        if not all(isinstance(x, str) for x in lt):
            raise _err(source, "l_targets", "must be a list of column names")
        _columns(source, "l_targets", lt)
        cfg = replace(cfg, l_targets=lt)
    if "attackers" in data:
        atts = data["attackers"]
        if not isinstance(atts, Mapping) or not atts:
            raise _err(source, "attackers", "must map attacker names to {description, knows}")
        parsed = []
        for name, spec in atts.items():
            key = f"attackers.{name}"
            if not isinstance(spec, Mapping) or set(spec) - {"description", "knows", "recoded"} \
                    or "knows" not in spec:
                raise _err(source, key, "must have 'knows' (list of columns) and optional 'description', "
                                        "'recoded'")
            knows = _str_list(source, f"{key}.knows", spec["knows"])
            _columns(source, f"{key}.knows", knows)
            recoded = spec.get("recoded", True)
            if not isinstance(recoded, bool):
                raise _err(source, f"{key}.recoded", "must be true or false")
            parsed.append(Attacker(str(name), str(spec.get("description", "")), knows, recoded))
        cfg = replace(cfg, attackers=tuple(parsed))
    if data.get("quasi_identifiers") is not None:  # null: the default (what the recoded attackers know)
        qis = _str_list(source, "quasi_identifiers", data["quasi_identifiers"])
        _columns(source, "quasi_identifiers", qis)
        cfg = replace(cfg, quasi_identifiers=qis)
    if "sensitive" in data:
        sens = _str_list(source, "sensitive", data["sensitive"])
        _columns(source, "sensitive", sens)
        cfg = replace(cfg, sensitive=sens)
    if "hierarchies" in data:
        hs = data["hierarchies"]
        if not isinstance(hs, Mapping):
            raise _err(source, "hierarchies", "must map columns to {edges, mandatory, preferred, decimals}")
        merged = dict(cfg.hierarchies)
        for col, spec in hs.items():
            key = f"hierarchies.{col}"
            _columns(source, key, (str(col),))
            if SCHEMA[str(col)].dtype not in ("int", "float"):
                raise _err(source, key, f"bands need a numeric column; {col} is {SCHEMA[str(col)].dtype} "
                                        "(education keeps its built-in ordered bands)")
            allowed = {"edges", "mandatory", "preferred", "decimals"}
            if not isinstance(spec, Mapping) or set(spec) - allowed or "edges" not in spec:
                raise _err(source, key, f"must have 'edges' and optional {sorted(allowed - {'edges'})}")
            nums = {}
            for part in ("edges", "mandatory", "preferred"):
                v = spec.get(part, [])
                if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                      for x in v):
                    raise _err(source, f"{key}.{part}", "must be a list of numbers")
                nums[part] = tuple(float(x) if isinstance(x, float) else x for x in v)
            dec = spec.get("decimals", 0)
            if not isinstance(dec, int) or isinstance(dec, bool):
                raise _err(source, f"{key}.decimals", f"must be a whole number, got {dec!r}")
            try:
                merged[str(col)] = BandHierarchy(str(col), nums["edges"], nums["mandatory"], nums["preferred"],
                                                 decimals=dec)
            except PrivacyError as exc:
                raise _err(source, key, str(exc)) from None
        cfg = replace(cfg, hierarchies=merged)
    if "risk" in data:
        r = data["risk"]
        if not isinstance(r, Mapping) or set(r) - {"enabled", "n_attacks", "seed", "confidence_level"}:
            raise _err(source, "risk", "allowed keys: enabled, n_attacks, seed, confidence_level")
        rc = cfg.risk
        if "enabled" in r:
            if not isinstance(r["enabled"], bool):
                raise _err(source, "risk.enabled", "must be true or false")
            rc = replace(rc, enabled=r["enabled"])
        for key, least in (("n_attacks", 1), ("seed", 0)):
            if key in r:
                rc = replace(rc, **{key: _whole(source, f"risk.{key}", r[key], least)})
        if "confidence_level" in r:
            v = r["confidence_level"]
            if not isinstance(v, (int, float)) or not 0 < v < 1:
                raise _err(source, "risk.confidence_level", f"must be within (0, 1), got {v!r}")
            rc = replace(rc, confidence_level=float(v))
        cfg = replace(cfg, risk=rc)
    return cfg


def load_privacy_config(path: str | os.PathLike[str]) -> PrivacyConfig:
    """Read a privacy YAML file (see docs/privacy.md for every key).

    >>> import tempfile
    >>> from pathlib import Path
    >>> from village_credit.privacy import load_privacy_config
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "privacy.yaml").write_text("k: 10\\n")
    ...     config = load_privacy_config(Path(tmp, "privacy.yaml"))
    >>> config.k, [a.name for a in config.attackers]  # the declared attackers are kept
    (10, ['village_insider', 'outside_party', 'lending_bank', 'register_keeper'])
    """
    p = Path(path)
    if not p.is_file():
        raise PrivacyConfigError(f"{p}: privacy config file not found")
    try:
        data = safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(parse)"
        raise PrivacyConfigError(f"{p}: {where}: not valid YAML") from None
    return privacy_config_from_dict(data, str(p))


__all__ = [
    "AGE_FAIRNESS_CUTS", "AGE_RULE_CUTS", "DEFAULT_PRIVACY_CONFIG", "INSIDER", "LENDING_BANK", "OUTSIDER",
    "REGISTER_KEEPER", "Attacker",
    "PrivacyConfig", "PrivacyConfigError", "RiskConfig", "default_hierarchies", "load_privacy_config",
    "privacy_config_from_dict",
]
