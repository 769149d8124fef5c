"""The resident texts chosen at run time (states, failures, consent items), as gettext msgids.

The words themselves live in the catalogs (``idp/translations/{ja,en}/LC_MESSAGES/messages.po``,
see :mod:`idp.i18n`); templates call ``_()`` directly. Code that picks a text by a key (a
transaction state, a failure code, a consent item) looks its English msgid up in
:data:`MESSAGES` (each wrapped in :func:`N_` so ``pybabel extract`` finds it) and translates it
with :func:`text`.
"""

from __future__ import annotations

from typing import Any, Final

from flask_babel import force_locale, gettext

from idp.i18n import DEFAULT_LOCALE, LOCALES

__all__ = ["DEFAULT_LOCALE", "LOCALES", "MESSAGES", "N_", "text"]


def N_(msgid: str) -> str:
    """Mark ``msgid`` for extraction; it is translated where it is shown."""
    return msgid


MESSAGES: Final[dict[str, str]] = {
    "qr_alt": N_("Sign-in QR code (changes every second). Verification code %(code)s"),
    "rate_limited": N_("Too many sign-in requests. Please wait a moment and try again."),
    "status_checking": N_("Checking your card…"),
    "status_created": N_("Waiting for the card."),
    "status_picked_up": N_(
        "Waiting for your card. Follow the instructions on your smartphone or device and "
        "let it read your My Number card."
    ),
    "status_enroll_needed": N_(
        "First sign-in: the signature certificate password (6-16 letters and digits) is "
        "needed too. Follow the instructions on your device."
    ),
    "status_sign_needed": N_(
        "Signature: check the text shown on your device and enter the signature "
        "certificate password (6-16 letters and digits)."
    ),
    "status_card_verified": N_("Your card was verified. Continuing."),
    "failure_sign_certificate_revoked": N_(
        "Your signature certificate has been revoked: your registered details (name, "
        "address, ...) have changed. Please renew the certificate at your municipal "
        "office."
    ),
    "failure_sign_transaction_unavailable": N_(
        "The signature request has expired or was already signed. Go back to the service "
        "and try again."
    ),
    "failure_signer_mismatch": N_("The signature was made with another person's card."),
    "status_finished": N_("This sign-in is complete."),
    "status_cancelled": N_("This sign-in was cancelled."),
    "status_failed": N_("The card could not be verified."),
    "status_expired": N_("Time is up. Please start the sign-in again."),
    "expires_note": N_("This page expires in %(minutes)s minutes."),
    "extended": N_("The time was extended: you have %(minutes)s more minutes."),
    "extend_limit": N_("The time cannot be extended any more. Start the sign-in again if needed."),
    "extend_warning": N_(
        "Less than a minute is left. To keep this page open, press “Give me more time”."
    ),
    "item_name": N_("Name"),
    "item_address": N_("Address"),
    "item_birthdate": N_("Date of birth"),
    "item_gender": N_("Gender"),
    "item_offline_access": N_("Access while you are signed out"),
    "item_sign": N_("Electronic signature (what you sign with the signature certificate)"),
    "value_offline_access": N_(
        "This service can keep receiving the items above while you are signed out (until "
        "you withdraw your consent)."
    ),
    "item_age_over_18": N_("Whether you are 18 or older"),
    "item_age_over_65": N_("Whether you are 65 or older"),
    "item_resident_of": N_("Your municipality of residence"),
    "value_yes": N_("Yes"),
    "value_no": N_("No"),
    "value_no_municipality": N_("Not one of the municipalities served (nothing is shared)"),
    "gender_male": N_("Male"),
    "gender_female": N_("Female"),
    "gender_other": N_("Other / unknown"),
    "not_your_login": N_("This sign-in was not started in this browser."),
    "not_verified_yet": N_("The card has not been verified yet. Please finish reading the card."),
    "csrf_failed": N_("The page has expired or the request is not valid. Please try again."),
    "failure_default": N_("The card could not be verified."),
    "failure_user_cancelled": N_("The sign-in was stopped on the smartphone."),
    "failure_pin_blocked": N_("The PIN is locked. Have it reset at your municipal office."),
    "failure_card_unusable": N_(
        "The card could not be read. Check how the card is placed and try again."
    ),
    "failure_certificate_expired": N_("The card's certificate has expired."),
    "failure_certificate_revoked": N_("The card's certificate has been revoked."),
    "failure_certificate_untrusted": N_("The card's certificate is not from a trusted issuer."),
    "failure_certificate_wrong_purpose": N_(
        "A certificate other than the user authentication certificate was used."
    ),
    "failure_signature_invalid": N_("The card's signature could not be verified."),
    "failure_revocation_unavailable": N_(
        "The revocation status of the certificate could not be checked."
    ),
    "failure_card_mismatch": N_("A different card was used part-way through."),
    "failure_enrollment_unavailable": N_(
        "This card has no signature certificate, so it cannot be registered."
    ),
}


def text(locale: str, key: str, **values: Any) -> str:
    """The text ``key`` translated into ``locale`` with ``values`` filled in."""
    with force_locale(locale if locale in LOCALES else DEFAULT_LOCALE):
        return str(gettext(MESSAGES[key], **values))
