"""Raw-mode synthetic data: the generator's households dressed as a real village file.

Why: the anonymiser and the PII scanner must be tested on data that looks like what
a village committee hands over (names, resident ID numbers, phones, addresses, family
relations), without anyone's real data. Every value here is fake but realistic:
surnames drawn with their real frequencies, ID numbers with valid check digits whose
birth date and gender agree with the household head, phone numbers with real mobile
prefixes, addresses from real county names down to a village group and house number.

The columns the anonymiser must re-derive (``head_age``, ``head_gender``) and the
pseudonymous ``household_id`` are dropped, so an anonymiser round trip is a real test:
the raw file's household identifier is the head's resident ID number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from village_credit.data.generator import generate_households
from village_credit.privacy.resident_id import convert_15_to_18, make_resident_ids

RAW_PII_COLUMNS: tuple[str, ...] = ("name", "resident_id", "phone", "address", "family_relations")
"""Direct identifiers of a raw village file (English header names)."""

RAW_HEADER_ALIASES: dict[str, str] = {
    "姓名": "name", "户主姓名": "name", "户主": "name",
    "身份证号": "resident_id", "身份证号码": "resident_id", "公民身份号码": "resident_id",
    "户主身份证号": "resident_id", "id_number": "resident_id", "id_card": "resident_id",
    "联系电话": "phone", "手机号": "phone", "手机号码": "phone", "电话": "phone", "mobile": "phone",
    "家庭住址": "address", "住址": "address", "地址": "address",
    "家庭关系": "family_relations", "家庭成员": "family_relations", "relations": "family_relations",
    "乡镇代码": "township_code", "村代码": "village_code", "评议日期": "snapshot_date",
}
"""Chinese (and common English) headers real files use -> the anonymiser's names."""

DERIVED_COLUMNS: tuple[str, ...] = ("household_id", "head_age", "head_gender")
"""Household-table columns a raw file does not carry: the anonymiser derives them."""

# Surnames with approximate shares (%) of the population (2020 census order).
_SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("李", 7.0), ("张", 6.8), ("刘", 5.4), ("陈", 4.5), ("杨", 3.1), ("赵", 2.3),
    ("黄", 2.2), ("周", 2.1), ("吴", 2.0), ("徐", 1.7), ("孙", 1.5), ("胡", 1.3), ("朱", 1.3),
    ("高", 1.2), ("林", 1.2), ("何", 1.2), ("郭", 1.2), ("马", 1.1), ("罗", 0.9), ("梁", 0.8),
    ("宋", 0.8), ("郑", 0.8), ("谢", 0.7), ("韩", 0.6), ("唐", 0.6), ("冯", 0.6), ("于", 0.6),
    ("董", 0.6), ("萧", 0.5), ("程", 0.5), ("曹", 0.5), ("袁", 0.5), ("邓", 0.5), ("许", 0.5),
    ("傅", 0.5), ("沈", 0.5), ("曾", 0.5), ("彭", 0.4), ("吕", 0.4), ("苏", 0.4), ("卢", 0.4),
    ("蒋", 0.4), ("蔡", 0.4), ("贾", 0.4), ("丁", 0.4), ("魏", 0.4), ("薛", 0.3), ("叶", 0.3),
    ("阎", 0.3), ("余", 0.3), ("潘", 0.3), ("杜", 0.3), ("戴", 0.3), ("夏", 0.3), ("钟", 0.3),
    ("汪", 0.3), ("田", 0.3), ("任", 0.3), ("姜", 0.3), ("范", 0.3), ("方", 0.3), ("石", 0.3),
    ("姚", 0.3), ("谭", 0.3), ("廖", 0.2), ("邹", 0.2), ("熊", 0.2), ("金", 0.2), ("陆", 0.2),
    ("郝", 0.2), ("孔", 0.2), ("白", 0.2), ("崔", 0.2), ("康", 0.2), ("毛", 0.2), ("邱", 0.2),
    ("秦", 0.2), ("江", 0.2), ("史", 0.2), ("顾", 0.2), ("侯", 0.2), ("邵", 0.2), ("孟", 0.2),
    ("欧阳", 0.05), ("司马", 0.01), ("诸葛", 0.01),
)
_MALE_CHARS = tuple("伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆磊民友裕河哲江超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以建家致树炎德行时泰盛雄琛钧冠策腾楠榕风航弘建华军红卫")
_FEMALE_CHARS = tuple("秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝丽")
_PLACE_CHARS = tuple("东西南北新老大小高石马牛龙凤安乐和平兴福寿康丰盛宝金银青红白黄三五七九杨柳桥河山湖坪岗庄集营屯堡店沟湾岭坡塘溪林花桃李枣梨双")

