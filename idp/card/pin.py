"""The two JPKI secrets and their formats, checked before anything reaches a card.

- ``PinKind.AUTH``: the 利用者証明用 PIN ("PIN1"), exactly 4 digits, 3 tries.
- ``PinKind.SIGN``: the 署名用パスワード, 6-16 characters of A-Z and 0-9 with at least one letter
  and one digit, 5 tries. Clients upper-case what the person typed (the card compares bytes, and
  OpenSC sends lower case as typed, spending a try).

A value of the wrong shape raises ``PinFormatError`` and costs no try. Messages never contain the
value itself.
"""

from __future__ import annotations

import re
from enum import Enum

from idp.card.errors import PinFormatError

AUTH_PIN_MAX_TRIES = 3
SIGN_PASSWORD_MAX_TRIES = 5

_AUTH_PIN = re.compile(r"[0-9]{4}")
_SIGN_PASSWORD = re.compile(r"[A-Z0-9]{6,16}")


class PinKind(Enum):
    """Which JPKI secret: the authentication PIN or the signature password."""

    AUTH = "auth"
    SIGN = "sign"

    @property
    def max_tries(self) -> int:
        return AUTH_PIN_MAX_TRIES if self is PinKind.AUTH else SIGN_PASSWORD_MAX_TRIES


def encode_auth_pin(pin: str) -> bytes:
    """The VERIFY data for the authentication PIN: 4 ASCII digits."""
    if not isinstance(pin, str):
        raise TypeError("the PIN must be a str")
    if _AUTH_PIN.fullmatch(pin) is None:
        raise PinFormatError("The authentication PIN must be exactly 4 digits (0-9).")
    return pin.encode("ascii")


def encode_sign_password(password: str) -> bytes:
    """The VERIFY data for the signature password: upper-cased ASCII, 6-16 of A-Z/0-9.

    Only ASCII input is upper-cased (``"ſ".upper()`` is ``"S"``; such input is refused, not
    folded into something the person did not type).
    """
    if not isinstance(password, str):
        raise TypeError("the password must be a str")
    if not password.isascii():
        raise PinFormatError("The signature password may only use the letters A-Z and digits 0-9.")
    upper = password.upper()
    if _SIGN_PASSWORD.fullmatch(upper) is None:
        raise PinFormatError("The signature password must be 6 to 16 characters of A-Z and 0-9.")
    if not any(c.isdigit() for c in upper) or not any(c.isalpha() for c in upper):
        raise PinFormatError(
            "The signature password must contain at least one letter and one digit."
        )
    return upper.encode("ascii")


def encode_pin(kind: PinKind, value: str) -> bytes:
    """The VERIFY data for ``value`` as a secret of ``kind`` (format-checked)."""
    if kind is PinKind.AUTH:
        return encode_auth_pin(value)
    return encode_sign_password(value)
