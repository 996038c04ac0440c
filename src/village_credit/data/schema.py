"""The household table: one row per household, the contract every layer reads.

Why one wide table: the credit center scores *files*, in chunks, on one machine or
on Spark. Keeping the monthly credit history as fixed-width columns
(``due_m01 .. due_m36`` and friends, ``m36`` = the month just before the snapshot)
means one row holds everything needed to decide on a household, so streaming,
Spark UDFs and the MLflow model signature all stay simple. ``history_long`` turns
those columns into a tidy monthly table for analysts.

Columns carry a *role*:

* ``id`` / ``meta``: identifiers and bookkeeping (never model features);
* ``profile``: household and head-of-household attributes;
* ``rule``: inputs the points standards read (honours, base conditions);
* ``event``: dated deduction and veto events (credit repair needs the date);
* ``history``: the monthly credit history;
* ``truth``: ground truth known only for synthetic data; never a feature.

Protected attributes (age, formerly-poor status) are ``profile`` columns; whether a
model may use them is a feature-configuration choice, not a schema one.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Any, Literal

Dtype = Literal["string", "int", "float", "bool", "date", "category"]
Role = Literal["id", "meta", "profile", "rule", "event", "history", "truth"]

HISTORY_MONTHS = 36
"""Default length of the monthly history (months before the snapshot)."""


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the household table: type, allowed values, meaning."""

    name: str
    dtype: Dtype
    role: Role
    description: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] = ()
    nullable: bool = False
    label_zh: str = ""


LEVELS_COUNTY_UP = ("none", "county", "city", "province", "national")
LEVELS_VILLAGE_TO_COUNTY = ("none", "village", "town", "county")
LEVELS_VILLAGE_TO_CITY = ("none", "village", "town", "county", "city")
EDUCATION = ("none", "primary", "junior", "senior", "tertiary")

DEDUCTION_ITEMS: tuple[tuple[str, str, str], ...] = (
    # (item key, English, Chinese)
    ("hygiene", "garbage, clutter or yard hygiene below standard", "环境卫生不达标"),
    ("posting", "illegal posting or painting of adverts", "乱贴乱画"),
    ("burning", "illegal burning of straw or waste", "违规焚烧"),
    ("traffic", "traffic violation", "交通违法"),
    ("pollution", "livestock or business pollution, safety hazard", "养殖经营污染或安全隐患"),
    ("extravagance", "extravagant wedding or funeral", "婚丧大操大办"),
    ("online_harm", "spreading harmful information online", "网络传播有害信息"),
    ("ethics", "breach of social, professional, family or personal ethics", "违反道德规范"),
    ("party_absence", "party member absent from party activities", "党员无故不参加组织生活"),
    ("obstruction", "obstructing public infrastructure works", "阻挠公共设施建设"),
    ("noncooperation", "not supporting anti-fraud app, vaccination etc.", "不配合反诈疫苗等工作"),
)

VETO_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("crime", "gang crime, theft, pyramid selling, gambling, drugs or fighting", "涉黑涉恶盗窃传销黄赌毒"),
    ("petition", "illegal petitioning for profit or pressure", "违法缠访闹访"),
    ("cult", "cult or illegal religious activity", "参与邪教非法宗教"),
    ("financial", "overdue loan, malicious default, tax evasion, usury or illegal fund-raising",
     "贷款逾期恶意逃废债偷逃税高利贷非法集资"),
    ("subsidy_fraud", "fraudulently claiming subsidies or social security", "骗取低保补贴"),
    ("illegal_land", "illegal land use or buildings", "违法占地违章建筑"),
)

INCOME_SOURCES = ("farming", "livestock", "migrant", "business", "pension_subsidy")


def _history_columns(months: int = HISTORY_MONTHS) -> list[ColumnSpec]:
    cols: list[ColumnSpec] = []
    for m in range(1, months + 1):
        tag = f"m{m:02d}"
        cols += [
            ColumnSpec(f"due_{tag}", "float", "history",
                       f"Loan instalment due in month {m} of {months} (m{months:02d} = last month before snapshot); 0 when no loan.",
                       "yuan", 0, 1e7, label_zh="应还金额"),
            ColumnSpec(f"paid_{tag}", "float", "history",
                       f"Amount repaid in month {m}.", "yuan", 0, 1e7, label_zh="实还金额"),
            ColumnSpec(f"dpd_{tag}", "int", "history",
                       f"Days past due at the end of month {m}; 0 when current or no loan.",
                       "days", 0, 999, label_zh="逾期天数"),
            ColumnSpec(f"utility_late_{tag}", "int", "history",
                       f"1 if the household paid water/electricity late in month {m}.",
                       "flag", 0, 1, label_zh="水电费逾期"),
        ]
    return cols


