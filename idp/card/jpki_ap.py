"""Identifiers of the My Number card's applications and JPKI-AP files (facts, no behaviour).

Shared by the client (``idp.card.jpki``) and the virtual card (``idp.card.virtual``); tests
spell the same bytes out in hex so that a wrong constant here cannot hide.
"""

from __future__ import annotations

from enum import Enum

from idp.card.pin import PinKind

JPKI_AID = bytes.fromhex("D392F000260100000001")
"""公的個人認証AP (JPKI-AP)."""
TEXT_AP_AID = bytes.fromhex("D3921000310001010408")
"""券面事項入力補助AP: holds the My Number. The client never selects it."""
VISUAL_AP_AID = bytes.fromhex("D3921000310001010402")
"""券面AP (券面事項確認AP)."""
JUKI_AP_AID = bytes.fromhex("D3921000310001010401")
"""住基AP."""
COMMON_AP_AID = bytes.fromhex("D3921000310001010100")
"""The fifth DF (共通/"unknown")."""

EF_SIGN_CERT = 0x0001
EF_SIGN_CA = 0x0002
EF_TOKEN_INFO = 0x0006
EF_CERT_AVAILABILITY = 0x0008
EF_AUTH_CERT = 0x000A
EF_AUTH_CA = 0x000B
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018
EF_SIGN_KEY = 0x001A
EF_SIGN_PIN = 0x001B

TOKEN_INFO_LENGTH = 160
TOKEN_LABEL_LENGTH = 32

PIN_EF = {PinKind.AUTH: EF_AUTH_PIN, PinKind.SIGN: EF_SIGN_PIN}
KEY_EF = {PinKind.AUTH: EF_AUTH_KEY, PinKind.SIGN: EF_SIGN_KEY}


class TokenKind(Enum):
    """What kind of JPKI token answers, from the label in EF 0006."""

    CARD = "JPKIAPICCTOKEN2"
    """マイナンバーカード."""
    ANDROID = "JPKIAPGPSETOKEN"
    """スマホ用電子証明書 on Android."""
    IPHONE = "JPKIAPIOSTOKEN"
    """スマホ用電子証明書 on iPhone."""
    JUKI = "JPKIAPICCTOKEN"
    """The old 住基カード: refused."""
    UNKNOWN = ""

    @classmethod
    def from_label(cls, label: str) -> TokenKind:
        for kind in cls:
            if kind is not cls.UNKNOWN and kind.value == label:
                return kind
        return cls.UNKNOWN


PROTECTED_FILES: frozenset[tuple[bytes, int]] = frozenset(
    {(TEXT_AP_AID, 0x0001), (VISUAL_AP_AID, 0x0005)}
)
"""(application, EF) pairs that hold or show the My Number: never selected by this project."""

FORBIDDEN_APPLICATIONS: frozenset[bytes] = frozenset({TEXT_AP_AID})
"""Applications the client refuses to select at all (it needs nothing from them)."""