_COUNTIES: tuple[tuple[str, str, str, str], ...] = (
    # (province, prefecture, county, 6-digit region code)
    ("山东省", "济宁市", "金乡县", "370828"),
    ("山东省", "济宁市", "任城区", "370811"),
    ("浙江省", "嘉兴市", "桐乡市", "330483"),
    ("河南省", "周口市", "郸城县", "411625"),
    ("四川省", "南充市", "仪陇县", "511324"),
    ("湖南省", "邵阳市", "隆回县", "430524"),
    ("江西省", "赣州市", "兴国县", "360732"),
    ("甘肃省", "定西市", "通渭县", "621121"),
)
_MOBILE_PREFIXES: tuple[str, ...] = tuple(
    [f"13{d}" for d in range(10)] + ["145", "147", "150", "151", "152", "153", "155", "156",
                                     "157", "158", "159", "166", "172", "173", "175", "176",
                                     "177", "178", "180", "181", "182", "183", "184", "185",
                                     "186", "187", "188", "189", "191", "193", "195", "198", "199"]
)


def chinese_names(rng: np.random.Generator, genders: np.ndarray | pd.Series,
                  surnames: np.ndarray | None = None) -> pd.Series:
    """Realistic fake full names: frequency-weighted surname + 1-2 gendered given-name characters."""
    g = pd.Series(np.asarray(genders)).astype(str).str.upper().str.startswith("M").to_numpy()
    n = len(g)
    if surnames is None:
        sn, w = zip(*_SURNAMES, strict=True)
        p = np.asarray(w) / np.sum(w)
        surnames = np.asarray(sn, dtype=object)[rng.choice(len(sn), size=n, p=p)]
    male, female = np.asarray(_MALE_CHARS, dtype=object), np.asarray(_FEMALE_CHARS, dtype=object)
    c1 = np.where(g, male[rng.integers(0, len(male), n)], female[rng.integers(0, len(female), n)])
    c2 = np.where(g, male[rng.integers(0, len(male), n)], female[rng.integers(0, len(female), n)])
    two = rng.random(n) < 0.8
    given = np.where(two, c1 + c2, c1)
    return pd.Series(np.asarray(surnames, dtype=object) + given, dtype="string")


def mobile_numbers(rng: np.random.Generator, n: int) -> pd.Series:
    """Fake 11-digit mainland mobile numbers with real carrier prefixes."""
    pre = np.asarray(_MOBILE_PREFIXES, dtype=object)[rng.integers(0, len(_MOBILE_PREFIXES), n)]
    rest = pd.Series(rng.integers(0, 10**8, n)).astype(str).str.zfill(8)
    return pd.Series(pre, dtype="string") + rest.astype("string")


def _place_names(rng: np.random.Generator, n: int, suffixes: np.ndarray) -> np.ndarray:
    chars = np.asarray(_PLACE_CHARS, dtype=object)
    names = chars[rng.integers(0, len(chars), n)] + chars[rng.integers(0, len(chars), n)] + suffixes
    # keep them distinct so addresses map back to one code
    seen: dict[str, int] = {}
    out = []
    for nm in names:
        seen[nm] = seen.get(nm, 0) + 1
        out.append(nm if seen[nm] == 1 else f"{nm[:-1]}{seen[nm]}{nm[-1]}")
    return np.asarray(out, dtype=object)


def _birth_dates(rng: np.random.Generator, ages: pd.Series, snapshot: pd.Series) -> pd.Series:
    """Birth dates with exactly ``ages`` completed years at ``snapshot`` (Feb 29 safe)."""
    snap = pd.to_datetime(snapshot).reset_index(drop=True)
    year = snap.dt.year - pd.Series(np.asarray(ages, dtype=int))
    month, day = snap.dt.month, snap.dt.day
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    day = day.where(~((month == 2) & (day == 29) & ~leap), 28)
    anniversary = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}))
    # back off 0..364 days: still the same completed age, since a year has >= 365 days
    return anniversary - pd.to_timedelta(rng.integers(0, 365, len(snap)), unit="D")