def _columns(months: int = HISTORY_MONTHS) -> list[ColumnSpec]:
    cols = [
        ColumnSpec("household_id", "string", "id", "Pseudonymous household id (no personal data).", label_zh="户编号"),
        ColumnSpec("township_code", "string", "id", "Township code.", label_zh="乡镇代码"),
        ColumnSpec("village_code", "string", "id", "Village code (unique across townships).", label_zh="村代码"),
        ColumnSpec("snapshot_date", "date", "meta", "Date the household file was assessed (evaluation date).", label_zh="评议日期"),
        ColumnSpec("vintage", "int", "meta", "Snapshot number: 1 = first review, 2 = the later review with drift.", "", 1, 99),
        # --- profile -----------------------------------------------------------
        ColumnSpec("head_age", "int", "profile", "Age of the head of household at the snapshot.", "years", 18, 100, label_zh="户主年龄"),
        ColumnSpec("head_gender", "category", "profile", "Gender of the head of household.", categories=("F", "M"), label_zh="户主性别"),
        ColumnSpec("education", "category", "profile", "Highest education of the head.", categories=EDUCATION, label_zh="文化程度"),
        ColumnSpec("household_size", "int", "profile", "People in the household.", "persons", 1, 15, label_zh="家庭人口"),
        ColumnSpec("dependents", "int", "profile", "Children, elderly or sick people without income.", "persons", 0, 14, label_zh="供养人口"),
        ColumnSpec("smartphone", "bool", "profile", "Head uses a smartphone well.", label_zh="使用智能手机"),
        ColumnSpec("formerly_poor", "bool", "profile", "Formerly poor household (脱贫户), registered in poverty alleviation.", label_zh="脱贫户"),
        ColumnSpec("social_insurance", "bool", "profile", "Enrolled in rural pension and medical insurance.", label_zh="参加社保"),
        ColumnSpec("new_agri_operator", "bool", "profile", "New agricultural operator (family farm, cooperative head, large grower).", label_zh="新型农业经营主体"),
        ColumnSpec("individual_business", "bool", "profile", "Runs an individual business (个体工商户).", label_zh="个体工商户"),
        ColumnSpec("land_mu", "float", "profile", "Contracted and transferred-in land.", "mu", 0, 5000, label_zh="土地面积"),
        ColumnSpec("assets_yuan", "float", "profile", "Estimated household assets (house, machinery, livestock, deposits).", "yuan", 0, 1e9, label_zh="家庭资产"),
        *[
            ColumnSpec(f"income_{s}", "float", "profile", f"Annual income from {s.replace('_', ' ')}.", "yuan/year", 0, 1e8,
                       label_zh={"farming": "种植收入", "livestock": "养殖收入", "migrant": "务工收入",
                                 "business": "经营收入", "pension_subsidy": "养老金及补贴收入"}[s])
            for s in INCOME_SOURCES
        ],
        ColumnSpec("income_volatility", "float", "profile", "Coefficient of variation of total annual income over the last three years.", "ratio", 0, 10, label_zh="收入波动"),
        ColumnSpec("credit_limit_yuan", "float", "profile", "Current revolving credit limit held (0 if none).", "yuan", 0, 1e8, label_zh="授信额度"),
        ColumnSpec("balance_yuan", "float", "profile", "Current outstanding bank loan balance.", "yuan", 0, 1e8, label_zh="贷款余额"),
        ColumnSpec("private_debt_yuan", "float", "profile", "Informal borrowing from relatives or private lenders.", "yuan", 0, 1e8, label_zh="民间借款"),
        # --- base-item conditions (Jinxiang) -----------------------------------
        ColumnSpec("full_civil_capacity", "bool", "rule", "Head has full capacity for civil conduct.", label_zh="完全民事行为能力"),
        ColumnSpec("fixed_residence", "bool", "rule", "Household has a fixed residence.", label_zh="固定住所"),
        ColumnSpec("fixed_income", "bool", "rule", "Household has a fixed income source.", label_zh="固定收入"),
        ColumnSpec("major_bad_credit", "bool", "rule", "A major bad record in the central bank credit report.", label_zh="重大不良信用记录"),
        # --- honours (bonus items): highest level held -------------------------
        ColumnSpec("hon_moral_model", "category", "rule", "Moral model / good person honour, highest level.", categories=LEVELS_COUNTY_UP, label_zh="道德模范好人"),
        ColumnSpec("hon_family", "category", "rule", "Civilised / five-good / most-beautiful / filial family, good in-law honour.", categories=LEVELS_VILLAGE_TO_COUNTY, label_zh="文明家庭"),
        ColumnSpec("hon_courtyard", "category", "rule", "Beautiful / clean courtyard honour.", categories=LEVELS_VILLAGE_TO_CITY, label_zh="美丽庭院"),
        ColumnSpec("hon_talent", "category", "rule", "Practical talent, rural star, youth entrepreneur, May-4th medal, youth volunteer.", categories=LEVELS_COUNTY_UP, label_zh="乡村人才"),
        ColumnSpec("party_member", "bool", "rule", "Head is a Communist Party member.", label_zh="党员"),
        ColumnSpec("hon_party", "category", "rule", "Outstanding party member / party worker honour.", categories=LEVELS_COUNTY_UP, label_zh="优秀党员"),
        ColumnSpec("hon_veteran_brave", "bool", "rule", "Veteran, or brave act for justice.", label_zh="退役军人见义勇为"),
        ColumnSpec("hon_virtue", "bool", "rule", "Recognised for helping others, honesty, dedication or filial piety.", label_zh="助人为乐诚实守信"),
        ColumnSpec("hon_frugal_ceremony", "bool", "rule", "Held a frugal wedding or funeral (customs reform).", label_zh="婚事新办丧事简办"),
    ]
    for key, en, zh in DEDUCTION_ITEMS:
        cols.append(ColumnSpec(f"ded_{key}_date", "date", "event",
                               f"Date of the most recent recorded event: {en}. Empty if none.",
                               nullable=True, label_zh=zh))
    for key, en, zh in VETO_FAMILIES:
        cols.append(ColumnSpec(f"veto_{key}_date", "date", "event",
                               f"Date of the most recent veto event: {en}. Empty if none.",
                               nullable=True, label_zh=zh))
    cols += _history_columns(months)
    cols += [
        ColumnSpec("granted_hist", "bool", "truth", "Would have been granted credit under the historical rule policy (selection)."),
        ColumnSpec("outcome_observed", "bool", "truth", "Outcome observable in the real world (only for households historically granted credit)."),
        ColumnSpec("true_pd", "float", "truth", "True 12-month probability of default from the generator's latent model.", "probability", 0, 1),
        ColumnSpec("default_12m", "int", "truth", "90+ days past due within 12 months after the snapshot (drawn from true_pd for every household).", "flag", 0, 1),
    ]
    return cols


