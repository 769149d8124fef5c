"""Object identifiers of the JPKI certificate profile.

Arc ``1.2.392.200149.8.5`` belongs to J-LIS (公的個人認証サービス):

- ``…8.5.1`` certificate policies (``.1.20`` signature class 20, ``.3.30`` authentication
  class 30, ``.0.20`` the signature policy of J-LIS test cards);
- ``…8.5.5`` personal data (the "basic 4": name, address, birthdate, sex and the substitution
  flags), carried as ``otherName`` entries in the subjectAltName of the signature certificate.

Values are dotted strings (comparable with ``ObjectIdentifier.dotted_string``); the
``*_OID`` twins are ``cryptography`` objects for builders and extension look-ups.
"""

from __future__ import annotations

from typing import Final

from cryptography.x509 import ObjectIdentifier

AUTH_POLICY: Final = "1.2.392.200149.8.5.1.3.30"
"""利用者証明用電子証明書 (user authentication), class 30."""

SIGN_POLICY: Final = "1.2.392.200149.8.5.1.1.20"
"""署名用電子証明書 (digital signature), class 20. The extension is critical."""

TEST_SIGN_POLICY: Final = "1.2.392.200149.8.5.1.0.20"
"""Signature policy found on J-LIS test cards (``O=JPKI-TEST``)."""

BASIC4_NAME: Final = "1.2.392.200149.8.5.5.1"
"""氏名: surname, U+3000, given name."""

BASIC4_NAME_SUBSTITUTION: Final = "1.2.392.200149.8.5.5.2"
"""氏名代替文字の使用位置: one ``0``/``1`` per character of the name."""

BASIC4_SEX: Final = "1.2.392.200149.8.5.5.3"
"""性別: ``1`` male, ``2`` female, ``3`` unknown."""

BASIC4_BIRTHDATE: Final = "1.2.392.200149.8.5.5.4"
"""生年月日: ``EYYYYMMDD``, era code then the Gregorian date."""

BASIC4_ADDRESS: Final = "1.2.392.200149.8.5.5.5"
"""住所: from the prefecture on, no postal code."""

BASIC4_ADDRESS_SUBSTITUTION: Final = "1.2.392.200149.8.5.5.6"
"""住所代替文字の使用位置: one ``0``/``1`` per character of the address."""

BASIC4_ORDER: Final = (
    BASIC4_NAME,
    BASIC4_BIRTHDATE,
    BASIC4_SEX,
    BASIC4_ADDRESS,
    BASIC4_NAME_SUBSTITUTION,
    BASIC4_ADDRESS_SUBSTITUTION,
)
"""The order of the otherName entries on a real signature certificate."""

AUTH_POLICY_OID: Final = ObjectIdentifier(AUTH_POLICY)
SIGN_POLICY_OID: Final = ObjectIdentifier(SIGN_POLICY)
TEST_SIGN_POLICY_OID: Final = ObjectIdentifier(TEST_SIGN_POLICY)