def _family_relations(rng: np.random.Generator, head_surname: np.ndarray, head_male: np.ndarray,
                      size: np.ndarray) -> pd.Series:
    """'配偶:张秀英;长子:李伟;...' with fake names, one entry per other household member."""
    n = len(size)
    out = pd.Series([""] * n, dtype="string")
    spouse = (size >= 2) & (rng.random(n) < 0.85)
    sn, w = zip(*_SURNAMES, strict=True)
    sp_surname = np.asarray(sn, dtype=object)[rng.choice(len(sn), size=n, p=np.asarray(w) / np.sum(w))]
    sp_name = chinese_names(rng, np.where(head_male, "F", "M"), surnames=sp_surname)
    # children take the father's surname
    child_surname = np.where(head_male | ~spouse, head_surname, sp_surname)
    out = out.where(~spouse, "配偶:" + sp_name)
    sons = ("长子", "次子", "三子", "四子")
    daughters = ("长女", "次女", "三女", "四女")
    n_son = np.zeros(n, dtype=int)
    n_dau = np.zeros(n, dtype=int)
    has_father = np.zeros(n, dtype=bool)
    has_mother = np.zeros(n, dtype=bool)
    others = size - 1 - spouse.astype(int)
    for slot in range(int(others.max()) if n else 0):
        active = others > slot
        kind = rng.random(n)
        grandparent = (kind >= 0.75) & (kind < 0.9)
        male = rng.random(n) < 0.5
        grandparent &= ~np.where(male, has_father, has_mother)  # one father, one mother
        child = ~grandparent & (kind < 0.9)
        has_father |= active & grandparent & male
        has_mother |= active & grandparent & ~male
        nm = chinese_names(rng, np.where(male, "M", "F"), surnames=child_surname)
        # the head's father shares the head's surname, the mother has her own
        father = chinese_names(rng, np.full(n, "M"), surnames=head_surname)
        mother = chinese_names(rng, np.full(n, "F"))
        elder = pd.Series(np.where(male, father.to_numpy(dtype=object), mother.to_numpy(dtype=object)),
                          dtype="string")
        rel = np.where(
            child, np.where(male, np.asarray(sons, dtype=object)[np.minimum(n_son, 3)],
                            np.asarray(daughters, dtype=object)[np.minimum(n_dau, 3)]),
            np.where(grandparent, np.where(male, "父亲", "母亲"), np.where(male, "孙子", "孙女")))
        name = np.where(grandparent, elder.to_numpy(dtype=object), nm.to_numpy(dtype=object))
        n_son += (active & child & male).astype(int)
        n_dau += (active & child & ~male).astype(int)
        entry = pd.Series(rel, dtype="string") + ":" + pd.Series(name, dtype="string")
        joined = (out + ";").where(out != "", "") + entry
        out = out.where(~active, joined)
    return out