@dataclass(frozen=True)
class HouseholdSchema:
    """The declared household table for a given history length.

    Examples
    --------
    >>> from village_credit.data import SCHEMA, HouseholdSchema
    >>> SCHEMA.months, len(SCHEMA.names)
    (36, 204)
    >>> SCHEMA.names_by_role("truth")
    ['granted_hist', 'outcome_observed', 'true_pd', 'default_12m']
    >>> len(HouseholdSchema(months=12).names)  # four monthly series, 24 months shorter
    108
    """

    months: int = HISTORY_MONTHS
    columns: tuple[ColumnSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.columns:
            object.__setattr__(self, "columns", tuple(_columns(self.months)))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def by_role(self, *roles: Role) -> list[ColumnSpec]:
        return [c for c in self.columns if c.role in roles]

    def names_by_role(self, *roles: Role) -> list[str]:
        return [c.name for c in self.by_role(*roles)]

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column {name!r} in the household schema")

    @property
    def input_columns(self) -> list[str]:
        """Columns a scoring input must have: everything but ground truth."""
        return [c.name for c in self.columns if c.role != "truth"]


SCHEMA = HouseholdSchema()
TRUTH_COLUMNS = SCHEMA.names_by_role("truth")
ID_COLUMNS = ["household_id", "township_code", "village_code"]


def history_columns(kind: str, months: int = HISTORY_MONTHS) -> list[str]:
    """Names of one monthly history series, oldest first (kind: due, paid, dpd, utility_late).

    Examples
    --------
    >>> from village_credit.data import history_columns
    >>> history_columns("dpd", months=3)
    ['dpd_m01', 'dpd_m02', 'dpd_m03']
    """
    return [f"{kind}_m{m:02d}" for m in range(1, months + 1)]


def months_in(columns: list[str] | tuple[str, ...]) -> int:
    """How many history months a table carries, read from its ``dpd_mNN`` columns.

    Examples
    --------
    >>> from village_credit.data import months_in
    >>> months_in(["household_id", "dpd_m01", "dpd_m02", "due_m01"])
    2
    """
    return sum(1 for c in columns if c.startswith("dpd_m") and c[5:].isdigit())


#: Column names that may hold raw personal data (matched case-insensitively, as a
#: whole name or a ``_``-separated part: ``name``, ``head_name``, ``id_number``,
#: ``telephone``, ...). Never features, never logged.
PERSONAL_COLUMN_PATTERN = re.compile(
    r"(^|_)(name|names|id_number|id_no|idcard|id_card|resident_id|phone|mobile|tel|telephone|"
    r"address|addr)($|_)",
    re.IGNORECASE,
)


def personal_columns(columns: Any) -> list[str]:
    """Columns whose names look like raw personal data (see ``PERSONAL_COLUMN_PATTERN``)."""
    return [str(c) for c in columns if PERSONAL_COLUMN_PATTERN.search(str(c))]
