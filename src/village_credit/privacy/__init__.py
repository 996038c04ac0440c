"""Privacy layer: anonymiser for raw village records and the PII scanner that guards artifacts.

Raw records (names, resident ID numbers, phones, addresses, family relations) come
in; the household table with keyed pseudonyms, quasi-identifiers generalised per
class (local recoding) to k-anonymity over what the declared attackers know
(threat_model.py, docs/privacy.md) goes out, with its measured risk. Nothing else in
the toolkit should ever see raw records. Here: what the CLI and an analyst use; the
building blocks (k-anonymity, recoding, resident IDs, risk, utility) are reached
through their modules.
"""

from village_credit.privacy.anonymise import anonymise, anonymise_file
from village_credit.privacy.errors import PrivacyError
from village_credit.privacy.pseudonym import generate_key
from village_credit.privacy.raw_records import generate_raw_records
from village_credit.privacy.scanner import load_names, scan_pii
from village_credit.privacy.threat_model import DEFAULT_PRIVACY_CONFIG, load_privacy_config

__all__ = ["DEFAULT_PRIVACY_CONFIG", "PrivacyError", "anonymise", "anonymise_file", "generate_key",
           "generate_raw_records", "load_names", "load_privacy_config", "scan_pii"]