def add_fake_pii(
    households: pd.DataFrame,
    seed: int,
    *,
    invalid_id_rate: float = 0.0,
    old_id_rate: float = 0.0,
    chinese_headers: bool = False,
) -> pd.DataFrame:
    """Turn a household table into a raw village file (see module docstring).

    ``invalid_id_rate`` corrupts that share of ID numbers (one digit changed, so the
    check digit fails) and ``old_id_rate`` writes that share in the pre-1999 15-digit
    form: both exercise the anonymiser's quarantine and conversion paths.
    """
    rng = np.random.default_rng([int(seed), 11])
    hh = households.reset_index(drop=True)
    n = len(hh)
    male = hh["head_gender"].astype(str).eq("M").to_numpy()

    sn, w = zip(*_SURNAMES, strict=True)
    surnames = np.asarray(sn, dtype=object)[rng.choice(len(sn), size=n, p=np.asarray(w) / np.sum(w))]
    names = chinese_names(rng, np.where(male, "M", "F"), surnames=surnames)

    # places: a county per township, a name per township and village
    towns = pd.Index(pd.unique(hh["township_code"].astype(str)))
    villages = pd.Index(pd.unique(hh["village_code"].astype(str)))
    county_of_town = rng.integers(0, len(_COUNTIES), len(towns))
    town_names = _place_names(rng, len(towns), np.where(rng.random(len(towns)) < 0.7, "镇", "乡"))
    village_names = _place_names(rng, len(villages), np.full(len(villages), "村", dtype=object))
    ti = towns.get_indexer(hh["township_code"].astype(str))
    vi = villages.get_indexer(hh["village_code"].astype(str))
    county = np.asarray(_COUNTIES, dtype=object)[county_of_town[ti]]
    group = pd.Series(rng.integers(1, 13, n)).astype(str)
    house = pd.Series(rng.integers(1, 200, n)).astype(str)
    address = (pd.Series(county[:, 0] + county[:, 1] + county[:, 2] + town_names[ti] + village_names[vi],
                         dtype="string") + group + "组" + house + "号")

    # ID numbers: registered in the home county (10 % elsewhere), age/gender of the head
    region = np.where(rng.random(n) < 0.9, county[:, 3],
                      np.asarray([c[3] for c in _COUNTIES], dtype=object)[rng.integers(0, len(_COUNTIES), n)])
    birth = _birth_dates(rng, hh["head_age"], hh["snapshot_date"])
    ids = pd.Series(make_resident_ids(rng, birth, np.where(male, "M", "F"), region), dtype="string")
    for _ in range(20):  # redraw the rare duplicates (same county, birthday and sequence)
        dup = ids.duplicated().to_numpy()
        if not dup.any():
            break
        ids[dup] = make_resident_ids(rng, birth[dup], np.where(male, "M", "F")[dup], region[dup])
    if old_id_rate > 0:
        old = (rng.random(n) < old_id_rate) & (birth.dt.year.between(1900, 1999)).to_numpy()
        ids[old] = ids[old].str.slice(0, 6) + ids[old].str.slice(8, 17)
    if invalid_id_rate > 0:
        bad = (rng.random(n) < invalid_id_rate) & (ids.str.len() == 18).to_numpy()
        pos = rng.integers(0, 17, n)
        chars = ids.to_numpy(dtype=object)
        for i in np.flatnonzero(bad):  # few rows: a loop is clearer than array surgery
            d = int(chars[i][pos[i]])
            chars[i] = chars[i][:pos[i]] + str((d + 1 + rng.integers(0, 9)) % 10) + chars[i][pos[i] + 1:]
        ids = pd.Series(chars, dtype="string")

    raw: dict[str, Any] = {
        "name": names,
        "resident_id": ids,
        "phone": mobile_numbers(rng, n),
        "address": address,
        "family_relations": _family_relations(rng, surnames, male, hh["household_size"].to_numpy()),
    }
    rest = hh.drop(columns=[c for c in DERIVED_COLUMNS if c in hh.columns])
    out = pd.concat([pd.DataFrame(raw), rest], axis=1)
    if chinese_headers:
        back = {"name": "户主姓名", "resident_id": "身份证号码", "phone": "联系电话",
                "address": "家庭住址", "family_relations": "家庭成员"}
        out = out.rename(columns=back)
    return out


def names_in(raw: pd.DataFrame) -> list[str]:
    """Every person's name in a raw file (heads and family members): the scanner's name list."""
    raw = raw.rename(columns=RAW_HEADER_ALIASES)
    names = set(raw["name"].dropna().astype(str)) if "name" in raw.columns else set()
    if "family_relations" in raw.columns:
        members = raw["family_relations"].dropna().astype(str).str.split(";").explode()
        names |= set(members.str.split(":").str[-1].dropna().str.strip()) - {""}
    return sorted(names)


def generate_raw_records(config: Any, **kwargs: Any) -> pd.DataFrame:
    """Synthetic households (``generate_households(config)``) with fake personal data.

    Keyword arguments go to :func:`add_fake_pii` (``invalid_id_rate``, ``old_id_rate``,
    ``chinese_headers``). Deterministic for a given ``config.seed``.

    >>> from village_credit.data.generator import GeneratorConfig
    >>> from village_credit.privacy import generate_raw_records
    >>> raw = generate_raw_records(GeneratorConfig(n_households=50, seed=0))
    >>> len(raw), list(raw.columns[:5])  # fake personal data first, then the household table
    (50, ['name', 'resident_id', 'phone', 'address', 'family_relations'])
    """
    return add_fake_pii(generate_households(config), int(config.seed), **kwargs)


__all__ = [
    "DERIVED_COLUMNS", "RAW_HEADER_ALIASES", "RAW_PII_COLUMNS", "add_fake_pii", "chinese_names",
    "convert_15_to_18", "generate_raw_records", "mobile_numbers", "names_in",
]
