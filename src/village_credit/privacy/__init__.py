"""Privacy layer: anonymiser for raw village records and the PII scanner that guards artifacts.

Raw records (names, resident ID numbers, phones, addresses, family relations) come
in; the household table with keyed pseudonyms, quasi-identifiers generalised per
class (local recoding) to k-anonymity over what the declared attackers know
(threat_model.py, docs/privacy.md) goes out, with its measured risk. Nothing else in the toolkit should ever see raw records.
"""

from village_credit.privacy.anonymise import (
    DEFAULT_QUASI_IDENTIFIERS,
    AnonymisationReport,
    AnonymisationResult,
    anonymise,
    anonymise_file,
    default_quarantine_path,
    read_raw,
    write_quarantine,
)
from village_credit.privacy.errors import (
    KAnonymityError,
    PrivacyError,
    PseudonymKeyError,
    RawEncodingError,
    RawSchemaError,
)
from village_credit.privacy.kanon import generalise_until_k, k_anonymity, l_diversity
from village_credit.privacy.pseudonym import generate_key, key_fingerprint, load_key, pseudonymise
from village_credit.privacy.raw_records import RAW_PII_COLUMNS, add_fake_pii, generate_raw_records
from village_credit.privacy.recoding import BandHierarchy, LocationHierarchy, local_recode
from village_credit.privacy.resident_id import make_resident_ids, parse_resident_ids
from village_credit.privacy.risk import attack_risk, syntactic_risk
from village_credit.privacy.scanner import Finding, load_names, scan_pii
from village_credit.privacy.threat_model import (
    DEFAULT_PRIVACY_CONFIG,
    Attacker,
    PrivacyConfig,
    PrivacyConfigError,
    load_privacy_config,
)

__all__ = [
    "DEFAULT_PRIVACY_CONFIG",
    "DEFAULT_QUASI_IDENTIFIERS",
    "RAW_PII_COLUMNS",
    "AnonymisationReport",
    "AnonymisationResult",
    "Attacker",
    "BandHierarchy",
    "Finding",
    "KAnonymityError",
    "LocationHierarchy",
    "PrivacyConfig",
    "PrivacyConfigError",
    "PrivacyError",
    "PseudonymKeyError",
    "RawEncodingError",
    "RawSchemaError",
    "add_fake_pii",
    "anonymise",
    "anonymise_file",
    "attack_risk",
    "default_quarantine_path",
    "generalise_until_k",
    "generate_key",
    "generate_raw_records",
    "k_anonymity",
    "key_fingerprint",
    "l_diversity",
    "load_key",
    "load_names",
    "load_privacy_config",
    "local_recode",
    "make_resident_ids",
    "parse_resident_ids",
    "pseudonymise",
    "read_raw",
    "scan_pii",
    "syntactic_risk",
    "write_quarantine",
]
